// Package web is Baton's HTTP layer: the webhook receiver, the console's
// pages and actions, health checks and the websocket bridge. Handlers talk
// to services through interfaces; none reaches PostgreSQL by itself.
package web

import (
	"context"
	"log/slog"
	"net/http"
)

// Ingest is the webhook ingest service (internal/webhook.Ingester).
type Ingest interface {
	VerifyChallenge(mode, token string) error
	Verify(body []byte, sig256, sig1 string) error
	Submit(ctx context.Context, body []byte) error
	MaxBody() int64
}

// Config wires the server's dependencies; cmd/baton builds it.
type Config struct {
	Logger *slog.Logger
	Ingest Ingest
	// Ready reports whether the database is reachable and migrated.
	Ready func(ctx context.Context) error
}

// Server is Baton's HTTP handler.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.recoverPanics(s.mux).ServeHTTP(w, r)
}
