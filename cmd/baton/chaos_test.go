package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/postgres"
)

// Chaos parameters: ~100 deliveries a second for ~10 s.
const (
	chaosDeliveries = 1000
	chaosInterval   = 10 * time.Millisecond
	chaosPeople     = 8
	chaosReplies    = 20
)

// chaosDelivery is one webhook delivery and what happened to it.
type chaosDelivery struct {
	mid      string
	attempts int
	non200   int // refusals and transport errors before the 200
	ok       bool
}

// TestChaos proves "acknowledged means durable, nothing lost or doubled"
// under the faults one test can cause without breaking the shared
// cluster: two instances on one database take signed deliveries at a
// steady rate while the database goes away (connections refused and every
// backend terminated: a restart, as the instances see it) and while every
// backend is terminated at once, the LISTEN connections are killed,
// and the emulator's Graph API fails half its calls while agent replies
// are queued. Every delivery is retried by the sender until it gets a 200,
// as Meta does. At the end: each delivery is stored exactly once, and
// each reply reached the person exactly once.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos takes ~15 s")
	}
	s := bootStack(t, nil)
	b, _ := rtStartSecond(t, s)
	ctx := context.Background()
	addrs := [2]string{s.inst.Addr(), b.Addr()}
	secret := "test-secret-" + t.Name()
	page := s.demoStack.emu.emu.PageID()

	// The person agents reply to, handed over to Baton the real way.
	agentPSID := s.newPerson("Chaos", "Agent")
	s.say(agentPSID, "human please")
	waitFor(t, "the handover to Baton", func() bool {
		c := s.conversationOf(agentPSID)
		return c != nil && c.Status == baton.StatusOpen
	})
	conv := s.conversationOf(agentPSID)
	// The people whose deliveries the test sends itself; the emulator
	// knows them so that their profiles resolve.
	var people []string
	for i := range chaosPeople {
		people = append(people, s.newPerson("Chaos", fmt.Sprintf("Person%d", i)))
	}

	client := &http.Client{Timeout: 10 * time.Second}
	deliver := func(d *chaosDelivery, i int) {
		psid := people[i%len(people)]
		ts := time.Now().UnixMilli()
		body := fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":"chaos line %d"}}]}]}`,
			page, ts, psid, page, ts, d.mid, i)
		sig := messenger.SignSHA256([]byte(body), secret)
		give := time.Now().Add(40 * time.Second) // stops a broken run only
		for time.Now().Before(give) {
			d.attempts++
			req, _ := http.NewRequest(http.MethodPost, "http://"+addrs[(i+d.attempts-1)%2]+"/webhook", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(messenger.HeaderSignature256, sig)
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					d.ok = true
					return
				}
			}
			d.non200++
			time.Sleep(50 * time.Millisecond) // Meta backs off too
		}
	}

	// The faults, on a schedule over the delivery window.
	terminate := func(what, cond string) int {
		var n int
		err := s.inst.db.QueryRowContext(ctx, `select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
			where datname = current_database() and pid <> pg_backend_pid() `+cond+`) t`).Scan(&n)
		if err != nil {
			t.Errorf("terminate %s: %v", what, err)
		}
		return n
	}
	// outage is a database restart as the instances see it: connections
	// to this test's database are refused (only it: the cluster is shared)
	// and every existing one is terminated, until the database is back.
	// PostgreSQL will not close the current database, so the switch is
	// thrown from a connection to the maintenance database.
	var name string
	if err := s.inst.db.QueryRowContext(ctx, `select quote_ident(current_database())`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	maint, err := sql.Open("postgres", chaosMaintenanceDSN(s.inst.db.DSN))
	if err != nil {
		t.Fatal(err)
	}
	defer maint.Close()
	allow := func(on bool) error {
		_, err := maint.ExecContext(ctx, fmt.Sprintf(`alter database %s with allow_connections %t`, name, on))
		return err
	}
	t.Cleanup(func() { allow(true) }) // never leave it closed, even on a failed run
	outage := func(d time.Duration) int {
		if err := allow(false); err != nil {
			t.Errorf("outage: %v", err)
			return 0
		}
		var n int
		err := maint.QueryRowContext(ctx, `select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
			where datname = $1) t`, strings.Trim(name, `"`)).Scan(&n)
		if err != nil {
			t.Errorf("outage: terminate: %v", err)
		}
		time.Sleep(d)
		if err := allow(true); err != nil {
			t.Errorf("outage: database not back: %v", err)
		}
		return n
	}
	var terminated, listenKilled atomic.Int64
	var replies []string
	var repliesMu sync.Mutex
	queueReply := func(i int) {
		text := fmt.Sprintf("chaos reply %d", i)
		svc := s.inst.cons.web.Service
		if i%2 == 1 {
			svc = b.cons.web.Service
		}
		for attempt := 0; attempt < 50; attempt++ {
			if _, err := svc.Reply(ctx, s.admin, conv.ID, text, "", ""); err == nil {
				break
			}
			// A failed Reply was rolled back unless the commit got
			// through and only its answer was lost: look before retrying.
			var n int
			if s.inst.db.QueryRowContext(ctx, `select count(*) from outbox where text = $1`, text).Scan(&n) == nil && n > 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		repliesMu.Lock()
		replies = append(replies, text)
		repliesMu.Unlock()
	}
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		step := func(d time.Duration) { time.Sleep(d) }
		step(time.Second)
		terminated.Add(int64(outage(1500 * time.Millisecond)))
		step(time.Second)
		listenKilled.Add(int64(terminate("LISTEN", "and application_name = '"+postgres.ListenerApplicationName+"'")))
		s.faults(map[string]any{"graph_error_rate": 0.5})
		for i := range chaosReplies {
			queueReply(i)
			if i == chaosReplies/2 {
				terminated.Add(int64(terminate("every backend", "")))
			}
			step(150 * time.Millisecond)
		}
		step(time.Second)
		terminated.Add(int64(outage(time.Second)))
		step(500 * time.Millisecond)
		listenKilled.Add(int64(terminate("LISTEN", "and application_name = '"+postgres.ListenerApplicationName+"'")))
		step(time.Second)
		s.faults(map[string]any{"graph_error_rate": 0})
	}()

	deliveries := make([]*chaosDelivery, chaosDeliveries)
	var wg sync.WaitGroup
	tick := time.NewTicker(chaosInterval)
	for i := range deliveries {
		<-tick.C
		d := &chaosDelivery{mid: fmt.Sprintf("m_chaos_%s_%d", t.Name(), i)}
		deliveries[i] = d
		wg.Add(1)
		go func() { defer wg.Done(); deliver(d, i) }()
	}
	tick.Stop()
	wg.Wait()
	<-faultsDone

	// Deliveries: every one ended in a 200, and is stored exactly once.
	var okCount, retried, non200 int
	for _, d := range deliveries {
		if d.ok {
			okCount++
		} else {
			t.Errorf("delivery %s never got a 200 (%d attempts)", d.mid, d.attempts)
		}
		if d.non200 > 0 {
			retried++
			non200 += d.non200
		}
	}
	counts := map[string]int{}
	rows, err := s.inst.db.QueryContext(ctx, `select mid, count(*) from messages where mid like $1 group by mid`, "m_chaos_"+t.Name()+"_%")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var mid string
		var n int
		if err := rows.Scan(&mid, &n); err != nil {
			t.Fatal(err)
		}
		counts[mid] = n
	}
	rows.Close()
	var missing, doubled int
	for _, d := range deliveries {
		switch n := counts[d.mid]; {
		case n == 0 && d.ok:
			missing++
			t.Errorf("delivery %s acknowledged but not stored", d.mid)
		case n > 1:
			doubled++
			t.Errorf("delivery %s stored %d times", d.mid, n)
		}
	}
	if len(counts) != len(deliveries) {
		t.Errorf("%d distinct mids stored, %d delivered", len(counts), len(deliveries))
	}

	// Replies: with the Graph API healthy again and the backoff skipped,
	// every reply is sent, and the person got each exactly once.
	s.advance(2 * time.Minute)
	waitFor(t, "every reply sent", func() bool {
		var n int
		s.inst.db.QueryRowContext(ctx, `select count(*) from outbox where conversation_id = $1 and kind = 'message' and status <> 'sent'`, conv.ID).Scan(&n)
		return n == 0
	})
	seen := map[string]int{}
	for _, m := range s.personSees(agentPSID) {
		if m.From == "page" && m.AppID != nil && *m.AppID == demoBatonAppID {
			seen[m.Text]++
		}
	}
	var sentOnce int
	for _, text := range replies {
		switch n := seen[text]; n {
		case 1:
			sentOnce++
		default:
			t.Errorf("reply %q reached the person %d times, want once", text, n)
		}
	}
	var outboxRows, graphAttempts int
	s.inst.db.QueryRowContext(ctx, `select count(*), coalesce(sum(attempts), 0) from outbox where conversation_id = $1 and kind = 'message'`,
		conv.ID).Scan(&outboxRows, &graphAttempts)
	if outboxRows != len(replies) {
		t.Errorf("%d outbox rows for %d replies: a reply was queued twice or lost", outboxRows, len(replies))
	}

	// The listeners came back on both instances.
	waitFor(t, "both LISTEN connections back", func() bool { return s.rtListenBackends() == 2 })

	t.Logf("deliveries: %d sent, %d acknowledged (200), %d stored once, %d missing, %d doubled; "+
		"%d needed retries (%d non-200 answers in all)", len(deliveries), okCount, len(counts)-doubled, missing, doubled, retried, non200)
	t.Logf("faults: 2 database outages and 1 restart, %d backends terminated, %d LISTEN connections killed, graph_error_rate 0.5 during the replies", terminated.Load(), listenKilled.Load())
	t.Logf("replies: %d queued, %d outbox rows, %d send attempts, %d reached the person exactly once", len(replies), outboxRows, graphAttempts, sentOnce)
}

// chaosMaintenanceDSN points dsn (URL or key=value form) at the
// "postgres" maintenance database.
func chaosMaintenanceDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/postgres"
			return u.String()
		}
	}
	return dsn + " dbname=postgres"
}
