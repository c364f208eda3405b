package web

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/realtime"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// wsLiveServer serves upgradeLive for the user named in ?user=, with tm.
func wsLiveServer(t *testing.T, hub *realtime.Hub, tm wsTiming) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
		upgradeLive(w, r, hub, id, tm)
	}))
	t.Cleanup(srv.Close)
	return "ws" + srv.URL[len("http"):]
}

// wsWaitUntil polls cond; the deadline only stops a broken run from hanging.
func wsWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type wsLiveMsg struct {
	Type         string `json:"type"`
	Conversation int64  `json:"conversation"`
	Seq          int64  `json:"seq"`
}

// wsReader reads a socket until it ends and keeps what it heard.
type wsReader struct {
	mu   sync.Mutex
	msgs []wsLiveMsg
	err  error
	done chan struct{}
}

func wsRead(c *websocket.Conn) *wsReader {
	r := &wsReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			var m wsLiveMsg
			err := wsjson.Read(context.Background(), c, &m)
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *wsReader) got() []wsLiveMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wsLiveMsg(nil), r.msgs...)
}

func wsDial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Changes arrive after the hello, in order;
// dropping a user closes their sockets with going-away and leaves others.
func TestWSChangesThenGoingAway(t *testing.T) {
	hub := realtime.NewHub()
	url := wsLiveServer(t, hub, productionWS())
	ana := wsRead(wsDial(t, url+"?user=1", nil))
	sam := wsRead(wsDial(t, url+"?user=2", nil))
	wsWaitUntil(t, "both subscribed", func() bool { return hub.Count() == 2 })
	want := []wsLiveMsg{{Type: "hello"}, {"change", 7, 1}, {"change", 7, 2}, {Type: "resync"}}
	// One at a time: changes published while a socket's write is pending
	// are coalesced (see realtime), which this test is not about.
	for i, c := range []realtime.Change{{ConversationID: 7, Seq: 1}, {ConversationID: 7, Seq: 2}, {Resync: true}} {
		hub.Publish(c)
		wsWaitUntil(t, "both heard it", func() bool { return len(ana.got()) == i+2 && len(sam.got()) == i+2 })
	}
	for name, r := range map[string]*wsReader{"ana": ana, "sam": sam} {
		for i, m := range r.got() {
			if m != want[i] {
				t.Errorf("%s message %d = %+v, want %+v", name, i, m, want[i])
			}
		}
	}

	hub.DropUser(1)
	<-ana.done
	if code := websocket.CloseStatus(ana.err); code != websocket.StatusGoingAway {
		t.Fatalf("dropped socket closed with %v, want going away", code)
	}
	hub.Publish(realtime.Change{ConversationID: 8, Seq: 1})
	wsWaitUntil(t, "sam's next change", func() bool { return len(sam.got()) == len(want)+1 })
	select {
	case <-sam.done:
		t.Fatalf("another user's socket ended: %v", sam.err)
	default:
	}
}

// Pings go out on the interval; a peer that stops answering them (a
// laptop that slept) is closed and unsubscribed.
func TestWSPingsAndDeadPeer(t *testing.T) {
	hub := realtime.NewHub()
	url := wsLiveServer(t, hub, wsTiming{ping: 10 * time.Millisecond, write: 100 * time.Millisecond})
	var pings atomic.Int64
	alive := wsDial(t, url+"?user=1", &websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool {
		pings.Add(1)
		return true
	}})
	wsRead(alive) // reading is what answers pings
	wsWaitUntil(t, "pings", func() bool { return pings.Load() >= 3 })

	// A peer that never reads never answers a ping.
	wsDial(t, url+"?user=2", nil)
	wsWaitUntil(t, "two subscribers", func() bool { return hub.Count() == 2 })
	wsWaitUntil(t, "the dead peer dropped", func() bool { return hub.Count() == 1 })
}

// A browser has nothing to send: one that sends data is cut off, and one
// that sends more than the read limit too (the write may fail when the
// server hangs up mid-message, so only the outcome is checked).
func TestWSDataFromBrowserRefused(t *testing.T) {
	hub := realtime.NewHub()
	url := wsLiveServer(t, hub, productionWS())
	c := wsDial(t, url+"?user=1", nil)
	r := wsRead(c)
	if err := c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe"}`)); err != nil {
		t.Fatal(err)
	}
	<-r.done
	// Usually a policy-violation close; the close handshake can lose the
	// race with the peer's own write, and then the socket just ends. What
	// matters: it is closed and unsubscribed.
	if code := websocket.CloseStatus(r.err); code != websocket.StatusPolicyViolation && code != -1 {
		t.Fatalf("closed with %v (%v), want policy violation or an abrupt close", code, r.err)
	}
	wsWaitUntil(t, "unsubscribed", func() bool { return hub.Count() == 0 })

	big := wsDial(t, url+"?user=2", nil)
	rb := wsRead(big)
	wsWaitUntil(t, "subscribed", func() bool { return hub.Count() == 1 })
	big.Write(context.Background(), websocket.MessageBinary, make([]byte, 64*wsReadLimit))
	<-rb.done
	wsWaitUntil(t, "the oversized sender unsubscribed", func() bool { return hub.Count() == 0 })
}

// A socket accepted while the instance shuts down closes at once with
// going-away instead of living on.
func TestWSAfterShutdownGoingAway(t *testing.T) {
	hub := realtime.NewHub()
	url := wsLiveServer(t, hub, productionWS())
	hub.DropAll()
	r := wsRead(wsDial(t, url+"?user=1", nil))
	<-r.done
	if code := websocket.CloseStatus(r.err); code != websocket.StatusGoingAway {
		t.Fatalf("closed with %v, want going away", code)
	}
}

// wsFrame is a client frame (masked, as RFC 6455 requires of clients)
// with a payload under 126 bytes.
func wsFrame(opcode byte, payload string) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{0x80 | opcode, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i := range len(payload) {
		b = append(b, payload[i]^mask[i%4])
	}
	return b
}

// wsServerFrame reads one unmasked server frame with a short payload.
func wsServerFrame(t *testing.T, r *bufio.Reader) (opcode byte, payload string) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	if h[1]&0x80 != 0 || h[1]&0x7f >= 126 {
		t.Fatalf("unexpected frame header % x", h)
	}
	p := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("read frame payload: %v", err)
	}
	return h[0] & 0x0f, string(p)
}

// wsRawUpgrade opens a TCP connection and writes the upgrade request with
// early appended in the same write, as a client that sends a frame right
// after its request may; it returns the connection past the 101 answer.
func wsRawUpgrade(t *testing.T, url string, early []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Only stops a broken run from hanging on a frame that never comes.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d", resp.StatusCode)
	}
	return c, br
}

// Frames a client sends in the same TCP write as its upgrade request are
// read by the server already when it hijacks the connection: they are
// handled first, in order, and later frames stay aligned.
func TestWSFramesSentWithTheUpgradeRequest(t *testing.T) {
	const (
		opText  = 0x1
		opClose = 0x8
		opPing  = 0x9
		opPong  = 0xa
	)
	long := strings.Repeat("p", 125) // a frame longer than the read buffer
	tests := []struct {
		name  string
		early [][]byte
		// wantPongs are the pongs expected, in order, before the later ping.
		wantPongs []string
		// wantClose: the early frames end the socket with this code.
		wantClose websocket.StatusCode
	}{
		{"one ping", [][]byte{wsFrame(opPing, "early")}, []string{"early"}, 0},
		{"two pings, one long", [][]byte{wsFrame(opPing, "first"), wsFrame(opPing, long)}, []string{"first", long}, 0},
		{"a data message", [][]byte{wsFrame(opText, `{"type":"subscribe"}`)}, nil, websocket.StatusPolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hub := realtime.NewHub()
			url := wsLiveServer(t, hub, wsTiming{ping: time.Hour, write: 5 * time.Second})
			c, br := wsRawUpgrade(t, url+"?user=1", bytes.Join(tc.early, nil))
			if op, p := wsServerFrame(t, br); op != opText || p != `{"type":"hello"}` {
				t.Fatalf("first frame: opcode %d %q, want the hello", op, p)
			}
			if tc.wantClose != 0 {
				op, p := wsServerFrame(t, br)
				if op != opClose || len(p) < 2 || websocket.StatusCode(int(p[0])<<8|int(p[1])) != tc.wantClose {
					t.Fatalf("got opcode %d %q, want a close with %v", op, p, tc.wantClose)
				}
				wsWaitUntil(t, "unsubscribed", func() bool { return hub.Count() == 0 })
				return
			}
			for _, want := range tc.wantPongs {
				if op, p := wsServerFrame(t, br); op != opPong || p != want {
					t.Fatalf("got opcode %d %q, want a pong %q", op, p, want)
				}
			}
			// A frame sent on its own afterwards is read aligned too.
			if _, err := c.Write(wsFrame(opPing, "later")); err != nil {
				t.Fatal(err)
			}
			if op, p := wsServerFrame(t, br); op != opPong || p != "later" {
				t.Fatalf("got opcode %d %q, want a pong %q", op, p, "later")
			}
			hub.Publish(realtime.Change{ConversationID: 7, Seq: 1})
			if op, p := wsServerFrame(t, br); op != opText || p != `{"type":"change","conversation":7,"seq":1}` {
				t.Fatalf("got opcode %d %q, want the change", op, p)
			}
		})
	}
}

// A socket whose peer stops reading cannot keep up: once its buffers are
// full, its write misses the deadline and it is closed and unsubscribed,
// while a healthy socket keeps hearing every change in order.
func TestWSSlowSocketClosedOthersServed(t *testing.T) {
	hub := realtime.NewHub()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.URL.Query().Get("user"), 10, 64)
		upgradeLive(w, r, hub, id, wsTiming{ping: time.Hour, write: 200 * time.Millisecond})
	}))
	// Small kernel buffers fill after a few hundred notifications.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		c.(*net.TCPConn).SetWriteBuffer(4096)
		return ctx
	}
	srv.Start()
	t.Cleanup(srv.Close)
	url := "ws" + srv.URL[len("http"):]

	stuck, _ := wsRawUpgrade(t, url+"?user=1", nil)
	stuck.(*net.TCPConn).SetReadBuffer(4096)
	healthy := wsRead(wsDial(t, url+"?user=2", nil))
	wsWaitUntil(t, "both subscribed", func() bool { return hub.Count() == 2 })

	var seq int64
	wsWaitUntil(t, "the stuck socket dropped", func() bool {
		for range 50 {
			seq++
			hub.Publish(realtime.Change{ConversationID: 7, Seq: seq})
		}
		return hub.Count() == 1
	})
	last := seq + 1
	hub.Publish(realtime.Change{ConversationID: 7, Seq: last})
	wsWaitUntil(t, "the healthy socket's last change", func() bool {
		got := healthy.got()
		return got[len(got)-1].Seq == last
	})
	var prev int64
	for _, m := range healthy.got()[1:] {
		if m.Type != "change" || m.Seq <= prev {
			t.Fatalf("the healthy socket heard %+v after seq %d", m, prev)
		}
		prev = m.Seq
	}
}

// The handler returns once the socket is open: an idle socket costs one
// goroutine (its reader), not a reader and a writer.
func TestWSOneGoroutinePerIdleSocket(t *testing.T) {
	hub := realtime.NewHub()
	url := wsLiveServer(t, hub, wsTiming{ping: time.Hour, write: 5 * time.Second})
	const n = 50
	base := runtime.NumGoroutine()
	for range n {
		wsRawUpgrade(t, url+"?user=1", nil) // raw clients: no goroutine of their own
	}
	wsWaitUntil(t, "every socket subscribed", func() bool { return hub.Count() == n })
	var delta int
	deadline := time.Now().Add(10 * time.Second)
	for {
		if delta = runtime.NumGoroutine() - base; delta <= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets hold %d goroutines, want at most one each", n, delta)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
