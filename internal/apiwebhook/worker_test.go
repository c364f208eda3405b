package apiwebhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/apiwebhook"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clock is a movable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	err    error // the signature check
}

// receiver is an httptest server that checks each request's signature
// with the secret it is given later, and answers with status().
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	clock  *clock
	got    []received
	status func(n int) int
}

func newReceiver(t *testing.T, c *clock, status func(n int) int) *receiver {
	rc := &receiver{clock: c, status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		err := apiwebhook.Verify(rc.secret, r.Header.Get(apiwebhook.HeaderSignature), body, rc.clock.Now(), 0)
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, err: err})
		n := len(rc.got)
		rc.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(rc.status(n))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// env is a database with a Page, a conversation and a worker on a test
// clock.
type env struct {
	t     *testing.T
	db    *postgres.DB
	clock *clock
	w     *apiwebhook.Worker
	conv  int64
}

func newEnv(t *testing.T) *env {
	db := pgtest.DB(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db.Now = c.Now
	if _, err := db.Exec(`insert into pages (page_id, baton_app_id, primary_app_id) values ('p1', $1, $2)`, batonApp, botApp); err != nil {
		t.Fatal(err)
	}
	var conv int64
	if err := db.Get(&conv, `insert into conversations (page_id, psid, first_name, last_name, status, owner_app_id)
		values ('p1', 'psid1', 'Maria', 'Garcia', 'open', $1) returning id`, batonApp); err != nil {
		t.Fatal(err)
	}
	page := func(ctx context.Context) (*baton.Page, error) { return db.Page(ctx, "p1") }
	return &env{t: t, db: db, clock: c, conv: conv, w: &apiwebhook.Worker{Store: db, Page: page, Now: c.Now}}
}

func (e *env) endpoint(url string, events ...string) *baton.APIWebhookEndpoint {
	e.t.Helper()
	ep, err := e.db.CreateAPIWebhookEndpoint(context.Background(), url, events, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

func (e *env) message(text string) {
	e.t.Helper()
	if _, err := e.db.Exec(`insert into messages (conversation_id, mid, author, text, part, timestamp_ms)
		values ($1, 'm' || gen_random_uuid(), 'user', $2, 'live', 1)`, e.conv, text); err != nil {
		e.t.Fatal(err)
	}
}

// dispatch runs the dispatcher until n deliveries are queued in all. The
// test cluster is shared: a transaction another test binary holds open
// delays what the dispatcher may read (never what it reads in the end),
// so one pass may find nothing yet. The deadline only stops a broken run
// from hanging.
func (e *env) dispatch(n int) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.w.Dispatch(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		var got int
		if err := e.db.Get(&got, `select count(*) from api_webhook_deliveries`); err != nil {
			e.t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d deliveries queued, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) send() int {
	e.t.Helper()
	n, err := e.w.Send(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) deliveries(ep int64) []*baton.APIWebhookDelivery {
	e.t.Helper()
	ds, err := e.db.APIWebhookDeliveries(context.Background(), ep, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return ds
}

// TestDeliveryRetriesWithBackoff: a signed message.created reaches a real
// receiver that fails once; the retry waits for its backoff on the
// injected clock and then succeeds with the same event id and body, the
// person's HTML arriving as plain JSON text.
func TestDeliveryRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, e.clock, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	ep := e.endpoint(rc.URL+"/hook", baton.APIEventMessageCreated)
	rc.secret = ep.Secret
	text := `<script>alert("x")</script> <b>bold</b> & "quotes"`
	e.message(text)
	e.dispatch(1)
	if n := e.send(); n != 1 {
		t.Fatalf("sent %d", n)
	}
	ds := e.deliveries(ep.ID)
	if len(ds) != 1 || ds[0].Status != baton.APIDeliveryPending || ds[0].LastStatus != 500 || ds[0].LastError == "" {
		t.Fatalf("after the 500: %+v", ds[0])
	}
	wait := ds[0].NextAttemptAt.Sub(e.clock.Now())
	if wait < 7500*time.Millisecond || wait > 10*time.Second {
		t.Fatalf("first retry in %s, want 7.5–10 s", wait)
	}
	if n := e.send(); n != 0 {
		t.Fatalf("retried %d before its time", n)
	}
	e.clock.Set(ds[0].NextAttemptAt)
	if n := e.send(); n != 1 {
		t.Fatalf("retry: sent %d", n)
	}
	ds = e.deliveries(ep.ID)
	if ds[0].Status != baton.APIDeliverySent || ds[0].LastStatus != 204 || ds[0].Attempts != 2 || ds[0].SentAt == nil {
		t.Fatalf("after the retry: %+v", ds[0])
	}

	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests", len(got))
	}
	for i, r := range got {
		if r.err != nil {
			t.Errorf("request %d: signature: %v", i, r.err)
		}
		if r.header.Get(apiwebhook.HeaderEvent) != baton.APIEventMessageCreated || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: headers %v", i, r.header)
		}
	}
	if got[0].header.Get(apiwebhook.HeaderDelivery) != got[1].header.Get(apiwebhook.HeaderDelivery) || string(got[0].body) != string(got[1].body) {
		t.Errorf("the retry differs: %s vs %s", got[0].body, got[1].body)
	}
	if got[0].header.Get(apiwebhook.HeaderSignature) == got[1].header.Get(apiwebhook.HeaderSignature) {
		t.Errorf("the retry reused the first attempt's timestamp")
	}
	var ev struct {
		V            int    `json:"v"`
		ID           string `json:"id"`
		Type         string `json:"type"`
		At           string `json:"at"`
		Conversation struct {
			ID    int64  `json:"id"`
			Name  string `json:"name"`
			Owner string `json:"owner"`
		} `json:"conversation"`
		Data struct {
			Message struct {
				Text string `json:"text"`
			} `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.V != 1 || ev.Type != baton.APIEventMessageCreated || ev.ID != got[0].header.Get(apiwebhook.HeaderDelivery) ||
		ev.Conversation.ID != e.conv || ev.Conversation.Name != "Maria Garcia" || ev.Conversation.Owner != "baton" {
		t.Errorf("event %s", got[0].body)
	}
	if _, err := time.Parse(time.RFC3339, ev.At); err != nil {
		t.Errorf("at %q: %v", ev.At, err)
	}
	if ev.Data.Message.Text != text || !strings.Contains(string(got[0].body), `<script>alert(\"x\")</script>`) {
		t.Errorf("text arrived as %q in %s", ev.Data.Message.Text, got[0].body)
	}
}

// TestDeliveryGivesUpAfterADay: a receiver that never answers 2xx is
// retried, each wait at most an hour, until a day has passed; then the
// delivery is failed and the endpoint shows why.
func TestDeliveryGivesUpAfterADay(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, e.clock, func(int) int { return http.StatusServiceUnavailable })
	ep := e.endpoint(rc.URL, baton.APIEventMessageCreated)
	rc.secret = ep.Secret
	start := e.clock.Now()
	e.message("hello")
	e.dispatch(1)
	var d *baton.APIWebhookDelivery
	for i := 0; i < 100; i++ {
		if n := e.send(); n != 1 {
			t.Fatalf("attempt %d: sent %d", i+1, n)
		}
		d = e.deliveries(ep.ID)[0]
		if d.Status != baton.APIDeliveryPending {
			break
		}
		wait := d.NextAttemptAt.Sub(e.clock.Now())
		if wait <= 0 || wait > time.Hour {
			t.Fatalf("attempt %d: next in %s", d.Attempts, wait)
		}
		e.clock.Set(d.NextAttemptAt)
	}
	if d.Status != baton.APIDeliveryFailed || e.clock.Now().Sub(start) < apiwebhook.GiveUpAfter || d.Attempts < 20 {
		t.Fatalf("final: %s after %d attempts over %s", d.Status, d.Attempts, e.clock.Now().Sub(start))
	}
	if n := e.send(); n != 0 {
		t.Fatalf("a failed delivery was sent again")
	}
	eps, _ := e.db.APIWebhookEndpoints(context.Background())
	if eps[0].LastStatus != 503 || !strings.Contains(eps[0].LastError, "503") || eps[0].LastSuccessAt != nil {
		t.Fatalf("endpoint %+v", eps[0])
	}
}

// TestSlowReceiverDoesNotHoldOthers: while one receiver hangs, another
// gets its event and it is recorded.
func TestSlowReceiverDoesNotHoldOthers(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	fast := newReceiver(t, e.clock, func(int) int { return http.StatusOK })
	e.endpoint(slow.URL, baton.APIEventMessageCreated)
	epFast := e.endpoint(fast.URL, baton.APIEventMessageCreated)
	fast.secret = epFast.Secret
	e.message("hello")
	e.dispatch(2)
	done := make(chan struct{})
	go func() { defer close(done); e.w.Send(context.Background()) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ds := e.deliveries(epFast.ID); len(ds) == 1 && ds[0].Status == baton.APIDeliverySent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fast receiver's delivery was not recorded while the slow one hung")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("Send returned while the slow receiver still hung")
	default:
	}
	release <- struct{}{}
	<-done
}

// TestDispatchFiltersByEventType: an endpoint gets only the types it
// chose; a disabled one gets none queued.
func TestDispatchFiltersByEventType(t *testing.T) {
	e := newEnv(t)
	msgs := e.endpoint("https://a.example.test/", baton.APIEventMessageCreated)
	tags := e.endpoint("https://b.example.test/", baton.APIEventTagged)
	off := e.endpoint("https://c.example.test/", baton.APIEventMessageCreated, baton.APIEventTagged)
	if _, err := e.db.SetAPIWebhookEndpointEnabled(context.Background(), off.ID, false); err != nil {
		t.Fatal(err)
	}
	e.message("one")
	if err := e.db.Audit(context.Background(), baton.AuditEntry{At: e.clock.Now(), Action: "tag.add",
		Subject: "conversation:" + jsonInt(e.conv), Detail: map[string]any{"tag": "vip"}}); err != nil {
		t.Fatal(err)
	}
	e.dispatch(2)
	for _, c := range []struct {
		ep   *baton.APIWebhookEndpoint
		want string
	}{{msgs, baton.APIEventMessageCreated}, {tags, baton.APIEventTagged}, {off, ""}} {
		var types []string
		for _, d := range e.deliveries(c.ep.ID) {
			types = append(types, d.EventType)
		}
		if strings.Join(types, ",") != c.want {
			t.Errorf("%s: %v, want %q", c.ep.URL, types, c.want)
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
