package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// RequestIDHeader carries a request's id in and out: a proxy in front of
// Baton may set it so that its log lines and Baton's name the same request,
// and Baton answers it so that a person reporting a failure can quote it.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an id taken from a client: it goes into every log
// line of the request, so an unbounded one would let a caller bloat logs.
const maxRequestIDLen = 128

type requestIDKey struct{}

// RequestID returns the request id carried by ctx, or "" outside a request.
// Code below the web layer uses it to tie its own log lines to a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id, for callers that start work on a
// request's behalf outside net/http (tests, background retries).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDs gives every request an id: the caller's X-Request-Id when it
// is a sane token, a fresh random one otherwise. The id is put in the
// request's context (so every log line written with it carries the id, see
// LogHandler) and echoed in the response header.
func (s *Server) requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
	})
}

// validRequestID accepts ids made of letters, digits and - _ . : / + =,
// the characters of UUIDs, hex and base64 ids that proxies generate.
// Anything else (spaces, CR/LF, quotes) is replaced rather than logged,
// so that a caller cannot forge log lines through the header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

// newRequestID is 16 random bytes in hex: unique across instances without
// coordination.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return hex.EncodeToString(b[:])
}

// LogHandler wraps h so that every record logged with a request's context
// gets a request_id attribute. New wraps Config.Logger with it; cmd/baton
// may wrap its root logger too, so that the services the web layer calls
// (ingest, conversation) tag their lines when they log with the context.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

// requestIDHandler is the slog.Handler LogHandler returns.
type requestIDHandler struct{ slog.Handler }

// Handle adds the context's request id, if any, to the record.
func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec = rec.Clone()
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

// WithAttrs keeps the wrapper around derived handlers (Logger.With).
func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around derived handlers (Logger.WithGroup).
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
