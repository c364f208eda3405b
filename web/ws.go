package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/baton-chat/baton/internal/realtime"
	"github.com/coder/websocket"
)

// Websocket timing: pings find dead peers (a laptop that slept) well
// before TCP does; a write that takes longer than writeTimeout means a
// stuck consumer, which is dropped rather than allowed to block.
const (
	pingInterval = 25 * time.Second
	writeTimeout = 5 * time.Second
)

// serveWebsocket streams change notifications to a signed-in browser. The
// browser re-reads what it shows on each one (and on every reconnect), so
// a lost or repeated notification never loses or doubles a message.
func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	hub := s.cfg.Console.Hub
	if hub == nil {
		http.Error(w, "Live updates are off.", http.StatusServiceUnavailable)
		return
	}
	if !s.checkOrigin(r) {
		http.Error(w, "Cross-origin websocket refused.", http.StatusForbidden)
		return
	}
	u := s.currentUser(r)
	// The Origin was checked just above against the console's own origin
	// and the configured ones; the library's own same-host check would
	// refuse the configured ones.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(512)
	sub := hub.Subscribe(u.ID)
	defer sub.Close()
	// The browser sends nothing we need; CloseRead answers pings and
	// notices the close. No reference to r is kept past this point.
	ctx := c.CloseRead(context.Background())
	s.pumpChanges(ctx, c, sub)
}

func (s *Server) pumpChanges(ctx context.Context, c *websocket.Conn, sub *realtime.Subscriber) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	write := func(v any) bool {
		b, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b) == nil
	}
	if !write(map[string]any{"type": "hello"}) {
		c.CloseNow()
		return
	}
	for {
		select {
		case <-ctx.Done():
			c.CloseNow()
			return
		case <-sub.Dropped:
			// Shutdown, sign-out everywhere, or too slow: the browser
			// reconnects (elsewhere) and re-reads.
			c.Close(websocket.StatusGoingAway, "reconnect")
			return
		case ch := <-sub.C:
			msg := map[string]any{"type": "change", "conversation": ch.ConversationID, "seq": ch.Seq}
			if ch.Resync {
				msg = map[string]any{"type": "resync"}
			}
			if !write(msg) {
				c.CloseNow()
				return
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				c.CloseNow()
				return
			}
		}
	}
}
