package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// readyWriter hears idleClients say it is ready.
type readyWriter chan string

func (w readyWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// The idle clients of `baton bench ws` answer the server's pings, as
// browsers do, so that sockets opened slowly on a loaded box are not
// dropped as dead peers before the memory is measured.
func TestWSBenchIdleClientsAnswerPings(t *testing.T) {
	const n = 3
	pinged := make(chan error, n*2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			pinged <- err
			return
		}
		go c.Read(context.Background()) // reading is what hears the pongs
		for range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			pinged <- c.Ping(ctx)
			cancel()
		}
		c.CloseNow()
	}))
	defer srv.Close()

	in, stop := io.Pipe()
	ready := make(readyWriter, 1)
	done := make(chan error, 1)
	go func() { done <- idleClients(strings.TrimPrefix(srv.URL, "http://"), "session=x", n, in, ready) }()
	if got := <-ready; got != "ready\n" {
		t.Fatalf("idle clients said %q", got)
	}
	for range n * 2 {
		if err := <-pinged; err != nil {
			t.Fatalf("a ping went unanswered: %v", err)
		}
	}
	stop.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
