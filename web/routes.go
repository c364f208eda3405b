package web

// routes registers every route. Patterns are stdlib ServeMux patterns.
func (s *Server) routes() {
	s.mux.HandleFunc("GET /webhook", s.verifyWebhook)
	s.mux.HandleFunc("POST /webhook", s.receiveWebhook)
	s.mux.HandleFunc("GET /healthz", s.showHealth)
	s.mux.HandleFunc("GET /readyz", s.showReadiness)
}
