package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgserver"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/lib/pq"
)

// Chaos parameters: 200 person messages a second for 15 s, to a dozen
// threads Baton owns; agent replies while the Graph API misbehaves; four
// console tabs, two on each instance.
const (
	chaosMessages = 3000
	chaosInterval = 5 * time.Millisecond
	chaosPeople   = 12
	chaosReplies  = 16
	chaosTabs     = 2 // per instance
)

// TestChaos is issue 9's chaos test: the whole system on loopback, hit by
// every fault the platform and operations produce at once.
//
// Set-up: a PostgreSQL cluster of its own (so that it can be stopped
// without hurting the tests that share pgtest's), the emulator with its
// demo bot as Primary, and two `baton serve` instances as child processes
// (this test binary, re-executed: see chaosChild) behind a round-robin
// proxy registered as the Secondary's webhook. A dozen people ask for a
// human, so the bot hands their threads to Baton.
//
// Then the people send messages paced at 200 a second for 15 s through the
// emulator (unique mids; the emulator batches and delivers them to
// Baton's webhook on "messaging", one POST in flight, retrying every
// non-200 on its virtual clock, which the test moves on whenever the proxy
// saw a failure) while, on a schedule:
//
//  1. the emulator sends 25 % of the acknowledged webhook POSTs twice and,
//     until the replies start, drops 15 % of the batches (never
//     delivered, as Facebook's lost ones);
//  2. PostgreSQL is stopped with `pg_ctl stop -m fast` and restarted;
//  3. instance B is SIGKILLed mid-delivery (the proxy answers 502 for it,
//     as a load balancer would) and restarted a moment later;
//  4. every LISTEN connection is terminated;
//  5. the Graph API fails half its calls and answers slowly while agents
//     post replies through /api/v1 on both instances; during them
//     PostgreSQL is stopped with `-m immediate` (a crash) and restarted,
//     and then the Graph API is down altogether for a second.
//
// At the end, with exact equality:
//
//   - deliveries: every mid the emulator got a 200 for is stored exactly
//     once; every mid of a dropped batch is not stored; every sent mid is
//     one or the other; every batch that got a non-200 was retried until a
//     200 (so its mids are stored);
//   - replies: each was queued once (one outbox row), sent, and reached
//     the person exactly once;
//   - tabs: "every connected browser saw every event once", defined by
//     the protocol of web/ws.go and static/app.js: changes are announced
//     as (conversation, seq) and the browser shows the newest state it
//     has heard of or re-read (it re-reads on every reconnect, on
//     "resync" and on a seq-0 change). For each tab (a websocket on one
//     instance, reconnected whenever it drops: see chaosBrowser):
//     "every" means that once the run has settled, the seq the tab shows
//     for each conversation equals the database's conversations.seq;
//     "once" means that no (conversation, seq) notification reached the
//     tab twice over all its connections. (Notifications may be
//     coalesced, and a seq missed while a connection or LISTEN was down
//     is covered by the re-read: the counts say how many of each.)
//
// The counts are printed with t.Logf.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos test takes about 30 s")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// Its own cluster. The postgres user (when running as root) must be
	// able to reach the directory: t.TempDir's are private.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o711)
	}
	pg, err := pgserver.Start(ctx, filepath.Join(dir, "pg"), pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Resume(context.Background()); pg.Stop() })
	if err := ensureDatabase(ctx, pg, "baton"); err != nil {
		t.Fatal(err)
	}
	dsn := pg.DSN("baton")
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	// The emulator, and Baton's app registered as Secondary (its webhook
	// comes once an instance can answer the verification).
	emu, err := startEmulator(ctx, Env{}, "127.0.0.1:0", true, "", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	// The people's 200 messages a second reuse connections.
	ce := &chaosEmulator{t: t, url: emu.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	secret, verify := "chaos-secret", "chaos-verify"
	token, err := registerApp(ctx, emu.URL, map[string]any{"id": demoBatonAppID, "name": "Baton",
		"secret": secret, "verify_token": verify, "role": "secondary_receiver", "human_agent": true})
	if err != nil {
		t.Fatal(err)
	}
	// Failing deliveries are retried until they succeed: the run moves
	// the emulator's clock by minutes, and Facebook's one-hour limit would
	// only disable the app of a run gone wrong.
	ce.do(http.MethodPut, "/_emulator/switches", map[string]any{"disable_after": "never"}, nil)

	const adminEmail, adminPassword = "admin@example.test", "correct horse battery"
	env := map[string]string{
		"DATABASE_URL": dsn, "BATON_ADMIN_EMAIL": adminEmail, "BATON_ADMIN_PASSWORD": adminPassword,
		"BATON_PASSWORD_COST": "4", "BATON_LOG_FORMAT": "text", "BATON_LOG_LEVEL": "warn",
		"MESSENGER_APP_ID": demoBatonAppID, "MESSENGER_APP_SECRET": secret, "MESSENGER_VERIFY_TOKEN": verify,
		"MESSENGER_PAGE_ID": emu.emu.PageID(), "MESSENGER_PAGE_TOKEN": token, "MESSENGER_HUMAN_AGENT": "true",
		"GRAPH_API_URL": emu.URL + "/v25.0",
	}
	instA, instB := newChaosInstance(t, "A", env), newChaosInstance(t, "B", env)
	for _, in := range []*chaosInstance{instA, instB} { // A migrates first
		if err := in.start(); err != nil {
			t.Fatal(err)
		}
	}
	proxy := startChaosProxy(t, instA.addr, instB.addr)
	if _, err := registerApp(ctx, emu.URL, map[string]any{"id": demoBatonAppID, "webhook_url": proxy.URL + "/webhook", "verify_token": verify}); err != nil {
		t.Fatal(err)
	}

	// The people, handed over to Baton the real way.
	var people []string
	for i := range chaosPeople {
		var u struct {
			PSID string `json:"psid"`
		}
		ce.do(http.MethodPost, "/_emulator/users", map[string]any{"first_name": "Chaos", "last_name": fmt.Sprintf("Person%d", i)}, &u)
		people = append(people, u.PSID)
		ce.do(http.MethodPost, "/_emulator/users/"+u.PSID+"/messages", map[string]any{"text": "human please"}, nil)
	}
	chaosWait(t, 30*time.Second, "every thread handed over to Baton", func() bool {
		var n int
		db.QueryRowContext(ctx, `select count(*) from conversations where psid = any($1) and status = $2`,
			pq.Array(people), baton.StatusOpen).Scan(&n)
		return n == len(people)
	})
	convOf := map[string]int64{}
	var convs []int64
	rows, err := db.QueryContext(ctx, `select psid, id from conversations where psid = any($1) order by id`, pq.Array(people))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var psid string
		var id int64
		if err := rows.Scan(&psid, &id); err != nil {
			t.Fatal(err)
		}
		convOf[psid] = id
		convs = append(convs, id)
	}
	rows.Close()

	// An API token for the agents' replies.
	users, err := db.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var apiToken string
	for _, u := range users {
		if u.Role == baton.RoleAdmin {
			_, apiToken, err = db.CreateAPIToken(ctx, u.ID, "chaos")
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if apiToken == "" {
		t.Fatal("no admin to give a token to")
	}

	// The console tabs, connected through the whole run.
	tabCtx, stopTabs := context.WithCancel(ctx)
	var tabsWG sync.WaitGroup
	var tabs []*chaosBrowser
	for _, in := range []*chaosInstance{instA, instB} {
		for i := range chaosTabs {
			b := newChaosBrowser(fmt.Sprintf("%s%d", in.name, i), in.addr, rtSignIn(t, in.addr, adminEmail, adminPassword), convs)
			tabs = append(tabs, b)
			tabsWG.Add(1)
			go func() { defer tabsWG.Done(); b.run(tabCtx) }()
		}
	}
	t.Cleanup(func() { stopTabs(); tabsWG.Wait() })

	// The retry pump: Facebook retries a failed delivery at once, then
	// every 20 s; the emulator does so on its virtual clock, which is
	// moved on whenever the proxy answered a non-200.
	pumpCtx, stopPump := context.WithCancel(ctx)
	var advances atomic.Int64
	pumpDone := make(chan struct{})
	go func() {
		defer close(pumpDone)
		var seen int64
		for pumpCtx.Err() == nil {
			if n := proxy.failures.Load(); n != seen {
				seen = n
				// A retry every 250 ms of real time while deliveries
				// fail: 20 s of Facebook's time, compressed.
				select {
				case <-pumpCtx.Done():
				case <-time.After(250 * time.Millisecond):
				}
				if ce.advance(pumpCtx, 21) == nil {
					advances.Add(1)
				}
				continue
			}
			select {
			case <-pumpCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stopPump(); <-pumpDone })

	// The people write, at a steady rate. The writers and the agents stop
	// early if the test fails, before it ends.
	bgCtx, stopBg := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	t.Cleanup(func() { stopBg(); bgWG.Wait() })
	start := time.Now()
	mids := make([]string, chaosMessages)
	var sendWG sync.WaitGroup
	sendWG.Add(1)
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		defer sendWG.Done()
		for i := range chaosMessages {
			if bgCtx.Err() != nil {
				return
			}
			if d := time.Until(start.Add(time.Duration(i) * chaosInterval)); d > 0 {
				time.Sleep(d) // pacing, not synchronisation
			}
			sendWG.Add(1)
			go func() {
				defer sendWG.Done()
				var out struct {
					Mid string `json:"mid"`
				}
				psid := people[i%len(people)]
				if err := ce.try(http.MethodPost, "/_emulator/users/"+psid+"/messages", map[string]any{"text": fmt.Sprintf("chaos line %d", i)}, &out); err != nil {
					t.Errorf("message %d: %v", i, err)
				}
				mids[i] = out.Mid
			}()
		}
	}()

	// The faults, on a schedule over the delivery window.
	at := func(d time.Duration) {
		if w := time.Until(start.Add(d)); w > 0 {
			time.Sleep(w) // the schedule, not synchronisation
		}
	}
	var replies []chaosReply
	var listenKilled int
	outage := func(mode string, down time.Duration) time.Duration {
		t0 := time.Now()
		if err := pg.Halt(context.Background(), mode); err != nil {
			t.Errorf("stop postgres (%s): %v", mode, err)
		}
		time.Sleep(down) // the length of the outage
		if err := pg.Resume(context.Background()); err != nil {
			t.Fatalf("restart postgres: %v", err)
		}
		return time.Since(t0)
	}
	var outages []string
	at(time.Second)
	ce.faults(map[string]any{"webhook_drop_rate": 0.15, "webhook_duplicate_rate": 0.25})
	at(2 * time.Second)
	outages = append(outages, fmt.Sprintf("fast stop %v", outage("fast", time.Second).Round(time.Millisecond)))
	at(4500 * time.Millisecond)
	// SIGKILL mid-delivery: as soon as a delivery has reached B.
	select {
	case <-proxy.trapNext(instB.addr):
	case <-time.After(30 * time.Second): // stops a broken run only
		t.Fatal("no delivery reached instance B to kill it during")
	}
	t0 := time.Now()
	instB.kill()
	time.Sleep(time.Second) // the orchestrator notices and restarts it
	if err := instB.start(); err != nil {
		t.Fatal(err)
	}
	killedFor := time.Since(t0)
	listenKilled = chaosTerminateListeners(t, db)
	at(8 * time.Second)
	// Drops end before the replies: a reply whose send's result was lost
	// with the database and whose echo was then dropped cannot be told
	// from an unsent one (PROTOCOL.md §9), and would rightly be sent again.
	ce.faults(map[string]any{"webhook_drop_rate": 0, "graph_error_rate": 0.5, "graph_latency_ms": 150})
	repliesDone := make(chan struct{})
	bgWG.Add(1)
	go func() {
		defer bgWG.Done()
		defer close(repliesDone)
		for i := range chaosReplies {
			in := []*chaosInstance{instA, instB}[i%2]
			psid := people[i%len(people)]
			r := chaosReply{psid: psid, text: fmt.Sprintf("chaos reply %d", i)}
			r.tries = chaosPostReply(bgCtx, t, db, in.addr, apiToken, convOf[psid], r.text)
			replies = append(replies, r)
			time.Sleep(200 * time.Millisecond) // the agents' pace
		}
	}()
	at(10 * time.Second)
	outages = append(outages, fmt.Sprintf("immediate stop %v", outage("immediate", time.Second).Round(time.Millisecond)))
	<-repliesDone
	ce.faults(map[string]any{"graph_down": true})
	time.Sleep(time.Second) // the length of the Graph outage
	ce.faults(map[string]any{"graph_down": false, "graph_error_rate": 0, "graph_latency_ms": 0})
	at(14 * time.Second)
	ce.faults(map[string]any{"webhook_drop_rate": 0, "webhook_duplicate_rate": 0})
	sendWG.Wait()
	sendTime := time.Since(start)

	// Drain: every batch is either acknowledged or was dropped.
	var tl *chaosTally
	chaosWait(t, 90*time.Second, "every delivery acknowledged or dropped", func() bool {
		ce.advance(ctx, 21)
		tl = ce.tally()
		for _, m := range mids {
			if m != "" && !tl.acked[m] && !tl.dropped[m] {
				return false
			}
		}
		return true
	})
	stopPump()
	<-pumpDone

	// Deliveries.
	stored := map[string]int{}
	rows, err = db.QueryContext(ctx, `select mid, count(*) from messages where mid = any($1) group by mid`, pq.Array(mids))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var mid string
		var n int
		if err := rows.Scan(&mid, &n); err != nil {
			t.Fatal(err)
		}
		stored[mid] = n
	}
	rows.Close()
	unique := map[string]bool{}
	var storedOnce, lost, doubled, droppedStored int
	for _, m := range mids {
		if m == "" || unique[m] {
			t.Errorf("mid %q not unique or missing", m)
			continue
		}
		unique[m] = true
		switch n := stored[m]; {
		case tl.acked[m] && tl.dropped[m]:
			t.Errorf("mid %s both acknowledged and dropped", m)
		case tl.acked[m] && n == 1:
			storedOnce++
		case tl.acked[m] && n == 0:
			lost++
			t.Errorf("mid %s acknowledged with a 200 but not stored", m)
		case n > 1:
			doubled++
			t.Errorf("mid %s stored %d times", m, n)
		case tl.dropped[m] && n != 0:
			droppedStored++
			t.Errorf("mid %s was dropped by the emulator (never delivered) yet stored", m)
		}
	}
	var retriedBatches, retriedOK int
	for body := range tl.failedBodies {
		retriedBatches++
		if tl.okBodies[body] {
			retriedOK++
		} else {
			t.Errorf("a batch refused %d times was never acknowledged: %.200s", tl.failedBodies[body], body)
		}
	}
	if storedOnce != len(tl.ackedList) {
		t.Errorf("%d mids stored once, %d acknowledged", storedOnce, len(tl.ackedList))
	}
	if storedOnce+len(tl.droppedList) != len(mids) {
		t.Errorf("%d stored + %d dropped != %d sent", storedOnce, len(tl.droppedList), len(mids))
	}
	// The faults must have happened, or the test proves nothing. (The
	// SIGKILL surely hit a delivery in flight, by the proxy's trap; the
	// proxy answered 502 for it unless B was quicker than the kill.)
	if tl.failedTotal() == 0 {
		t.Errorf("no delivery failed (%s): the outages missed the deliveries", describeCounts(tl.failed))
	}
	// Duplicates are near certain (a quarter of some 50 POSTs); a drop is
	// likely but not required: its mids would only be counted.
	if tl.duplicatePosts == 0 {
		t.Errorf("no POST sent twice (%d batches dropped): the webhook faults did not bite", tl.droppedBatches)
	}

	// Replies: with the Graph API healthy, every reply is sent, and the
	// person got each exactly once. The instances' clocks are real, so
	// instead of moving them the test makes due now what waits on them:
	// the retry backoff of pending rows, and the 90 s lease of a row whose
	// result was lost with the database (claimed over 5 s ago, when a
	// send takes milliseconds): the worker that takes it over finds its
	// echo, or sends it.
	texts := make([]string, len(replies))
	for i, r := range replies {
		texts[i] = r.text
	}
	var outboxState string
	chaosWaitSay(t, 60*time.Second, func() string { return "every reply sent; outbox: " + outboxState }, func() bool {
		db.ExecContext(ctx, `update outbox set next_attempt_at = now() where text = any($1) and next_attempt_at > now()
			and (status = 'pending' or (status = 'sending' and claimed_at < now() - interval '5 seconds'))`, pq.Array(texts))
		var pending, failed int
		db.QueryRowContext(ctx, `select count(*) filter (where status not in ('sent', 'failed')), count(*) filter (where status = 'failed'),
			coalesce(string_agg(format('%s %s %s tries %s next %s claimed %s', text, status, last_error, attempts, next_attempt_at - now(), claimed_at), '; '), '')
			from outbox where kind = 'message' and text = any($1)`, pq.Array(texts)).Scan(&pending, &failed, &outboxState)
		if failed > 0 {
			t.Fatalf("%d replies failed for good: %s", failed, outboxState)
		}
		return pending == 0
	})
	var outboxRows, sendAttempts, replyTries int
	db.QueryRowContext(ctx, `select count(*), coalesce(sum(attempts), 0) from outbox where kind = 'message' and text = any($1)`,
		pq.Array(texts)).Scan(&outboxRows, &sendAttempts)
	if outboxRows != len(replies) {
		t.Errorf("%d outbox rows for %d replies: a reply was queued twice or lost", outboxRows, len(replies))
	}
	if sendAttempts <= len(replies) {
		t.Errorf("%d send attempts for %d replies: the Graph faults did not bite", sendAttempts, len(replies))
	}
	var sentOnce int
	for _, r := range replies {
		replyTries += r.tries
		n := 0
		for _, m := range ce.personSees(r.psid) {
			if m.From == "page" && m.AppID != nil && *m.AppID == demoBatonAppID && m.Text == r.text {
				n++
			}
		}
		if n == 1 {
			sentOnce++
		} else {
			t.Errorf("reply %q reached the person %d times, want once", r.text, n)
		}
	}

	// The listeners are back, and every tab shows what the database has.
	chaosWait(t, 30*time.Second, "both LISTEN connections back", func() bool {
		var n int
		db.QueryRowContext(ctx, `select count(*) from pg_stat_activity where application_name = $1`, postgres.ListenerApplicationName).Scan(&n)
		return n == 2
	})
	dbSeq := map[int64]int64{}
	var lagging string
	settled := func() bool {
		rows, err := db.QueryContext(ctx, `select id, seq from conversations where id = any($1)`, pq.Array(convs))
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var id, seq int64
			if rows.Scan(&id, &seq) == nil {
				dbSeq[id] = seq
			}
		}
		for _, b := range tabs {
			for _, id := range convs {
				if got := b.knownSeq(id); got != dbSeq[id] {
					lagging = fmt.Sprintf("tab %s shows conversation %d at seq %d, the database has %d", b.name, id, got, dbSeq[id])
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(30 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("the tabs never caught up: %s", lagging)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopTabs()
	tabsWG.Wait()
	var heardTotal, notified, zero, resyncs, rereads, reopens, stale, rereadFailures int
	for _, b := range tabs {
		for _, d := range b.doubles() {
			t.Errorf("tab %s heard %s", b.name, d)
		}
		b.mu.Lock()
		heardTotal += b.changes
		notified += len(b.heard)
		zero += b.zeroChanges
		resyncs += b.resyncs
		rereads += b.rereads
		reopens += b.opens - 1
		stale += b.staleSkips
		rereadFailures += b.rereadFailures
		for k := range b.heard {
			if k[1] > dbSeq[k[0]] {
				t.Errorf("tab %s heard seq %d of conversation %d, beyond the database's %d", b.name, k[1], k[0], dbSeq[k[0]])
			}
		}
		b.mu.Unlock()
	}
	var totalSeq int64
	for _, id := range convs {
		totalSeq += dbSeq[id]
	}

	// The instances stop cleanly, and without a data race.
	for _, in := range []*chaosInstance{instA, instB} {
		if err := in.stop(); err != nil {
			t.Errorf("%v\n%s", err, in.logTail())
		}
		if b, _ := os.ReadFile(in.log); bytes.Contains(b, []byte("DATA RACE")) {
			t.Errorf("instance %s had a data race:\n%s", in.name, in.logTail())
		}
	}

	t.Logf("sent: %d messages from %d people in %v (%.0f/s)", len(mids), len(people), sendTime.Round(time.Millisecond), float64(len(mids))/sendTime.Seconds())
	t.Logf("deliveries (emulator log): %d POST attempts: %d answered 200 (%d on the first attempt), %d refused (%s), %d batches dropped (%d mids), %d duplicate POSTs (%s)",
		tl.posts, tl.ok200, tl.firstTry, tl.failedTotal(), describeCounts(tl.failed), tl.droppedBatches, len(tl.droppedList), tl.duplicatePosts, describeCounts(tl.dupStatus))
	t.Logf("proxy answers: %s; retry pump moved the emulator clock %d times", proxy.describe(), advances.Load())
	t.Logf("stored: %d of %d acknowledged mids stored exactly once, %d lost, %d doubled, %d dropped-but-stored; %d refused batches, %d retried until 200; %d duplicate POSTs acknowledged and absorbed",
		storedOnce, len(tl.ackedList), lost, doubled, droppedStored, retriedBatches, retriedOK, tl.dupStatus[http.StatusOK])
	t.Logf("faults: postgres %s; instance B SIGKILLed and back after %v (%d runs); %d LISTEN connections terminated; graph_error_rate 0.5 + 150 ms latency, then graph_down 1 s",
		strings.Join(outages, ", "), killedFor.Round(time.Millisecond), instB.runs, listenKilled)
	t.Logf("replies: %d queued (%d API posts), %d outbox rows, %d send attempts, %d reached the person exactly once", len(replies), replyTries, outboxRows, sendAttempts, sentOnce)
	t.Logf("tabs: %d tabs, %d reconnects; %d notifications (%d distinct (conversation, seq), %d seq 0, %d not newer), %d resyncs, %d re-reads (%d failed and retried); database seqs total %d, every tab at them",
		len(tabs), reopens, heardTotal, notified, zero, stale, resyncs, rereads, rereadFailures, totalSeq)
}

// chaosReply is one agent reply and how many API posts it took.
type chaosReply struct {
	psid, text string
	tries      int
}

// chaosPostReply posts a reply through the API until it is queued. A post
// that failed may still have committed (the answer was lost with the
// database): the outbox is looked at before posting again, so each reply
// is queued once.
func chaosPostReply(ctx context.Context, t *testing.T, db *postgres.DB, addr, token string, conv int64, text string) int {
	body, _ := json.Marshal(map[string]any{"text": text})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second) // stops a broken run only
	tries := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		tries++
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/api/v1/conversations/%d/messages", addr, conv), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return tries
			}
		}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			var n int
			if err := db.QueryRowContext(ctx, `select count(*) from outbox where text = $1`, text).Scan(&n); err == nil {
				if n > 0 {
					return tries
				}
				break
			}
			time.Sleep(100 * time.Millisecond) // the database is down: poll
		}
		time.Sleep(100 * time.Millisecond) // the agent clicks again
	}
	if ctx.Err() == nil {
		t.Errorf("reply %q never queued", text)
	}
	return tries
}

// chaosTerminateListeners ends every LISTEN connection and says how many.
func chaosTerminateListeners(t *testing.T, db *postgres.DB) int {
	var n int
	err := db.QueryRow(`select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
		where application_name = $1) t`, postgres.ListenerApplicationName).Scan(&n)
	if err != nil {
		t.Errorf("terminate LISTEN connections: %v", err)
	}
	return n
}

// chaosWait polls cond until it holds; the deadline only stops a broken
// run from hanging.
func chaosWait(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	chaosWaitSay(t, limit, func() string { return what }, cond)
}

// chaosWaitSay is chaosWait whose failure message is computed at the end.
func chaosWaitSay(t *testing.T, limit time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chaosEmulator calls the emulator's control API.
type chaosEmulator struct {
	t      *testing.T
	url    string
	client *http.Client
}

func (e *chaosEmulator) try(method, path string, in, out any) error {
	return e.tryCtx(context.Background(), method, path, in, out)
}

func (e *chaosEmulator) tryCtx(ctx context.Context, method, path string, in, out any) error {
	return emulatorDo(ctx, e.client, method, e.url+path, in, out)
}

func (e *chaosEmulator) do(method, path string, in, out any) {
	e.t.Helper()
	if err := e.try(method, path, in, out); err != nil {
		e.t.Fatal(err)
	}
}

func (e *chaosEmulator) faults(f map[string]any) {
	e.t.Helper()
	e.do(http.MethodPut, "/_emulator/faults", f, nil)
}

// advance moves the emulator's clock, which runs the retries now due.
func (e *chaosEmulator) advance(ctx context.Context, seconds int) error {
	return e.tryCtx(ctx, http.MethodPost, "/_emulator/clock", map[string]any{"advance_seconds": seconds}, nil)
}

func (e *chaosEmulator) personSees(psid string) []seenMessage {
	e.t.Helper()
	var out struct {
		Messages []seenMessage `json:"messages"`
	}
	e.do(http.MethodGet, "/_emulator/users/"+psid+"/conversation", nil, &out)
	return out.Messages
}

// chaosTally is the emulator's delivery log to Baton's app, classified.
type chaosTally struct {
	posts, ok200, firstTry int
	// failed counts refused attempts by status (0: no answer).
	failed                 map[int]int
	droppedBatches         int
	duplicatePosts         int
	dupStatus              map[int]int
	acked, dropped         map[string]bool
	ackedList, droppedList []string
	// failedBodies counts the refusals of each batch (by its exact body:
	// every attempt sends the same bytes); okBodies are those acknowledged.
	failedBodies map[string]int
	okBodies     map[string]bool
}

func (tl *chaosTally) failedTotal() int {
	n := 0
	for _, v := range tl.failed {
		n += v
	}
	return n
}

// tally reads and classifies the delivery log.
func (e *chaosEmulator) tally() *chaosTally {
	e.t.Helper()
	var log struct {
		Deliveries []struct {
			Attempt   int    `json:"attempt"`
			Status    int    `json:"status"`
			Body      string `json:"body"`
			Dropped   bool   `json:"dropped"`
			Duplicate bool   `json:"duplicate"`
		} `json:"deliveries"`
	}
	e.do(http.MethodGet, "/_emulator/deliveries?app="+demoBatonAppID, nil, &log)
	// The log keeps the last 5000 attempts (emulator.deliveryLogMax);
	// a run that fills it could not be judged.
	if len(log.Deliveries) >= 5000 {
		e.t.Fatalf("the emulator's delivery log is full (%d attempts): lower chaosMessages", len(log.Deliveries))
	}
	tl := &chaosTally{failed: map[int]int{}, dupStatus: map[int]int{}, acked: map[string]bool{}, dropped: map[string]bool{},
		failedBodies: map[string]int{}, okBodies: map[string]bool{}}
	for _, d := range log.Deliveries {
		var env struct {
			Entry []struct {
				Messaging []struct {
					Message *struct {
						Mid    string `json:"mid"`
						IsEcho bool   `json:"is_echo"`
					} `json:"message"`
				} `json:"messaging"`
			} `json:"entry"`
		}
		if err := json.Unmarshal([]byte(d.Body), &env); err != nil {
			e.t.Fatalf("delivery body: %v: %s", err, d.Body)
		}
		var ms []string
		for _, en := range env.Entry {
			for _, m := range en.Messaging {
				if m.Message != nil && !m.Message.IsEcho {
					ms = append(ms, m.Message.Mid)
				}
			}
		}
		switch {
		case d.Dropped:
			tl.droppedBatches++
			for _, m := range ms {
				tl.dropped[m] = true
				tl.droppedList = append(tl.droppedList, m)
			}
		case d.Duplicate:
			tl.duplicatePosts++
			tl.dupStatus[d.Status]++
		case d.Status == http.StatusOK:
			tl.posts++
			tl.ok200++
			if d.Attempt == 1 {
				tl.firstTry++
			}
			tl.okBodies[d.Body] = true
			for _, m := range ms {
				if !tl.acked[m] {
					tl.acked[m] = true
					tl.ackedList = append(tl.ackedList, m)
				}
			}
		default:
			tl.posts++
			tl.failed[d.Status]++
			tl.failedBodies[d.Body]++
		}
	}
	slices.Sort(tl.ackedList)
	return tl
}
