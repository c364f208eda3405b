package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// chaosBrowser is a console tab kept open through TestChaos: a websocket
// on one instance, reconnected to it whenever it drops (the instance was
// killed, or dropped the socket), that follows static/app.js exactly:
//
//   - on every open after the first, and on "resync", it re-reads every
//     conversation it shows;
//   - on "change" with seq 0 ("changed, number unknown") it re-reads that
//     conversation;
//   - on "change" with a seq above what it shows, it re-reads it too (the
//     browser fetches the live fragment); here the seq itself is the
//     state, and a re-read would only add load.
//
// A re-read is the live fragment's data-seq. known is the newest seq the
// tab shows for each conversation: what the user sees.
type chaosBrowser struct {
	name   string
	addr   string
	cookie *http.Cookie
	convs  []int64

	mu    sync.Mutex
	known map[int64]int64
	// heard counts the change notifications with a seq, by conversation
	// and seq, over every connection of the tab.
	heard map[[2]int64]int
	// Counters for the report.
	opens, changes, zeroChanges, resyncs, rereads, staleSkips int
	// rereadFailures are re-reads that failed (the database or the
	// instance was down) and were tried again.
	rereadFailures int
}

func newChaosBrowser(name, addr string, cookie *http.Cookie, convs []int64) *chaosBrowser {
	return &chaosBrowser{name: name, addr: addr, cookie: cookie, convs: convs,
		known: map[int64]int64{}, heard: map[[2]int64]int{}}
}

// run keeps the tab connected until ctx ends.
func (b *chaosBrowser) run(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		h := http.Header{"Origin": {"http://" + b.addr}, "Sec-Fetch-Mode": {"websocket"}}
		h.Set("Cookie", b.cookie.String())
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, _, err := websocket.Dial(dctx, "ws://"+b.addr+"/ws", &websocket.DialOptions{HTTPHeader: h, HTTPClient: client})
		cancel()
		if err != nil {
			// app.js backs off from 0.5 s; the test's pace is faster.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		b.mu.Lock()
		b.opens++
		b.mu.Unlock()
		// Every open re-reads everything shown: the first is the page
		// load (the page was rendered just before), the others app.js's
		// catch-up after a gap.
		b.rereadAll(ctx, client)
		b.listen(ctx, c, client)
		c.CloseNow()
	}
}

// listen reads one connection until it ends.
func (b *chaosBrowser) listen(ctx context.Context, c *websocket.Conn, client *http.Client) {
	stop := context.AfterFunc(ctx, func() { c.CloseNow() })
	defer stop()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m rtMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case "change":
			b.mu.Lock()
			b.changes++
			if m.Seq == 0 {
				b.zeroChanges++
			} else {
				b.heard[[2]int64{m.Conversation, m.Seq}]++
				if m.Seq > b.known[m.Conversation] {
					b.known[m.Conversation] = m.Seq
				} else {
					b.staleSkips++ // app.js: not newer than shown, no re-read
				}
			}
			b.mu.Unlock()
			if m.Seq == 0 {
				b.reread(ctx, client, m.Conversation)
			}
		case "resync":
			b.mu.Lock()
			b.resyncs++
			b.mu.Unlock()
			b.rereadAll(ctx, client)
		}
	}
}

func (b *chaosBrowser) rereadAll(ctx context.Context, client *http.Client) {
	for _, id := range b.convs {
		b.reread(ctx, client, id)
	}
}

// reread fetches a conversation's live fragment until it gets it (a
// browser's fetch that failed is retried by the next event or reconnect;
// retrying at once is the same, sooner), and records its seq.
func (b *chaosBrowser) reread(ctx context.Context, client *http.Client, id int64) {
	for ctx.Err() == nil {
		seq, err := b.fetchSeq(ctx, client, id)
		if err == nil {
			b.mu.Lock()
			b.rereads++
			b.known[id] = max(b.known[id], seq)
			b.mu.Unlock()
			return
		}
		b.mu.Lock()
		b.rereadFailures++
		b.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *chaosBrowser) fetchSeq(ctx context.Context, client *http.Client, id int64) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+"/conversations/"+strconv.FormatInt(id, 10)+"?fragment=live", nil)
	req.AddCookie(b.cookie)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("live fragment: %d", resp.StatusCode)
	}
	m := rtFragSeq.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("no data-seq in the live fragment")
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// knownSeq is the seq the tab shows for conversation id.
func (b *chaosBrowser) knownSeq(id int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.known[id]
}

// doubles are the (conversation, seq) notifications heard more than once.
func (b *chaosBrowser) doubles() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for k, n := range b.heard {
		if n > 1 {
			out = append(out, fmt.Sprintf("conversation %d seq %d ×%d", k[0], k[1], n))
		}
	}
	return out
}
