package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/baton-chat/baton/internal/realtime"
	"github.com/coder/websocket"
)

// wsTiming: pings find dead peers (a laptop that slept) well before TCP
// does; a write (or a ping's pong) that takes longer than write means a
// stuck consumer, which is dropped rather than allowed to block. A type,
// not constants, so tests can run the same loop on a short fuse.
type wsTiming struct {
	ping, write time.Duration
}

// productionWS is the timing browsers get.
func productionWS() wsTiming { return wsTiming{ping: 25 * time.Second, write: 5 * time.Second} }

// wsReadLimit bounds what a browser may send: it sends nothing but
// control frames, so any data message is refused anyway.
const wsReadLimit = 512

// serveWebsocket streams change notifications to a signed-in browser. The
// browser re-reads what it shows on each one (and on every reconnect), so
// a lost or repeated notification never loses or doubles a message.
//
// The subscription starts before the upgrade answers: everything that
// commits after the browser sees the socket open is notified on it, and
// what committed before is in the re-read the browser makes then.
func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	hub := s.cfg.Console.Hub
	if hub == nil {
		http.Error(w, "Live updates are off.", http.StatusServiceUnavailable)
		return
	}
	if !s.checkOrigin(r) {
		s.log.Warn("cross-origin websocket refused", "origin", r.Header.Get("Origin"))
		http.Error(w, "Cross-origin websocket refused.", http.StatusForbidden)
		return
	}
	upgradeLive(w, r, hub, s.currentUser(r).ID, productionWS())
}

// upgradeLive subscribes userID, upgrades the request and starts the
// connection's writer; it returns as soon as the socket is open.
func upgradeLive(w http.ResponseWriter, r *http.Request, hub *realtime.Hub, userID int64, tm wsTiming) {
	sub := hub.Subscribe(userID)
	// The Origin was checked by the caller against the console's own
	// origin and the configured ones; the library's own same-host check
	// would refuse the configured ones. Compression stays off: a flate
	// writer costs far more than the few bytes a notification saves.
	// (Handing the library smaller buffers through a Hijack wrapper
	// saved ~4 KiB per socket but corrupted frames now and then: the
	// peer's frames were read misaligned. It is gone until it is right.)
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		sub.Close()
		return
	}
	c.SetReadLimit(wsReadLimit)
	// The handler returns now, so the deep stack of net/http's connection
	// goroutine is freed; no reference to r is kept.
	ctx, cancel := context.WithCancelCause(context.Background())
	go readControl(c, cancel)
	go func() {
		defer sub.Close()
		pumpChanges(ctx, c, sub, tm)
	}()
}

// readControl reads the socket so that pings are answered and the peer's
// close is noticed, then cancels the writer. It is the library's CloseRead
// without its flaw: CloseRead's goroutine closing the socket itself (on a
// data message) waits 15 s for its own exit, keeping the subscription.
//
// It never closes the socket itself: the writer does, so that no write
// races the close handshake (a write failing mid-handshake used to reset
// the connection before the peer read the close frame).
func readControl(c *websocket.Conn, done context.CancelCauseFunc) {
	if _, _, err := c.Read(context.Background()); err != nil {
		done(nil) // closed, or over the read limit (the library closed it)
		return
	}
	done(errUnexpectedData)
}

// errUnexpectedData: the browser sent a data message; it gets a policy
// violation close.
var errUnexpectedData = errors.New("unexpected data message")

// pumpChanges is the connection's one writer.
func pumpChanges(ctx context.Context, c *websocket.Conn, sub *realtime.Subscriber, tm wsTiming) {
	ping := time.NewTicker(tm.ping)
	defer ping.Stop()
	write := func(v any) bool {
		b, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, tm.write)
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
			if errors.Is(context.Cause(ctx), errUnexpectedData) {
				c.Close(websocket.StatusPolicyViolation, "unexpected data message")
				return
			}
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
			pctx, cancel := context.WithTimeout(ctx, tm.write)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				c.CloseNow()
				return
			}
		}
	}
}
