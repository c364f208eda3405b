package web

import (
	"errors"
	"io"
	"net/http"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
)

// verifyWebhook answers Facebook's subscription challenge byte for byte
// (PROTOCOL.md §3). It stores nothing.
func (s *Server) verifyWebhook(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	challenge := q.Get("hub.challenge")
	if err := s.cfg.Ingest.VerifyChallenge(q.Get("hub.mode"), q.Get("hub.verify_token")); err != nil {
		s.writeTextError(w, r, err)
		return
	}
	if challenge == "" {
		s.writeTextError(w, r, baton.Errorf(baton.EINVALID, "Missing hub.challenge."))
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(challenge))
}

// receiveWebhook reads a delivery with a size cap, checks its signature
// over the exact bytes, and answers 200 only once it is durable
// (PROTOCOL.md §4.4).
func (s *Server) receiveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Ingest.MaxBody()))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.log.WarnContext(r.Context(), "webhook body over the size cap", "limit", tooBig.Limit)
			w.Header().Set("Connection", "close")
			http.Error(w, "Delivery too large.", http.StatusRequestEntityTooLarge)
			return
		}
		s.writeTextError(w, r, baton.Errorf(baton.EINVALID, "Could not read the body."))
		return
	}
	if err := s.cfg.Ingest.Verify(body, r.Header.Get(messenger.HeaderSignature256), r.Header.Get(messenger.HeaderSignatureSHA1)); err != nil {
		s.writeTextError(w, r, err)
		return
	}
	if err := s.cfg.Ingest.Submit(r.Context(), body); err != nil {
		if baton.ErrorCode(err) == baton.EUNAVAILABLE {
			// Facebook retries a 503; tell it when.
			w.Header().Set("Retry-After", "1")
		}
		s.writeTextError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("EVENT_RECEIVED"))
}
