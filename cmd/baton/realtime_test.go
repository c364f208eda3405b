package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// These tests prove live updates across instances: two Batons on one
// database, a websocket "browser" on each, webhooks posted to either.

// rtStartSecond boots another Baton on bootStack's database,
// registered nowhere: the tests post webhooks to it themselves.
// stop shuts it down once, for the test or at cleanup.
func rtStartSecond(t *testing.T, s *testStack) (inst *instance, stop func() error) {
	t.Helper()
	env := Env{
		"DATABASE_URL": s.inst.db.DSN, "BATON_ADDR": "127.0.0.1:0",
		"BATON_ADMIN_EMAIL": "admin@example.test", "BATON_ADMIN_PASSWORD": "correct horse battery",
		"BATON_PASSWORD_COST": "4",
	}
	c, err := loadConfig(env, false)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = s.clock.Now
	c.PageID, c.AppID = s.demoStack.emu.emu.PageID(), demoBatonAppID
	c.AppSecret, c.VerifyToken = s.rtSecret(), "test-verify"
	c.GraphAPIURL = s.emu0() + "/v25.0"
	c.HumanAgent = true
	c.PageToken = "registered-below"
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	inst, err = startInstance(context.Background(), c, log.With("instance", "B"))
	if err != nil {
		t.Fatal(err)
	}
	stop = sync.OnceValue(inst.Shutdown)
	t.Cleanup(func() { stop() })
	return inst, stop
}

// rtSecret is the app secret bootStack registered.
func (s *testStack) rtSecret() string { return "test-secret-" + s.t.Name() }

// rtSignIn signs in through the login form (GET for the CSRF token, POST
// the form) and returns the session cookie.
func rtSignIn(t *testing.T, addr, email, password string) *http.Cookie {
	t.Helper()
	ck, err := benchSignIn(addr, email, password)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// rtMsg is what the server sends a browser.
type rtMsg struct {
	Type         string `json:"type"`
	Conversation int64  `json:"conversation"`
	Seq          int64  `json:"seq"`
}

// rtSocket is a browser's websocket: it records everything it hears.
type rtSocket struct {
	t      *testing.T
	c      *websocket.Conn
	mu     sync.Mutex
	msgs   []rtMsg
	done   chan struct{}
	endErr error
}

func rtDial(t *testing.T, addr string, cookie *http.Cookie) *rtSocket {
	t.Helper()
	h := http.Header{"Origin": {"http://" + addr}, "Sec-Fetch-Mode": {"websocket"}}
	h.Set("Cookie", cookie.String())
	c, resp, err := websocket.Dial(context.Background(), "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", addr, err, status)
	}
	w := &rtSocket{t: t, c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			var m rtMsg
			if err := wsjson.Read(context.Background(), c, &m); err != nil {
				w.mu.Lock()
				w.endErr = err
				w.mu.Unlock()
				return
			}
			w.mu.Lock()
			w.msgs = append(w.msgs, m)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.CloseNow(); <-w.done })
	waitFor(t, "the hello", func() bool { return w.count("hello") == 1 })
	return w
}

func (w *rtSocket) snapshot() []rtMsg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}

func (w *rtSocket) count(typ string) int {
	n := 0
	for _, m := range w.snapshot() {
		if m.Type == typ {
			n++
		}
	}
	return n
}

// seqs are the sequence numbers announced for conversation id, in the
// order heard (seq 0, "changed, number unknown", left out).
func (w *rtSocket) seqs(id int64) []int64 {
	var out []int64
	for _, m := range w.snapshot() {
		if m.Type == "change" && m.Conversation == id && m.Seq > 0 {
			out = append(out, m.Seq)
		}
	}
	return out
}

func (w *rtSocket) heard(id, seq int64) bool { return slices.Contains(w.seqs(id), seq) }

// closed reports whether the server ended the socket, and its close code.
func (w *rtSocket) closed() (bool, websocket.StatusCode) {
	select {
	case <-w.done:
	default:
		return false, -1
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return true, websocket.CloseStatus(w.endErr)
}

// rtPost posts a signed webhook: psid wrote text, as Meta delivers it.
func (s *testStack) rtPost(addr, psid, mid, text string) {
	s.t.Helper()
	page := s.demoStack.emu.emu.PageID()
	ts := time.Now().UnixMilli()
	body := fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":%q}}]}]}`,
		page, ts, psid, page, ts, mid, text)
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(messenger.HeaderSignature256, messenger.SignSHA256([]byte(body), s.rtSecret()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("webhook to %s: %d %s", addr, resp.StatusCode, b)
	}
}

// rtDBState is a conversation as the database has it: its sequence number
// and its message ids in order.
func (s *testStack) rtDBState(id int64) (seq int64, ids []int64) {
	s.t.Helper()
	err := s.inst.db.QueryRowContext(context.Background(), `select seq from conversations where id = $1`, id).Scan(&seq)
	if err != nil {
		s.t.Fatal(err)
	}
	ms, err := s.inst.db.Messages(context.Background(), id, 0, 100)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return seq, ids
}

var (
	rtFragMessage = regexp.MustCompile(`data-testid="message"[^>]*\bid="m(\d+)"`)
	rtFragSeq     = regexp.MustCompile(`data-seq="(\d+)"`)
	rtFragItem    = regexp.MustCompile(`data-testid="conversation-item" data-id="(\d+)"`)
)

// rtReread is what a browser re-reads for a conversation it shows: the live
// fragment's message ids, in order, and its sequence number.
func rtReread(t *testing.T, addr string, cookie *http.Cookie, id int64) (seq int64, ids []int64) {
	t.Helper()
	body := rtGet(t, "http://"+addr+"/conversations/"+strconv.FormatInt(id, 10)+"?fragment=live", cookie)
	m := rtFragSeq.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no data-seq in the live fragment: %s", body)
	}
	seq, _ = strconv.ParseInt(m[1], 10, 64)
	for _, m := range rtFragMessage.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, n)
	}
	return seq, ids
}

// rtListed is how many times the inbox list fragment shows conversation id.
func rtListed(t *testing.T, addr string, cookie *http.Cookie, id int64) int {
	t.Helper()
	n := 0
	for _, m := range rtFragItem.FindAllStringSubmatch(rtGet(t, "http://"+addr+"/?fragment=list&folder=all", cookie), -1) {
		if m[1] == strconv.FormatInt(id, 10) {
			n++
		}
	}
	return n
}

func rtGet(t *testing.T, rawURL string, cookie *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", rawURL, resp.StatusCode, b)
	}
	return string(b)
}

// rtPair boots the stack, a second instance, signs the admin in and
// opens a socket on each.
type rtPair struct {
	*testStack
	b              *instance
	stopB          func() error
	cookie         *http.Cookie
	wsA, wsB       *rtSocket
	addrA, addrB   string
	psid           string
	conversationID int64
}

func rtBootTwo(t *testing.T) *rtPair {
	s := bootStack(t, nil)
	b, stopB := rtStartSecond(t, s)
	ti := &rtPair{testStack: s, b: b, stopB: stopB, addrA: s.inst.Addr(), addrB: b.Addr()}
	// Sessions live in the database: a cookie from one instance works on
	// the other, as behind a load balancer.
	ti.cookie = rtSignIn(t, ti.addrA, "admin@example.test", "correct horse battery")
	ti.wsA = rtDial(t, ti.addrA, ti.cookie)
	ti.wsB = rtDial(t, ti.addrB, ti.cookie)
	ti.psid = s.newPerson("Rita", "Live")
	return ti
}

// addr alternates between the instances.
func (ti *rtPair) addr(i int) string {
	if i%2 == 0 {
		return ti.addrA
	}
	return ti.addrB
}

// first posts the first message, finds its conversation, and waits until
// it is settled: the profile fetcher has named the person (a change it
// announces with seq 0, "re-read") and both sockets heard it.
func (ti *rtPair) first() {
	ti.rtPost(ti.addrA, ti.psid, "m_first_"+ti.psid, "hello")
	waitFor(ti.t, "the conversation, named", func() bool {
		c := ti.conversationOf(ti.psid)
		return c != nil && c.FirstName == "Rita"
	})
	ti.conversationID = ti.conversationOf(ti.psid).ID
	seq, _ := ti.rtDBState(ti.conversationID)
	waitFor(ti.t, "the profile's change on both sockets", func() bool {
		return ti.wsA.heardSettled(ti.conversationID, seq) && ti.wsB.heardSettled(ti.conversationID, seq)
	})
}

// heardSettled: the socket heard seq, or a seq-0 change, which covers
// every change before it.
func (w *rtSocket) heardSettled(id, seq int64) bool {
	for _, m := range w.snapshot() {
		if m.Type == "change" && m.Conversation == id && (m.Seq == 0 || m.Seq == seq) {
			return true
		}
	}
	return false
}

// Every change, whichever instance took the webhook, is heard once on
// each instance's socket, in order, no sequence number skipped.
func TestRealtimeTwoInstancesEveryChangeOnceInOrder(t *testing.T) {
	ti := rtBootTwo(t)
	ti.first()
	start, _ := ti.rtDBState(ti.conversationID)
	const n = 12
	for i := range n {
		ti.rtPost(ti.addr(i), ti.psid, fmt.Sprintf("m_%s_%d", ti.psid, i), fmt.Sprintf("line %d", i))
		want := start + int64(i) + 1
		// Waiting for each change before the next one keeps the notify
		// loop from coalescing two of them (which it may: a browser
		// re-reads the whole state, so a coalesced change is not lost).
		waitFor(t, fmt.Sprintf("seq %d on both sockets", want), func() bool {
			return ti.wsA.heard(ti.conversationID, want) && ti.wsB.heard(ti.conversationID, want)
		})
	}
	end, ids := ti.rtDBState(ti.conversationID)
	if end != start+n {
		t.Fatalf("database seq %d, want %d (a webhook changed nothing?)", end, start+n)
	}
	var want []int64
	for q := start + 1; q <= end; q++ {
		want = append(want, q)
	}
	for name, w := range map[string]*rtSocket{"A": ti.wsA, "B": ti.wsB} {
		all := w.seqs(ti.conversationID)
		var got []int64
		for _, q := range all {
			if q > start {
				got = append(got, q)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("socket on %s heard seqs %v (all: %v), want each of %v once, in order", name, got, all, want)
		}
		seen := map[int64]bool{}
		for _, q := range all {
			if seen[q] {
				t.Errorf("socket on %s heard seq %d twice", name, q)
			}
			seen[q] = true
		}
	}
	if seq, got := rtReread(t, ti.addrB, ti.cookie, ti.conversationID); seq != end || !slices.Equal(got, ids) {
		t.Errorf("re-read on B: seq %d, messages %v; database: seq %d, %v", seq, got, end, ids)
	}
}

// rtListenBackends are the LISTEN connections on this test's database.
func (s *testStack) rtListenBackends() int {
	var n int
	err := s.inst.db.QueryRowContext(context.Background(),
		`select count(*) from pg_stat_activity where datname = current_database() and application_name = $1`,
		postgres.ListenerApplicationName).Scan(&n)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// Killing every LISTEN connection while webhooks keep coming loses
// nothing: once each listener is back its browsers get a resync, then the
// later changes, and what they re-read is what the database committed.
func TestRealtimeListenerKilledLosesNothing(t *testing.T) {
	ti := rtBootTwo(t)
	ti.first()
	waitFor(t, "both listeners", func() bool { return ti.rtListenBackends() == 2 })

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			ti.rtPost(ti.addr(i), ti.psid, fmt.Sprintf("m_%s_k%d", ti.psid, i), fmt.Sprintf("during %d", i))
		}
	}()
	var killed int
	err := ti.inst.db.QueryRowContext(context.Background(),
		`select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
		  where datname = current_database() and application_name = $1) k`,
		postgres.ListenerApplicationName).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d LISTEN connections, want 2", killed)
	}
	waitFor(t, "a resync on both sockets", func() bool { return ti.wsA.count("resync") >= 1 && ti.wsB.count("resync") >= 1 })
	wg.Wait()

	// One change after everything (posted once both resyncs were heard):
	// each socket hears it, and no seq twice.
	ti.rtPost(ti.addrB, ti.psid, "m_after_"+ti.psid, "after")
	end, ids := ti.rtDBState(ti.conversationID)
	for name, w := range map[string]*rtSocket{"A": ti.wsA, "B": ti.wsB} {
		waitFor(t, "the last change on "+name, func() bool { return w.heard(ti.conversationID, end) })
		seen := map[int64]int{}
		for _, q := range w.seqs(ti.conversationID) {
			seen[q]++
			if seen[q] > 1 {
				t.Errorf("socket on %s heard seq %d twice", name, q)
			}
		}
	}
	for _, addr := range []string{ti.addrA, ti.addrB} {
		seq, got := rtReread(t, addr, ti.cookie, ti.conversationID)
		if seq != end || !slices.Equal(got, ids) {
			t.Errorf("re-read on %s: seq %d, %d messages; database: seq %d, %d messages", addr, seq, len(got), end, len(ids))
		}
	}
	if len(ids) != 32 {
		t.Errorf("the database holds %d messages, want 32", len(ids))
	}
	waitFor(t, "both listeners back", func() bool { return ti.rtListenBackends() == 2 })
}

// A browser whose socket drops while messages keep coming reconnects and
// re-reads: exactly the database's messages, none doubled, and the list
// shows the conversation once.
func TestRealtimeSocketDroppedThenReread(t *testing.T) {
	ti := rtBootTwo(t)
	ti.first()
	ti.wsA.c.Close(websocket.StatusNormalClosure, "laptop sleeps")
	for i := range 15 {
		ti.rtPost(ti.addr(i), ti.psid, fmt.Sprintf("m_%s_d%d", ti.psid, i), fmt.Sprintf("while away %d", i))
	}
	// Back, on the other instance this time (a deploy moved it).
	back := rtDial(t, ti.addrB, ti.cookie)
	end, ids := ti.rtDBState(ti.conversationID)
	seq, got := rtReread(t, ti.addrB, ti.cookie, ti.conversationID)
	if seq != end || !slices.Equal(got, ids) {
		t.Errorf("re-read: seq %d, messages %v; database: seq %d, %v", seq, got, end, ids)
	}
	if len(ids) != 16 {
		t.Errorf("the database holds %d messages, want 16", len(ids))
	}
	if n := rtListed(t, ti.addrB, ti.cookie, ti.conversationID); n != 1 {
		t.Errorf("the list shows the conversation %d times, want 1", n)
	}
	// The socket is live: the next change reaches it.
	ti.rtPost(ti.addrA, ti.psid, "m_next_"+ti.psid, "next")
	waitFor(t, "the next change on the new socket", func() bool { return back.heard(ti.conversationID, end+1) })
}

// A transaction that bumps conversation A's seq and stays open while later
// transactions commit (on B, with higher message ids) is not skipped when
// it finally commits: the browser is told, and its re-read shows it.
func TestRealtimeLateCommitNotSkipped(t *testing.T) {
	ti := rtBootTwo(t)
	ti.first()
	ctx := context.Background()
	a := ti.conversationID

	tx, err := ti.inst.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var lateSeq, lateMsg int64
	if err := tx.QueryRowContext(ctx, `update conversations set seq = seq + 1 where id = $1 returning seq`, a).Scan(&lateSeq); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, `insert into messages (conversation_id, mid, author, text, part, timestamp_ms)
		values ($1, 'm_late', 'user', 'the late one', 'bot', $2) returning id`, a, time.Now().UnixMilli()).Scan(&lateMsg); err != nil {
		t.Fatal(err)
	}

	// Later transactions commit meanwhile, on another conversation.
	other := ti.newPerson("Otto", "Other")
	for i := range 4 {
		ti.rtPost(ti.addr(i), other, fmt.Sprintf("m_%s_%d", other, i), "meanwhile")
	}
	waitFor(t, "the other conversation", func() bool { return ti.conversationOf(other) != nil })
	b := ti.conversationOf(other)
	waitFor(t, "the later commits on both sockets", func() bool {
		return ti.wsA.heard(b.ID, b.Seq) && ti.wsB.heard(b.ID, b.Seq)
	})
	_, bIDs := ti.rtDBState(b.ID)
	if bIDs[0] < lateMsg {
		t.Fatalf("the later commits' messages (%v) should have ids above the held one (%d)", bIDs, lateMsg)
	}
	if ti.wsA.heard(a, lateSeq) {
		t.Fatal("a change was announced before its commit")
	}
	if seq, got := rtReread(t, ti.addrA, ti.cookie, a); seq >= lateSeq || slices.Contains(got, lateMsg) {
		t.Fatalf("an uncommitted change is visible: seq %d, messages %v", seq, got)
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// After commit, the writer announces it as ingest does.
	ti.inst.cons.Changed(map[int64]int64{a: lateSeq})
	waitFor(t, "the late change on both sockets", func() bool { return ti.wsA.heard(a, lateSeq) && ti.wsB.heard(a, lateSeq) })
	for _, addr := range []string{ti.addrA, ti.addrB} {
		seq, got := rtReread(t, addr, ti.cookie, a)
		if seq != lateSeq || !slices.Contains(got, lateMsg) {
			t.Errorf("re-read on %s after the late commit: seq %d, messages %v; want seq %d with message %d", addr, seq, got, lateSeq, lateMsg)
		}
	}
}

// A page on another site cannot open a socket with the agent's cookie; a
// browser that sends data (it has none to send) is cut off; a signed-out
// visitor gets nothing.
func TestRealtimeWSHygiene(t *testing.T) {
	s := bootStack(t, nil)
	addr := s.inst.Addr()
	cookie := rtSignIn(t, addr, "admin@example.test", "correct horse battery")

	tests := []struct {
		name       string
		origin     string
		cookie     bool
		wantStatus int
	}{
		{"foreign origin", "https://evil.example", true, http.StatusForbidden},
		{"null origin", "null", true, http.StatusForbidden},
		{"signed out", "http://" + addr, false, http.StatusUnauthorized},
		{"own origin", "http://" + addr, true, http.StatusSwitchingProtocols},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Origin": {tc.origin}, "Sec-Fetch-Mode": {"websocket"}}
			if tc.cookie {
				h.Set("Cookie", cookie.String())
			}
			c, resp, err := websocket.Dial(context.Background(), "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
			if c != nil {
				c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%v), want %d", resp.StatusCode, err, tc.wantStatus)
			}
		})
	}

	t.Run("data from the browser", func(t *testing.T) {
		w := rtDial(t, addr, cookie)
		if err := w.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe"}`)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server to close", func() bool { ok, _ := w.closed(); return ok })
		if _, code := w.closed(); code != websocket.StatusPolicyViolation {
			t.Fatalf("close code %v, want policy violation", code)
		}
	})
}

// Sign out everywhere on one instance closes that user's sockets on both
// instances, and only theirs; graceful shutdown closes every socket with
// going-away so that browsers reconnect elsewhere.
func TestRealtimeWSSignOutEverywhereAndShutdown(t *testing.T) {
	ti := rtBootTwo(t)
	ctx := context.Background()
	if _, err := ti.inst.acct.service.CreateUser(ctx, nil, account.NewUser{Email: "ana@example.test", Name: "Ana", Role: baton.RoleAgent, Password: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	ana := rtSignIn(t, ti.addrA, "ana@example.test", "correct horse battery")
	anaA, anaB := rtDial(t, ti.addrA, ana), rtDial(t, ti.addrB, ana)

	// Ana signs out everywhere, on A.
	form := url.Values{"csrf_token": {rtCSRF(t, ti.addrA, ana)}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+ti.addrA+"/logout/everywhere", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+ti.addrA)
	req.AddCookie(ana)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", resp.StatusCode)
	}
	for name, w := range map[string]*rtSocket{"A": anaA, "B": anaB} {
		waitFor(t, "Ana's socket on "+name+" to close", func() bool { ok, _ := w.closed(); return ok })
	}
	// The admin's sockets stay, and still hear changes.
	if ok, _ := ti.wsA.closed(); ok {
		t.Fatal("another user's socket on A was closed")
	}
	if ok, _ := ti.wsB.closed(); ok {
		t.Fatal("another user's socket on B was closed")
	}
	ti.first()
	// And Ana cannot reconnect with the ended session.
	h := http.Header{"Origin": {"http://" + ti.addrB}, "Sec-Fetch-Mode": {"websocket"}}
	h.Set("Cookie", ana.String())
	if c, resp, _ := websocket.Dial(ctx, "ws://"+ti.addrB+"/ws", &websocket.DialOptions{HTTPHeader: h}); c != nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect after sign out everywhere: %v", resp)
	}

	// Graceful shutdown of B: its socket closes with going-away; A's stays.
	if err := ti.stopB(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B's socket to close", func() bool { ok, _ := ti.wsB.closed(); return ok })
	if _, code := ti.wsB.closed(); code != websocket.StatusGoingAway {
		t.Fatalf("shutdown closed the socket with %v, want going away (1001)", code)
	}
	if ok, _ := ti.wsA.closed(); ok {
		t.Fatal("shutting B down closed a socket on A")
	}
}

// rtCSRF reads the session's CSRF token off a console page.
func rtCSRF(t *testing.T, addr string, cookie *http.Cookie) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(rtGet(t, "http://"+addr+"/", cookie))
	if m == nil {
		t.Fatal("no csrf-token meta on the inbox")
	}
	return m[1]
}
