package web

import (
	"net/http"
	"strconv"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// Flash messages survive the redirect after a form (post/redirect/get).
const (
	sessFlash    = "flash"
	sessFlashErr = "flash_error"
)

func (s *Server) flash(r *http.Request, msg string, isErr bool) {
	s.sessions.Put(r.Context(), sessFlash, msg)
	s.sessions.Put(r.Context(), sessFlashErr, isErr)
}

func (s *Server) popFlash(r *http.Request) (string, bool) {
	return s.sessions.PopString(r.Context(), sessFlash), s.sessions.PopBool(r.Context(), sessFlashErr)
}

// showUsers lists the team for admins.
func (s *Server) showUsers(w http.ResponseWriter, r *http.Request) {
	d := templates.AdminUsersPage{NewRole: baton.RoleAgent}
	d.Flash, d.Error = s.popFlash(r)
	s.renderUsers(w, r, http.StatusOK, d)
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, status int, d templates.AdminUsersPage) {
	us, err := s.cfg.Users.Users(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d.Users = us
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.AdminUsers(s.pageData(r, "Users", "users"), d).Render(r.Context(), w); err != nil {
		s.log.WarnContext(r.Context(), "render users", "err", err)
	}
}

// addUser creates a user from the form; a refusal shows the form again
// with what was typed (never the password) and the reason.
func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	role, _ := baton.ParseRole(r.PostFormValue("role"))
	n := account.NewUser{
		Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
		Role: role, Password: r.PostFormValue("password"),
	}
	u, err := s.cfg.Accounts.CreateUser(r.Context(), s.currentUser(r), n)
	if err != nil {
		status := statusOf(err)
		if status >= 500 {
			s.writeError(w, r, err)
			return
		}
		s.renderUsers(w, r, status, templates.AdminUsersPage{
			Flash: baton.ErrorMessage(err), Error: true, NewEmail: n.Email, NewName: n.Name, NewRole: role,
		})
		return
	}
	s.log.InfoContext(r.Context(), "user added", "by", s.currentUser(r).ID, "user_id", u.ID, "role", u.Role)
	s.flash(r, "Added "+u.Email+" as "+string(u.Role)+".", false)
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, baton.Errorf(baton.ENOTFOUND, "User not found.")
	}
	return id, nil
}

// userAction runs one change on the user in the path and reports it on
// the users page; domain refusals (the last admin, …) become a flash.
func (s *Server) userAction(w http.ResponseWriter, r *http.Request, do func(id int64) (string, error)) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, err := do(id)
	if err != nil {
		status := statusOf(err)
		if status >= 500 || status == http.StatusNotFound {
			s.writeError(w, r, err)
			return
		}
		s.flash(r, baton.ErrorMessage(err), true)
	} else {
		s.flash(r, msg, false)
	}
	http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
}

// setUserRole changes a user's role.
func (s *Server) setUserRole(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(id int64) (string, error) {
		role, err := baton.ParseRole(r.PostFormValue("role"))
		if err != nil {
			return "", err
		}
		u, err := s.cfg.Accounts.SetRole(r.Context(), s.currentUser(r), id, role)
		if err != nil {
			return "", err
		}
		return u.Email + " is now " + articled(u.Role) + ".", nil
	})
}

// disableUser disables a user: every session and websocket of theirs ends.
func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(id int64) (string, error) {
		u, err := s.cfg.Accounts.SetDisabled(r.Context(), s.currentUser(r), id, true)
		if err != nil {
			return "", err
		}
		s.KillUser(u.ID)
		return u.Email + " is disabled and signed out everywhere.", nil
	})
}

// enableUser lets a disabled user sign in again.
func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(id int64) (string, error) {
		u, err := s.cfg.Accounts.SetDisabled(r.Context(), s.currentUser(r), id, false)
		if err != nil {
			return "", err
		}
		return u.Email + " can sign in again.", nil
	})
}

// signOutUser ends every session of a user (a lost laptop).
func (s *Server) signOutUser(w http.ResponseWriter, r *http.Request) {
	s.userAction(w, r, func(id int64) (string, error) {
		u, err := s.cfg.Users.UserByID(r.Context(), id)
		if err != nil {
			return "", err
		}
		if err := s.endUserSessions(r.Context(), s.currentUser(r), id); err != nil {
			return "", err
		}
		return u.Email + " is signed out everywhere.", nil
	})
}
