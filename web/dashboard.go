package web

import (
	"net/http"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// showDashboard renders the team dashboard for supervisors and admins;
// static/dashboard.js re-reads the page every 10 s.
func (s *Server) showDashboard(w http.ResponseWriter, r *http.Request) {
	stats, err := service[baton.StatsService](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := stats.TeamStats(r.Context(), s.consoleNow())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d := templates.DashboardPage{Stats: st, Location: s.cfg.Console.loc()}
	s.renderComponent(w, r, http.StatusOK, templates.Dashboard(s.pageData(r, "Dashboard", "dashboard"), d))
}

// consoleNow is the console's clock (the conversation service's, moved by
// tests), else the server's.
func (s *Server) consoleNow() time.Time {
	if s.cfg.Console.Service != nil {
		return s.cfg.Console.now()
	}
	return s.cfg.Now()
}
