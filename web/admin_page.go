package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// showPageSettings shows the Page settings, secrets masked.
func (s *Server) showPageSettings(w http.ResponseWriter, r *http.Request) {
	ps, err := s.cfg.Settings.PageSettings(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d := templates.MaskedSettings(ps)
	d.Flash, d.Error = s.popFlash(r)
	s.renderPageSettings(w, r, http.StatusOK, d)
}

func (s *Server) renderPageSettings(w http.ResponseWriter, r *http.Request, status int, d templates.AdminPageSettings) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := templates.AdminPage(s.pageData(r, "Page settings", "page"), d).Render(r.Context(), w); err != nil {
		s.log.WarnContext(r.Context(), "render page settings", "err", err)
	}
}

// savePageSettings stores the form. Empty secret fields keep the stored
// secrets; the audit log says which changed, never their values.
func (s *Server) savePageSettings(w http.ResponseWriter, r *http.Request) {
	ps := baton.PageSettings{
		PageToken:    strings.TrimSpace(r.PostFormValue("page_token")),
		AppSecret:    strings.TrimSpace(r.PostFormValue("app_secret")),
		VerifyToken:  strings.TrimSpace(r.PostFormValue("verify_token")),
		BatonAppID:   strings.TrimSpace(r.PostFormValue("baton_app_id")),
		PrimaryAppID: strings.TrimSpace(r.PostFormValue("primary_app_id")),
		HumanAgent:   r.PostFormValue("human_agent") == "on",
	}
	if err := s.cfg.Settings.SavePageSettings(r.Context(), ps); err != nil {
		if statusOf(err) >= 500 {
			s.writeError(w, r, err)
			return
		}
		cur, gerr := s.cfg.Settings.PageSettings(r.Context())
		if gerr != nil {
			s.writeError(w, r, gerr)
			return
		}
		d := templates.MaskedSettings(cur)
		d.Flash, d.Error = baton.ErrorMessage(err), true
		s.renderPageSettings(w, r, statusOf(err), d)
		return
	}
	u := s.currentUser(r)
	if s.cfg.Audit != nil {
		changed := []string{}
		for name, v := range map[string]string{"page_token": ps.PageToken, "app_secret": ps.AppSecret, "verify_token": ps.VerifyToken} {
			if v != "" {
				changed = append(changed, name)
			}
		}
		e := baton.AuditEntry{ActorID: &u.ID, Action: "page.settings", Subject: "page",
			Detail: map[string]any{"secrets_changed": changed, "baton_app_id": ps.BatonAppID,
				"primary_app_id": ps.PrimaryAppID, "human_agent": ps.HumanAgent}}
		if err := s.cfg.Audit.Audit(r.Context(), e); err != nil {
			s.log.ErrorContext(r.Context(), "write audit log", "err", fmt.Errorf("page settings: %w", err))
		}
	}
	s.log.InfoContext(r.Context(), "page settings saved", "by", u.ID)
	s.flash(r, "Settings saved.", false)
	http.Redirect(w, r, "/admin/page", http.StatusSeeOther)
}
