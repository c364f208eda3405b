package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/messenger"
)

// TestBenchIngest runs the command briefly at a low rate against its own
// instance and the reference handler, and checks that every figure is
// printed and every delivery was acknowledged. It says nothing about speed.
func TestBenchIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "ingest",
		"-rate", "20", "-duration", "1s", "-warmup", "200ms", "-events", "2", "-reference"},
		Env{}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	text := out.String()
	t.Log(text)
	if !strings.Contains(text, "synchronous_commit=on") {
		t.Errorf("output does not show synchronous_commit=on:\n%s", text)
	}
	for _, target := range []string{"== baton (in-process) http://127.0.0.1:", "== reference "} {
		if !strings.Contains(text, target) {
			t.Errorf("output lacks %q:\n%s", target, text)
		}
	}
	acked := regexp.MustCompile(`(?m)^acknowledged: ([0-9.]+) deliveries/s, ([0-9.]+) events/s$`).FindAllStringSubmatch(text, -1)
	statuses := regexp.MustCompile(`(?m)^status: 200=(\d+) 503=(\d+) other=(\d+) failed=(\d+)$`).FindAllStringSubmatch(text, -1)
	latencies := regexp.MustCompile(`(?m)^latency from intended send: p50=[0-9.]+ms p90=[0-9.]+ms p99=[0-9.]+ms p99\.9=[0-9.]+ms max=[0-9.]+ms$`).FindAllString(text, -1)
	cpu := regexp.MustCompile(`(?m)^cpu: [0-9.]+ cores this process \(server and load generator\), [0-9.]+ cores postgresql; [0-9]+ µs per acknowledged delivery$`).FindAllString(text, -1)
	wal := regexp.MustCompile(`(?m)^wal: [0-9.]+ KiB per acknowledged delivery$`).FindAllString(text, -1)
	if len(acked) != 2 || len(statuses) != 2 || len(latencies) != 2 || len(cpu) != 2 || len(wal) != 2 {
		t.Fatalf("want throughput, status, latency, cpu and wal lines for both targets, got %d, %d, %d, %d, %d:\n%s",
			len(acked), len(statuses), len(latencies), len(cpu), len(wal), text)
	}
	for i, a := range acked {
		d, _ := strconv.ParseFloat(a[1], 64)
		e, _ := strconv.ParseFloat(a[2], 64)
		// The rate itself depends on the box's load (a loaded CI box may
		// acknowledge nothing inside the short measured second); only its
		// consistency is checked.
		if e != 2*d {
			t.Errorf("target %d: %v deliveries/s and %v events/s, want 2 events per delivery", i, d, e)
		}
	}
	for i, s := range statuses {
		if s[1] == "0" {
			t.Errorf("target %d: no delivery acknowledged: %s", i, s[0])
		}
		if s[2] != "0" || s[3] != "0" || s[4] != "0" {
			t.Errorf("target %d: non-200 answers: %s", i, s[0])
		}
	}
	if !regexp.MustCompile(`(?m)^baton/reference: \S+× acknowledged deliveries/s$`).MatchString(text) {
		t.Errorf("output lacks the baton/reference ratio:\n%s", text)
	}
}

func TestBenchIngestRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "egress"},
		{"bench", "ingest", "-events", "0"},
		{"bench", "ingest", "-events", "101"},
		{"bench", "ingest", "-rate", "-1"},
		{"bench", "ingest", "-duration", "0s"},
		{"bench", "ingest", "-url", "http://127.0.0.1:8080/webhook"},
		{"bench", "ingest", "-url", "http://example.com/webhook", "-secret", "s", "-page", "1"},
		{"bench", "ingest", "-no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, Env{}, &out, &errOut); code != 2 {
			t.Errorf("%q: exit code %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

func TestLoopbackURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/webhook", true},
		{"http://127.1.2.3/webhook", true},
		{"http://[::1]:8080/webhook", true},
		{"http://localhost:8080/webhook", true},
		{"http://10.0.0.1:8080/webhook", false},
		{"http://example.com/webhook", false},
		{"https://127.0.0.1/webhook", false},
		{"127.0.0.1:8080", false},
	} {
		if err := loopbackURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("loopbackURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one", ms(7), 0.5, 7 * time.Millisecond},
		{"median of four", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", ms(hundred...), 0.999, 100 * time.Millisecond},
		{"max", ms(1, 2, 30), 1, 30 * time.Millisecond},
		{"p0 is the min", ms(5, 6), 0, 5 * time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: percentile(%v) = %s, want %s", tc.name, tc.p, got, tc.want)
		}
	}
}

// TestDeliveryGen: deliveries parse as Meta's, hold the asked number of
// person messages of about the asked size, and never repeat a mid (which
// Baton would deduplicate) or, by default, a person.
func TestDeliveryGen(t *testing.T) {
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		events, eventBytes, textBytes, persons int
	}{
		{1, 1400, 200, 0},
		{10, 1400, 200, 0},
		{1, 1400, 1400, 0}, // all text, no nlp block
		{3, 300, 200, 2},
	} {
		g := newDeliveryGen("100200300", tc.events, tc.eventBytes, tc.textBytes, tc.persons, func() time.Time { return fixed })
		mids, people := map[string]bool{}, map[string]bool{}
		for seq := int64(0); seq < 5; seq++ {
			body := g.appendDelivery(nil, seq)
			if n, want := len(body), tc.events*tc.eventBytes; n < want-20 || n > want+40+tc.events*5 {
				t.Errorf("%+v: delivery of %d bytes, want about %d", tc, n, tc.events*tc.eventBytes)
			}
			d, err := messenger.Parse(body)
			if err != nil {
				t.Fatalf("%+v: parse: %v\n%s", tc, err, body)
			}
			if d.Object != "page" || len(d.Events) != tc.events {
				t.Fatalf("%+v: object %q with %d events, want page with %d", tc, d.Object, len(d.Events), tc.events)
			}
			for _, e := range d.Events {
				if want := min(tc.textBytes, tc.eventBytes-170); len(e.Message.Text) < want-40 || len(e.Message.Text) > want {
					t.Errorf("%+v: text of %d bytes, want about %d", tc, len(e.Message.Text), want)
				}
				if e.Kind != baton.KindMessage || e.PageID != "100200300" || e.TimestampMS != fixed.UnixMilli() {
					t.Errorf("%+v: event %+v, want a message to the Page at the clock's time", tc, e)
				}
				if mids[e.DedupeKey] {
					t.Errorf("%+v: dedupe key %q repeated", tc, e.DedupeKey)
				}
				mids[e.DedupeKey], people[e.PSID] = true, true
			}
		}
		want := 5 * tc.events
		if tc.persons > 0 {
			want = tc.persons
		}
		if len(people) != want {
			t.Errorf("%+v: %d distinct people, want %d", tc, len(people), want)
		}
	}
}

// TestReferenceHandlerChecksSignature: the reference does the same
// signature work as Baton and stores nothing unsigned (it never reaches
// its database, which is nil here).
func TestReferenceHandlerChecksSignature(t *testing.T) {
	h := &referenceHandler{secret: "s3cret"}
	body := []byte(`{"object":"page","entry":[]}`)
	for _, tc := range []struct {
		name, sig string
		want      int
	}{
		{"missing", "", http.StatusForbidden},
		{"wrong secret", messenger.SignSHA256(body, "other"), http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		if tc.sig != "" {
			req.Header.Set(messenger.HeaderSignature256, tc.sig)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// TestBenchSoak runs the soak briefly: every row and the closing
// comparison are printed, every delivery is acknowledged, and the sockets
// stay up. It says nothing about speed.
func TestBenchSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "soak",
		"-duration", "3s", "-interval", "1s", "-warmup", "500ms", "-rate", "20", "-sockets", "4", "-persons", "5"},
		Env{}, &out, &errOut)
	text := out.String()
	t.Log(text)
	if code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", code, text, errOut.String())
	}
	rows := regexp.MustCompile(`(?m)^\d+s \| (\d+) \| (\d+) \| \S+ \| \S+ \| \S+ \| \d+ \| (\d+) \| (\d+) \| \d+ \| [0-9.]+ \| [0-9.]+$`).FindAllStringSubmatch(text, -1)
	if len(rows) < 2 {
		t.Fatalf("want a row per second, got %d:\n%s", len(rows), text)
	}
	for _, r := range rows {
		if r[2] != "0" || r[3] != "4" || r[4] != "0" {
			t.Errorf("row %q: want no non-200 answer, 4 sockets up, no drops", r[0])
		}
	}
	for _, want := range []string{"baseline after 500ms warm-up:", "after the load, every client gone:", "flat: goroutines and live heap back to the baseline"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
