package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	hub.Publish(realtime.Change{ConversationID: 7, Seq: 1})
	hub.Publish(realtime.Change{ConversationID: 7, Seq: 2})
	hub.Publish(realtime.Change{Resync: true})
	want := []wsLiveMsg{{Type: "hello"}, {"change", 7, 1}, {"change", 7, 2}, {Type: "resync"}}
	for name, r := range map[string]*wsReader{"ana": ana, "sam": sam} {
		wsWaitUntil(t, name+"'s messages", func() bool { return len(r.got()) == len(want) })
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
