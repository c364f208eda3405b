package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
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

// wsBufferSize is the size of each socket's read and write buffers, where
// net/http's hijacked buffers would keep 8 KiB per idle socket. The server
// writes notifications of about 60 bytes and reads pongs of a few bytes,
// which fit whole; a longer frame (a close with a reason, a data message
// up to wsReadLimit) is only read or written in more than one syscall.
const wsBufferSize = 128

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
		s.log.WarnContext(r.Context(), "cross-origin websocket refused", "origin", r.Header.Get("Origin"))
		http.Error(w, "Cross-origin websocket refused.", http.StatusForbidden)
		return
	}
	upgradeLive(w, r, hub, s.currentUser(r).ID, productionWS())
}

// upgradeLive subscribes userID, upgrades the request, greets the browser
// and returns: the socket then costs one goroutine (its reader), a
// subscription the hub's shared writers deliver to, a ping timer and two
// small buffers.
//
// The subscription starts before the upgrade answers: everything that
// commits after the browser sees the socket open is notified on it, and
// what committed before is in the re-read the browser makes then.
func upgradeLive(w http.ResponseWriter, r *http.Request, hub *realtime.Hub, userID int64, tm wsTiming) {
	sub := hub.Subscribe(userID)
	// The Origin was checked by the caller against the console's own
	// origin and the configured ones; the library's own same-host check
	// would refuse the configured ones. Compression stays off: a flate
	// writer costs far more than the few bytes a notification saves.
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		sub.Close()
		return
	}
	c.SetReadLimit(wsReadLimit)
	ls := &liveSocket{c: c, conn: sb.conn, sub: sub, tm: tm}
	// The greeting goes out before Start, so it comes before any change.
	if err := ls.write([]byte(`{"type":"hello"}`)); err != nil {
		sub.Close()
		return
	}
	ls.mu.Lock()
	if !ls.closing {
		ls.pinger = time.AfterFunc(tm.ping, ls.ping)
	}
	ls.mu.Unlock()
	sub.Start(ls.deliver, ls.goingAway)
	// The handler returns now, so the deep stack of net/http's connection
	// goroutine is freed; nothing keeps r.
	go ls.read()
}

// liveSocket is one browser's websocket once the handler has returned.
// Whoever first claims closing (the reader, a failed write or ping, the
// hub's drop) closes the connection; the others leave it alone, so that no
// write or abrupt close races a close handshake in progress (a write
// failing mid-handshake used to reset the connection before the peer read
// the close frame).
type liveSocket struct {
	c *websocket.Conn
	// conn is c's connection, for its write deadline.
	conn net.Conn
	sub  *realtime.Subscriber
	tm   wsTiming

	mu      sync.Mutex
	closing bool
	pinger  *time.Timer
}

// errClosing: a delivery found the socket closing; the hub unsubscribes it.
var errClosing = errors.New("websocket closing")

// claimClose reports whether the caller is the one to close the socket,
// and stops the pings.
func (ls *liveSocket) claimClose() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closing {
		return false
	}
	ls.closing = true
	if ls.pinger != nil {
		ls.pinger.Stop()
	}
	return true
}

func (ls *liveSocket) isClosing() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.closing
}

// abort closes the socket without a handshake: it is broken or stuck.
func (ls *liveSocket) abort() {
	if ls.claimClose() {
		ls.c.CloseNow()
	}
}

// write sends messages within the write deadline; a socket that cannot
// take them in time is aborted, and the browser reconnects and re-reads.
//
// The deadline is the connection's, not a context's: the library keeps
// the context of a socket's last message for the socket's life, and a
// timer context per idle socket costs memory (and a timer per write, CPU).
// A ping or close written meanwhile may share the deadline, which is the
// same rule for them.
func (ls *liveSocket) write(msgs ...[]byte) error {
	ls.conn.SetWriteDeadline(time.Now().Add(ls.tm.write))
	var err error
	for _, m := range msgs {
		if ls.isClosing() {
			err = errClosing
			break
		}
		if err = ls.c.Write(context.Background(), websocket.MessageText, m); err != nil {
			ls.abort()
			err = fmt.Errorf("write websocket: %w", err)
			break
		}
	}
	ls.conn.SetWriteDeadline(time.Time{})
	return err
}

// deliver is the hub's Deliver: it runs on one of the hub's writers, and
// the whole batch shares one write deadline.
func (ls *liveSocket) deliver(changes []realtime.Change) error {
	msgs := make([][]byte, len(changes))
	for i, ch := range changes {
		msgs[i] = appendChange(nil, ch)
	}
	return ls.write(msgs...)
}

// appendChange encodes a change as app.js expects it.
func appendChange(b []byte, ch realtime.Change) []byte {
	if ch.Resync {
		return append(b, `{"type":"resync"}`...)
	}
	b = append(b, `{"type":"change","conversation":`...)
	b = strconv.AppendInt(b, ch.ConversationID, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, ch.Seq, 10)
	return append(b, '}')
}

// goingAway is the hub's drop (shutdown, sign-out everywhere): the
// browser reconnects (elsewhere) and re-reads. The close handshake waits
// for the peer, so it runs on a goroutine of its own while it lasts.
func (ls *liveSocket) goingAway() {
	if ls.claimClose() {
		go ls.c.Close(websocket.StatusGoingAway, "reconnect")
	}
}

// ping runs on its timer's goroutine, which lives only until the pong (or
// the write deadline): a peer that does not answer is aborted.
func (ls *liveSocket) ping() {
	if ls.isClosing() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ls.tm.write)
	err := ls.c.Ping(ctx)
	cancel()
	if err != nil {
		ls.abort()
		return
	}
	ls.mu.Lock()
	if !ls.closing {
		ls.pinger.Reset(ls.tm.ping)
	}
	ls.mu.Unlock()
}

// read is the socket's one goroutine. It reads so that pongs and the
// peer's close are handled, with context.Background() so that an idle
// read holds no timer or context. It ends the subscription when the
// socket ends. It is the library's CloseRead without its flaw: CloseRead's
// goroutine closing the socket itself (on a data message) waits 15 s for
// its own exit, keeping the subscription.
func (ls *liveSocket) read() {
	_, _, err := ls.c.Read(context.Background())
	ls.sub.Close()
	if err != nil {
		// Closed by the peer, by us, or over the read limit (the library
		// closed it then).
		ls.abort()
		return
	}
	// The browser has nothing to send: data gets a policy violation.
	if ls.claimClose() {
		ls.c.Close(websocket.StatusPolicyViolation, "unexpected data message")
	}
}

// smallBuffers hands coder/websocket small buffers instead of the 4 KiB
// reader and 4 KiB writer net/http gives a hijacked connection, which the
// library would keep for the connection's life. It keeps the connection
// it hands over, for its write deadline.
type smallBuffers struct {
	http.ResponseWriter
	conn net.Conn
}

// Hijack takes the connection over with small buffers. Bytes the server
// had read past the upgrade request (a client may send a frame in the same
// TCP write as its request) are served first, before anything new from the
// connection: dropping them, or reading them after newer bytes, would read
// every later frame misaligned.
func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijack: %w", err)
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("flush before hijack: %w", err)
		}
	}
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		conn = &earlyConn{Conn: conn, early: bytes.Clone(early)}
	}
	w.conn = conn
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, wsBufferSize), bufio.NewWriterSize(conn, wsBufferSize)), nil
}

// earlyConn is a connection whose first bytes were read already: Read
// serves them before reading the connection. The library re-creates its
// reader on this connection, so they reach it whatever it does with the
// buffered reader it is handed.
type earlyConn struct {
	net.Conn
	early []byte
}

func (c *earlyConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		if len(c.early) == 0 {
			c.early = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}
