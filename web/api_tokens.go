package web

import (
	"net/http"
	"strconv"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// showTokens lists the signed-in user's API tokens; admins see everyone's,
// so that they can revoke any.
func (s *Server) showTokens(w http.ResponseWriter, r *http.Request) {
	d := templates.TokensPage{}
	d.Flash, d.Error = s.popFlash(r)
	s.renderTokens(w, r, http.StatusOK, d)
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, status int, d templates.TokensPage) {
	tokens, err := service[baton.APITokenService](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := s.currentUser(r)
	owner := u.ID
	if u.Role.AtLeast(baton.RoleAdmin) {
		owner = 0
	}
	if d.Tokens, err = tokens.APITokens(r.Context(), owner); err != nil {
		s.writeError(w, r, err)
		return
	}
	d.Owners = map[int64]string{u.ID: u.Email}
	if owner == 0 && s.cfg.Users != nil {
		us, err := s.cfg.Users.Users(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, x := range us {
			d.Owners[x.ID] = x.Email
		}
	}
	d.Location = s.cfg.Console.loc()
	// The page may carry a new secret: renderComponent never lets it be cached.
	s.renderComponent(w, r, status, templates.Tokens(s.pageData(r, "API tokens", "tokens"), d))
}

// createToken makes a token for the signed-in user and shows its secret
// once, in this response only (no redirect: the secret never goes through
// the session).
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	tokens, err := service[baton.APITokenService](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := s.currentUser(r)
	tok, secret, err := tokens.CreateAPIToken(r.Context(), u.ID, r.PostFormValue("name"))
	if err != nil {
		if statusOf(err) >= 500 {
			s.writeError(w, r, err)
			return
		}
		s.renderTokens(w, r, statusOf(err), templates.TokensPage{Flash: baton.ErrorMessage(err), Error: true})
		return
	}
	s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: ActionTokenCreate,
		Subject: "api_token:" + strconv.FormatInt(tok.ID, 10), Detail: map[string]any{"name": tok.Name, "user_id": u.ID}})
	s.renderTokens(w, r, http.StatusOK, templates.TokensPage{NewSecret: secret, NewName: tok.Name})
}

// revokeToken revokes one of the user's tokens, or anyone's for an admin.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	tokens, err := service[baton.APITokenService](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, baton.Errorf(baton.ENOTFOUND, "Token not found."))
		return
	}
	u := s.currentUser(r)
	owner := u.ID
	if u.Role.AtLeast(baton.RoleAdmin) {
		owner = 0
	}
	tok, err := tokens.RevokeAPIToken(r.Context(), id, owner)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: ActionTokenRevoke,
		Subject: "api_token:" + strconv.FormatInt(tok.ID, 10), Detail: map[string]any{"name": tok.Name, "user_id": tok.UserID}})
	s.flash(r, "Revoked “"+tok.Name+"”.", false)
	http.Redirect(w, r, "/account/tokens", http.StatusSeeOther)
}
