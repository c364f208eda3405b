package apiwebhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// Timing of deliveries. A receiver gets 10 s to answer (long enough for a
// CRM doing a database write, short enough that a hung one frees its
// sender soon); failures retry from 10 s, doubling to an hour, for a day:
// a receiver down for a night still gets everything when it comes back
// (not necessarily in order: receivers sort by the event's "at").
const (
	AttemptTimeout = 10 * time.Second
	firstBackoff   = 10 * time.Second
	maxBackoff     = time.Hour
	// GiveUpAfter: a delivery failing this long after its event is marked
	// failed (the admin page shows it).
	GiveUpAfter = 24 * time.Hour
	// lease: a claimed delivery is another instance's to take again after
	// this, when its sender died mid-attempt; well beyond the timeout.
	lease = 60 * time.Second
	// pollInterval between looks at the sources and the due deliveries:
	// events reach receivers within about this, without a wake-up path
	// from ingest (which must not wait on webhooks at all).
	pollInterval = 500 * time.Millisecond
	// batch is how many source rows one transaction turns into deliveries.
	batch = 500
	// maxRounds bounds one look at a source, so that sending goes on
	// during a large backlog.
	maxRounds = 20
	// defaultSenders is how many deliveries are in flight at once; one per
	// endpoint at most, so a dead receiver takes one of them.
	defaultSenders = 8
)

// Backoff is the wait after a failed attempt n (1-based): 10 s doubling
// to 1 h, less up to 25 % jitter so that retries of many deliveries to a
// receiver that just came back spread out.
func Backoff(attempts int) time.Duration {
	d := firstBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

// Worker dispatches events from the durable sources and sends the
// deliveries. Every instance runs one; the store's locks keep each source
// and each delivery with one instance at a time.
type Worker struct {
	Store baton.APIWebhookStore
	// Page classifies owners and recognises hand-overs to Baton.
	Page func(ctx context.Context) (*baton.Page, error)
	// Client posts deliveries; nil means a client that follows no
	// redirect (the signature is for the URL the admin registered).
	Client *http.Client
	// Senders is how many deliveries may be in flight; 0 means 8.
	Senders int
	Now     func() time.Time
	Logger  *slog.Logger
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) log() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (w *Worker) client() *http.Client {
	if w.Client != nil {
		return w.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Run dispatches and sends until ctx ends; deliveries in flight then are
// recorded as due again.
func (w *Worker) Run(ctx context.Context) {
	senders := w.Senders
	if senders <= 0 {
		senders = defaultSenders
	}
	slots := make(chan struct{}, senders)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if _, err := w.Dispatch(ctx); err != nil && ctx.Err() == nil {
			w.log().Warn("webhooks: dispatch failed", "err", err)
		}
		if free := senders - len(slots); free > 0 && ctx.Err() == nil {
			ds, err := w.Store.ClaimAPIWebhookDeliveries(ctx, free, w.now(), lease)
			if err != nil && ctx.Err() == nil {
				w.log().Warn("webhooks: claim failed", "err", err)
			}
			for _, d := range ds {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-slots; wg.Done() }()
					w.deliver(ctx, d)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Dispatch turns the rows every source gained into deliveries; it
// returns how many rows it read.
func (w *Worker) Dispatch(ctx context.Context) (int, error) {
	var page *baton.Page
	if w.Page != nil {
		p, err := w.Page(ctx)
		if err != nil {
			return 0, fmt.Errorf("read page: %w", err)
		}
		page = p
	}
	derive := func(rows []*baton.APISourceRow) []*baton.APIEvent { return Derive(page, rows) }
	total := 0
	for _, src := range baton.APISources {
		for range maxRounds {
			n, err := w.Store.DispatchAPIEvents(ctx, src, batch, derive)
			if err != nil {
				return total, fmt.Errorf("dispatch %s: %w", src, err)
			}
			total += n
			if n < batch {
				break
			}
		}
	}
	return total, nil
}

// Send claims the due deliveries (up to the sender count) and attempts
// them concurrently, returning when all are recorded; tests drive the
// worker with it and Dispatch instead of Run.
func (w *Worker) Send(ctx context.Context) (int, error) {
	senders := w.Senders
	if senders <= 0 {
		senders = defaultSenders
	}
	ds, err := w.Store.ClaimAPIWebhookDeliveries(ctx, senders, w.now(), lease)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() { defer wg.Done(); w.deliver(ctx, d) }()
	}
	wg.Wait()
	return len(ds), nil
}

// deliver makes one attempt and records it, even when ctx ended meanwhile
// (the attempt is then due again at once).
func (w *Worker) deliver(ctx context.Context, d *baton.APIWebhookDelivery) {
	r := w.Attempt(ctx, d)
	if ctx.Err() != nil && r.Status != baton.APIDeliverySent {
		r = baton.APIWebhookResult{Status: baton.APIDeliveryPending, RetryAt: w.now(), Error: "Baton stopped during the attempt."}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.Store.CompleteAPIWebhookDelivery(cctx, d, r, w.now()); err != nil {
		// The lease runs out and the delivery goes again: at least once.
		w.log().Error("webhooks: record attempt failed", "delivery", d.ID, "err", err)
		return
	}
	if r.Status == baton.APIDeliveryFailed {
		w.log().Warn("webhooks: gave up on a delivery", "delivery", d.ID, "event", d.EventID, "url", d.URL, "reason", r.Error)
	}
}

// Attempt posts d once and classifies the outcome: any 2xx is sent; any
// other answer or no answer is retried with Backoff until GiveUpAfter has
// passed since the event was queued.
func (w *Worker) Attempt(ctx context.Context, d *baton.APIWebhookDelivery) baton.APIWebhookResult {
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	now := w.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return w.retry(d, now, 0, "The URL cannot be posted to.")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Baton-Webhooks/1")
	req.Header.Set(HeaderEvent, d.EventType)
	req.Header.Set(HeaderDelivery, d.EventID)
	req.Header.Set(HeaderSignature, Sign(d.Secret, now, d.Body))
	start := time.Now()
	resp, err := w.client().Do(req)
	latency := time.Since(start)
	if err != nil {
		r := w.retry(d, w.now(), 0, "No answer: "+plainError(err))
		r.Latency = latency
		return r
	}
	// Drain a little so the connection is reused; the body is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return baton.APIWebhookResult{Status: baton.APIDeliverySent, HTTPStatus: resp.StatusCode, Latency: latency}
	}
	r := w.retry(d, w.now(), resp.StatusCode, fmt.Sprintf("The receiver answered %d.", resp.StatusCode))
	r.Latency = latency
	return r
}

func (w *Worker) retry(d *baton.APIWebhookDelivery, now time.Time, status int, reason string) baton.APIWebhookResult {
	r := baton.APIWebhookResult{HTTPStatus: status, Error: reason}
	if now.Sub(d.CreatedAt) >= GiveUpAfter {
		r.Status = baton.APIDeliveryFailed
		r.Error = reason + " Gave up after 24 hours."
		return r
	}
	r.Status, r.RetryAt = baton.APIDeliveryPending, now.Add(Backoff(d.Attempts))
	return r
}

// plainError names a transport failure without the URL (which the admin
// page shows next to it anyway).
func plainError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out after 10 s."
		}
		return ue.Err.Error()
	}
	return err.Error()
}
