package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// wsReadLimit bounds what a browser may send: it sends nothing but
// control frames, so any data message is refused anyway.
const wsReadLimit = 512

// wsBufferSize is the size of each connection's read and write buffers.
// Notifications are ~60 bytes; the 4 KiB buffers net/http hands over on
// hijack, kept for the connection's life, would be most of an idle
// socket's memory (SPEC "How fast").
const wsBufferSize = 256

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
	u := s.currentUser(r)
	sub := hub.Subscribe(u.ID)
	// The Origin was checked just above against the console's own origin
	// and the configured ones; the library's own same-host check would
	// refuse the configured ones. Compression stays off: a flate writer
	// costs far more than the few bytes a notification saves.
	c, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		sub.Close()
		return
	}
	c.SetReadLimit(wsReadLimit)
	// The handler returns now, so the deep stack of net/http's connection
	// goroutine is freed; no reference to r is kept. CloseRead answers
	// pings and notices the close.
	ctx := c.CloseRead(context.Background())
	go func() {
		defer sub.Close()
		pumpChanges(ctx, c, sub)
	}()
}

// pumpChanges is the connection's one writer.
func pumpChanges(ctx context.Context, c *websocket.Conn, sub *realtime.Subscriber) {
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

// smallBuffers hands the websocket library wsBufferSize buffers instead of
// the 4 KiB ones net/http's Hijack returns (the library keeps whatever it
// is given for the connection's life).
type smallBuffers struct{ http.ResponseWriter }

// Unwrap lets http.ResponseController reach the server's writer.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes over the connection with small buffers, keeping whatever
// the client already sent and flushing whatever net/http still holds.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("hijack flush: %w", err)
	}
	var src io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn)
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(src, wsBufferSize), bufio.NewWriterSize(conn, wsBufferSize)), nil
}
