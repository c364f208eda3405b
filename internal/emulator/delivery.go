package emulator

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// queued is an event waiting for its app's next POST.
type queued struct {
	raw     json.RawMessage
	channel string
	// batchable is true when the event was queued while a POST was in
	// flight: only such events share a POST (§4.2).
	batchable bool
}

// batch is one webhook body and its retry state: every attempt sends the
// identical bytes and headers (§4.4).
type batch struct {
	body      []byte
	header    http.Header
	url       string
	attempts  int
	nextAt    time.Time
	firstFail time.Time
	drop      bool
}

// deliveryRecord is one logged attempt, as /_emulator/deliveries shows it.
type deliveryRecord struct {
	AppID     string `json:"app_id"`
	At        int64  `json:"at"`
	Attempt   int    `json:"attempt"`
	Status    int    `json:"status"`
	LatencyMS int64  `json:"latency_ms"`
	Body      string `json:"body"`
	Dropped   bool   `json:"dropped,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     string `json:"error,omitempty"`
}

// enqueue adds an event to a's queue and wakes its worker. Callers hold e.mu.
func (e *Emulator) enqueue(a *app, channel string, ev wireEvent) {
	if !a.deliverable() {
		return
	}
	raw, err := marshalPlain(ev)
	if err != nil {
		e.log.Error("encode webhook event", "err", err)
		return
	}
	a.queue = append(a.queue, queued{raw: raw, channel: channel, batchable: a.batch != nil})
	e.startWorker(a)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// startWorker starts a's delivery goroutine once. Callers hold e.mu.
func (e *Emulator) startWorker(a *app) {
	if a.started || a.pseudo || e.ctx.Err() != nil {
		return // after Close, no new goroutine may join the wait group
	}
	a.started = true
	a.wake = make(chan struct{}, 1)
	a.kick = make(chan chan struct{})
	e.wg.Add(1)
	go e.runWorker(a)
}

// runWorker keeps one POST in flight at most for its app (§4.4), and
// retries on the virtual clock.
func (e *Emulator) runWorker(a *app) {
	defer e.wg.Done()
	var acks []chan struct{}
	for {
		e.mu.Lock()
		b, wait := e.nextAttempt(a)
		e.mu.Unlock()
		if b != nil {
			e.attempt(a, b)
			continue
		}
		for _, c := range acks {
			close(c)
		}
		acks = nil
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-e.ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-a.wake:
		case c := <-a.kick:
			acks = append(acks, c)
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// nextAttempt returns the batch whose attempt is due now, or how long to
// wait (0 = until woken). It forms batches and disables failing apps.
// Callers hold e.mu.
func (e *Emulator) nextAttempt(a *app) (*batch, time.Duration) {
	if !a.deliverable() {
		a.batch, a.queue = nil, nil
		return nil, 0
	}
	now := e.now()
	if a.batch == nil {
		if len(a.queue) == 0 {
			return nil, 0
		}
		if err := e.formBatch(a); err != nil {
			e.log.Error("form webhook batch", "app", a.ID, "err", err)
			a.queue = nil
			return nil, 0
		}
		a.batch.nextAt = now
	}
	b := a.batch
	if limit, ok := e.disableLimit(); ok && !b.firstFail.IsZero() && now.Sub(b.firstFail) >= limit {
		e.log.Warn("webhook disabled after failing too long", "app", a.ID, "after", limit)
		a.Subscribed = false
		a.batch, a.queue = nil, nil
		return nil, 0
	}
	if now.Before(b.nextAt) {
		return nil, b.nextAt.Sub(now)
	}
	return b, 0
}

// disableLimit is how long a webhook may fail before the app is
// unsubscribed (§4.4, switch disable_after). Callers hold e.mu.
func (e *Emulator) disableLimit() (time.Duration, bool) {
	switch e.switches.DisableAfter {
	case "never":
		return 0, false
	case "8h":
		return 8 * time.Hour, true
	}
	return disableAfter, true
}

// formBatch takes the head of the queue, plus the events queued during the
// previous POST, up to batchMax entries of one event each (§4.2).
func (e *Emulator) formBatch(a *app) error {
	n := 1
	for n < len(a.queue) && n < e.switches.BatchMax && a.queue[n].batchable {
		n++
	}
	events := a.queue[:n]
	if e.faults.WebhookReorder {
		events = append([]queued(nil), events...)
		mrand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	}
	now := ms(e.now())
	env := wireEnvelope{Object: "page"}
	for _, q := range events {
		entry := wireEntry{ID: e.cfg.PageID, Time: now}
		if q.channel == chanStandby {
			entry.Standby = []json.RawMessage{q.raw}
		} else {
			entry.Messaging = []json.RawMessage{q.raw}
		}
		env.Entry = append(env.Entry, entry)
	}
	body, err := serialise(env, e.switches.JSONEscaping)
	if err != nil {
		return err
	}
	a.queue = append([]queued(nil), a.queue[n:]...)
	a.batch = &batch{
		body:   body,
		header: e.signatureHeaders(a.Secret, body),
		url:    a.WebhookURL,
		drop:   e.faults.WebhookDropRate > 0 && mrand.Float64() < e.faults.WebhookDropRate,
	}
	return nil
}

// sign returns lowercase hex HMAC-SHA256 and HMAC-SHA1 of body under secret.
func sign(secret string, body []byte) (sha256Hex, sha1Hex string) {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	sha256Hex = hex.EncodeToString(m.Sum(nil))
	m1 := hmac.New(sha1.New, []byte(secret))
	m1.Write(body)
	sha1Hex = hex.EncodeToString(m1.Sum(nil))
	return sha256Hex, sha1Hex
}

// signatureHeaders builds the headers of a delivery per the
// signature_headers switch (§4.3).
func (e *Emulator) signatureHeaders(secret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	mode := e.switches.SignatureHeaders
	if mode == "wrong" {
		secret = "not-" + secret
	}
	s256, s1 := sign(secret, body)
	if mode != "sha1" && mode != "none" {
		h.Set(messenger.HeaderSignature256, "sha256="+s256)
	}
	if mode != "sha256" && mode != "none" {
		h.Set(messenger.HeaderSignatureSHA1, "sha1="+s1)
	}
	return h
}

// attempt performs one delivery attempt of b and records its outcome.
func (e *Emulator) attempt(a *app, b *batch) {
	e.mu.Lock()
	b.attempts++
	attemptNo := b.attempts
	start := e.now()
	dup := e.faults.WebhookDuplicateRate > 0 && mrand.Float64() < e.faults.WebhookDuplicateRate
	any2xx := e.switches.SuccessStatus == "2xx"
	e.mu.Unlock()

	if b.drop {
		e.mu.Lock()
		e.record(a, deliveryRecord{AppID: a.ID, At: ms(start), Attempt: attemptNo, Body: string(b.body), Dropped: true})
		if a.batch == b {
			a.batch = nil
		}
		e.mu.Unlock()
		return
	}
	status, latency, err := e.post(b)
	rec := deliveryRecord{AppID: a.ID, At: ms(start), Attempt: attemptNo, Status: status, LatencyMS: latency.Milliseconds(), Body: string(b.body)}
	if err != nil {
		rec.Error = err.Error()
	}
	if latency > 5*time.Second {
		e.log.Warn("webhook answered slowly", "app", a.ID, "latency", latency)
	}
	e.mu.Lock()
	e.record(a, rec)
	e.mu.Unlock()
	ok := status == http.StatusOK || (any2xx && status >= 200 && status < 300)
	if ok && dup {
		st2, lat2, err2 := e.post(b)
		rec2 := deliveryRecord{AppID: a.ID, At: ms(e.nowLocked()), Attempt: attemptNo, Status: st2, LatencyMS: lat2.Milliseconds(), Body: string(b.body), Duplicate: true}
		if err2 != nil {
			rec2.Error = err2.Error()
		}
		e.mu.Lock()
		e.record(a, rec2)
		e.mu.Unlock()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if a.batch != b {
		return // the queue was dropped meanwhile
	}
	if ok {
		a.batch = nil
		return
	}
	if b.firstFail.IsZero() {
		b.firstFail = start
	}
	if attemptNo == 1 {
		b.nextAt = start // one retry at once (§4.4)
	} else {
		b.nextAt = start.Add(retryInterval)
	}
	e.log.Info("webhook delivery failed", "app", a.ID, "attempt", attemptNo, "status", status, "err", err)
}

// post sends one webhook POST; status 0 means no answer.
func (e *Emulator) post(b *batch) (int, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(e.ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader(b.body))
	if err != nil {
		return 0, 0, fmt.Errorf("build webhook request: %w", err)
	}
	for k, v := range b.header {
		req.Header[k] = append([]string(nil), v...)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, time.Since(start), fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// record appends to the app's attempt log. Callers hold e.mu.
func (e *Emulator) record(a *app, r deliveryRecord) {
	a.log = append(a.log, r)
	if len(a.log) > deliveryLogMax {
		a.log = append([]deliveryRecord(nil), a.log[len(a.log)-deliveryLogMax:]...)
	}
}

// kickWorkers makes the workers of the listed apps (all when none are
// listed) run the attempts now due and waits until they have, so that a
// caller who advanced the clock or changed roles sees the POSTs it caused.
func (e *Emulator) kickWorkers(ctx context.Context, ids ...string) {
	e.mu.Lock()
	if len(ids) == 0 {
		ids = e.appOrder
	}
	var kicks []chan chan struct{}
	for _, id := range ids {
		if a := e.apps[id]; a != nil && a.started {
			kicks = append(kicks, a.kick)
		}
	}
	e.mu.Unlock()
	for _, k := range kicks {
		ack := make(chan struct{})
		select {
		case k <- ack:
		case <-ctx.Done():
			return
		case <-e.ctx.Done():
			return
		}
		select {
		case <-ack:
		case <-ctx.Done():
			return
		case <-e.ctx.Done():
			return
		}
	}
}

// verifyWebhook performs Facebook's GET challenge (§3): 200 with a body
// identical to the random 9–10 digit challenge, or an error.
func (e *Emulator) verifyWebhook(ctx context.Context, rawURL, verifyToken string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook_url %q is not an http(s) URL", rawURL)
	}
	challenge := randomDigits(9 + mrand.IntN(2))
	q := u.Query()
	q.Set("hub.mode", "subscribe")
	q.Set("hub.verify_token", verifyToken)
	q.Set("hub.challenge", challenge)
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("build verification request: %w", err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook verification failed: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("webhook verification failed: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook verification failed: status %d", resp.StatusCode)
	}
	if string(body) != challenge {
		return fmt.Errorf("webhook verification failed: body %q is not the challenge", strings.TrimSpace(string(body)))
	}
	return nil
}
