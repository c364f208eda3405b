package web

import "github.com/baton-chat/baton/internal/baton"

// consoleRoutes registers the agent console's pages and actions.
func (s *Server) consoleRoutes() {
	s.handle("GET /{$}", baton.RoleAgent, s.showInbox)
	s.handle("GET /conversations/{id}", baton.RoleAgent, s.showConversation)
	s.handle("GET /conversations/{id}/older", baton.RoleAgent, s.showOlder)
	s.handle("POST /conversations/{id}/messages", baton.RoleAgent, s.sendReply)
	s.handle("POST /conversations/{id}/typing", baton.RoleAgent, s.sendTyping)
	s.handle("POST /conversations/{id}/viewing", baton.RoleAgent, s.markViewing)
	s.handle("POST /conversations/{id}/done", baton.RoleAgent, s.markDone)
	s.handle("POST /conversations/{id}/done/preview", baton.RoleAgent, s.previewDone)
	s.handle("POST /conversations/{id}/request", baton.RoleAgent, s.requestControl)
	s.handle("POST /conversations/{id}/request/abandon", baton.RoleAgent, s.abandonRequest)
	s.handle("POST /outbox/{id}/retry", baton.RoleAgent, s.retryOutbox)
	s.handle("GET /ws", baton.RoleAgent, s.serveWebsocket)
	s.teamRoutes()
}
