// Package webhook is Baton's ingest: it checks a delivery's signature,
// stores the raw body durably and applies its events to conversations, in
// one transaction, before Facebook gets its 200.
//
// Deliveries are written by group commit: request handlers hand verified
// deliveries to a few writers, and each writer stores whatever is pending
// in one transaction with one durable flush. Every request is answered only
// after the commit that holds it, so an acknowledged delivery is durable,
// while the cost of the flush is shared by the whole batch (SPEC.md "How
// fast").
package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/internal/messenger"
)

// Config tunes the ingester. Zero values take the defaults in New.
type Config struct {
	AppSecret   string
	VerifyToken string
	// Secrets returns the current app secret and verify token (admins edit
	// them on the Page settings screen); an empty value falls back to the
	// static field above. Called on every request: it must be fast.
	Secrets func() (appSecret, verifyToken string)
	// AcceptSHA1 lets a delivery signed only with the legacy X-Hub-Signature
	// through; Facebook sends both, so it stays off unless a proxy strips one.
	AcceptSHA1 bool
	// MaxBody caps a delivery's size (PROTOCOL.md §4.4: 4 MiB).
	MaxBody int64
	// Writers is the number of group-commit writers. Two keep one batch
	// flushing while the next fills, which is what a 2-core box can use.
	Writers int
	// MaxBatch bounds one transaction, keeping its latency predictable.
	MaxBatch int
	// QueueSize bounds the deliveries waiting for a writer; past it Baton
	// answers 503 at once instead of letting latency grow (overload).
	QueueSize int
	// Timeout is how long a request waits for its commit before 503:
	// below Facebook's 5 s, so it retries rather than timing out.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
	// OnCommit is called after each commit with the conversations it
	// changed (for live updates); it must not block.
	OnCommit func(changed []*baton.Conversation)
}

// Errors Submit and Verify return. They are domain errors, so the web
// layer maps them to statuses by code: 403, 503, 503; a malformed body is
// EINVALID (400).
var (
	ErrSignature   = &baton.Error{Code: baton.EFORBIDDEN, Message: "Bad or missing signature."}
	ErrOverloaded  = &baton.Error{Code: baton.EUNAVAILABLE, Message: "Too many deliveries at once; retry."}
	ErrUnavailable = &baton.Error{Code: baton.EUNAVAILABLE, Message: "Storage unavailable; retry."}
	// errDatabaseDown marks failures no retry of a smaller batch can fix.
	errDatabaseDown = errors.New("database unreachable")
	errMalformed    = &baton.Error{Code: baton.EINVALID, Message: "Malformed JSON body; it was kept for inspection."}
)

// Stats counts what ingest did, for metrics and logs.
type Stats struct {
	Accepted, Duplicates, Events, Malformed, BadSignature, TooLarge, Unavailable, Batches atomic.Int64
}

// Ingester receives verified deliveries and commits them.
type Ingester struct {
	store baton.IngestStore
	cfg   Config
	queue chan *pending
	wg    sync.WaitGroup
	once  sync.Once
	// mu guards closed: Submit must not send on the closed queue.
	mu     sync.RWMutex
	closed bool
	// Stats is read by /metrics.
	Stats Stats
}

type pending struct {
	d    *baton.RawDelivery
	done chan error
}

// New returns an ingester; call Start, and Close on shutdown.
func New(store baton.IngestStore, cfg Config) *Ingester {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.Writers == 0 {
		cfg.Writers = 2
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 256
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{store: store, cfg: cfg, queue: make(chan *pending, cfg.QueueSize)}
}

// MaxBody is the size cap callers read bodies with.
func (in *Ingester) MaxBody() int64 { return in.cfg.MaxBody }

// Start launches the writers.
func (in *Ingester) Start() {
	for i := 0; i < in.cfg.Writers; i++ {
		in.wg.Add(1)
		go in.writer()
	}
}

// Close stops accepting and waits until every queued delivery is
// committed (or failed), so shutdown loses nothing acknowledged.
func (in *Ingester) Close() {
	in.once.Do(func() {
		in.mu.Lock()
		in.closed = true
		close(in.queue)
		in.mu.Unlock()
	})
	in.wg.Wait()
}

// VerifyChallenge answers the GET verification (PROTOCOL.md §3): the
// challenge to echo, or ErrSignature when the token does not match.
func (in *Ingester) VerifyChallenge(mode, token string) error {
	_, verifyToken := in.secrets()
	if mode != "subscribe" || verifyToken == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(verifyToken)) != 1 {
		return ErrSignature
	}
	return nil
}

// secrets are the app secret and verify token in force: the current
// settings, each falling back to configuration when empty.
func (in *Ingester) secrets() (appSecret, verifyToken string) {
	appSecret, verifyToken = in.cfg.AppSecret, in.cfg.VerifyToken
	if in.cfg.Secrets != nil {
		a, v := in.cfg.Secrets()
		if a != "" {
			appSecret = a
		}
		if v != "" {
			verifyToken = v
		}
	}
	return appSecret, verifyToken
}

// Verify checks a body's signature headers; nothing is stored when it fails.
func (in *Ingester) Verify(body []byte, sig256, sig1 string) error {
	appSecret, _ := in.secrets()
	if messenger.VerifySHA256(body, sig256, appSecret) {
		return nil
	}
	if sig256 == "" && in.cfg.AcceptSHA1 && messenger.VerifySHA1(body, sig1, appSecret) {
		return nil
	}
	in.Stats.BadSignature.Add(1)
	return ErrSignature
}

// Submit parses a verified body and waits until it is durable. A malformed
// body is stored too (for inspection) and reported as messenger.ErrMalformed.
func (in *Ingester) Submit(ctx context.Context, body []byte) error {
	sum := sha256.Sum256(body)
	d := &baton.RawDelivery{Body: body, SHA256: sum[:], Status: "ok"}
	parsed, perr := messenger.Parse(body)
	switch {
	case perr != nil:
		// Kept as bytes (a bytea column takes anything) for inspection.
		d.Status, d.Note = "malformed", perr.Error()
	case parsed.Object != "page":
		d.Status, d.Note = "ignored", fmt.Sprintf("object %q is not page", parsed.Object)
	default:
		d.Events = parsed.Events
	}
	p := &pending{d: d, done: make(chan error, 1)}
	in.mu.RLock()
	if in.closed {
		in.mu.RUnlock()
		return ErrUnavailable // shutting down: Facebook retries elsewhere
	}
	select {
	case in.queue <- p:
	default:
		in.mu.RUnlock()
		in.Stats.Unavailable.Add(1)
		return ErrOverloaded
	}
	in.mu.RUnlock()
	timer := time.NewTimer(in.cfg.Timeout)
	defer timer.Stop()
	select {
	case err := <-p.done:
		if err != nil {
			in.Stats.Unavailable.Add(1)
			return err
		}
		if perr != nil {
			in.Stats.Malformed.Add(1)
			return fmt.Errorf("%w: %w", errMalformed, perr)
		}
		in.Stats.Accepted.Add(1)
		return nil
	case <-timer.C:
		in.Stats.Unavailable.Add(1)
		return fmt.Errorf("%w: commit took longer than %s", ErrUnavailable, in.cfg.Timeout)
	case <-ctx.Done():
		// The sender went away; it will retry, and dedupe absorbs a
		// commit that still happens.
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

func (in *Ingester) writer() {
	defer in.wg.Done()
	for first := range in.queue {
		batch := []*pending{first}
	fill:
		for len(batch) < in.cfg.MaxBatch {
			select {
			case p, ok := <-in.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		err := in.commit(batch)
		if err != nil && len(batch) > 1 && !errors.Is(err, errDatabaseDown) {
			// Something in the batch was refused: commit one by one so
			// that it cannot fail its neighbours.
			for _, p := range batch {
				p.done <- in.commit([]*pending{p})
			}
			continue
		}
		for _, p := range batch {
			p.done <- err
		}
	}
}

// commit stores a batch and applies its events in one transaction.
func (in *Ingester) commit(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var changed []*baton.Conversation
	var fresh, dups int
	err := in.store.Ingest(ctx, func(tx baton.IngestTx) error {
		changed, fresh, dups = nil, 0, 0
		ds := make([]*baton.RawDelivery, len(batch))
		for i, p := range batch {
			ds[i] = p.d
		}
		pages, err := tx.Pages(ctx, pageIDs(ds))
		if err != nil {
			return err
		}
		flagUnknownPages(ds, pages)
		ids, err := tx.InsertDeliveries(ctx, ds)
		if err != nil {
			return err
		}
		var evs []*baton.Event
		var evDeliveries []int64
		for i, d := range ds {
			for j := range d.Events {
				if pages[d.Events[j].PageID] != nil {
					evs = append(evs, &d.Events[j])
					evDeliveries = append(evDeliveries, ids[i])
				}
			}
		}
		if len(evs) == 0 {
			return nil
		}
		isFresh, err := tx.InsertEvents(ctx, evDeliveries, evs)
		if err != nil {
			return err
		}
		var todo []*baton.Event
		for i, e := range evs {
			if isFresh[i] {
				todo = append(todo, e)
			}
		}
		fresh, dups = len(todo), len(evs)-len(todo)
		changed, err = in.apply(ctx, tx, pages, todo)
		return err
	})
	if err != nil {
		in.cfg.Logger.Error("ingest commit failed", "deliveries", len(batch), "err", err)
		if baton.ErrorCode(err) == baton.EUNAVAILABLE || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w: %v", ErrUnavailable, errDatabaseDown, err)
		}
		return fmt.Errorf("%w: store deliveries: %v", ErrUnavailable, err)
	}
	in.Stats.Batches.Add(1)
	in.Stats.Events.Add(int64(fresh))
	in.Stats.Duplicates.Add(int64(dups))
	if in.cfg.OnCommit != nil && len(changed) > 0 {
		in.cfg.OnCommit(changed)
	}
	return nil
}

// apply runs the conversation rules over fresh events: Page events first,
// then each conversation's events in timestamp order.
func (in *Ingester) apply(ctx context.Context, tx baton.IngestTx, pages map[string]*baton.Page, evs []*baton.Event) ([]*baton.Conversation, error) {
	now := in.cfg.Now()
	pageChanged := map[string]bool{}
	var keys []baton.ConversationKey
	seen := map[baton.ConversationKey]bool{}
	for _, e := range evs {
		if e.Kind == baton.KindAppRoles {
			if conversation.ApplyPageEvent(pages[e.PageID], e) {
				pageChanged[e.PageID] = true
			}
			continue
		}
		if e.PSID == "" || e.Kind == baton.KindUnknown || e.Kind == baton.KindOptin {
			continue // stored as events only
		}
		k := baton.ConversationKey{PageID: e.PageID, PSID: e.PSID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	convs := map[baton.ConversationKey]*baton.Conversation{}
	if len(keys) > 0 {
		var err error
		if convs, err = tx.LockConversations(ctx, keys); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].TimestampMS < evs[j].TimestampMS })
	var msgs []*baton.Message
	var hos []*baton.Handover
	dirty := map[*baton.Conversation]bool{}
	var order []*baton.Conversation
	for _, e := range evs {
		c := convs[baton.ConversationKey{PageID: e.PageID, PSID: e.PSID}]
		if c == nil || e.Kind == baton.KindAppRoles {
			continue
		}
		fx := conversation.Apply(pages[e.PageID], c, e, now)
		if fx.PageChanged {
			pageChanged[e.PageID] = true
		}
		if fx.Message != nil {
			msgs = append(msgs, fx.Message)
		}
		if fx.Handover != nil {
			hos = append(hos, fx.Handover)
			fx.Changed = true
		}
		if fx.Reaction != nil {
			if err := tx.SetReaction(ctx, c.ID, fx.Reaction.MID, fx.Reaction.Reaction); err != nil {
				return nil, err
			}
			fx.Changed = true
		}
		if fx.Changed && !dirty[c] {
			dirty[c] = true
			order = append(order, c)
		}
	}
	for id := range pageChanged {
		if err := tx.SavePage(ctx, pages[id]); err != nil {
			return nil, err
		}
	}
	if err := tx.InsertMessages(ctx, msgs); err != nil {
		return nil, err
	}
	if err := tx.InsertHandovers(ctx, hos); err != nil {
		return nil, err
	}
	if err := tx.SaveConversations(ctx, order); err != nil {
		return nil, err
	}
	return order, nil
}

func pageIDs(ds []*baton.RawDelivery) []string {
	seen := map[string]bool{}
	var ids []string
	for _, d := range ds {
		for _, e := range d.Events {
			if !seen[e.PageID] {
				seen[e.PageID] = true
				ids = append(ids, e.PageID)
			}
		}
	}
	return ids
}

// flagUnknownPages marks deliveries that concern no connected Page: they
// are stored and acknowledged, and nothing more (PROTOCOL.md §4.1).
func flagUnknownPages(ds []*baton.RawDelivery, pages map[string]*baton.Page) {
	for _, d := range ds {
		if d.Status != "ok" || len(d.Events) == 0 {
			continue
		}
		known := false
		for _, e := range d.Events {
			if pages[e.PageID] != nil {
				known = true
				break
			}
		}
		if !known {
			d.Status, d.Note = "ignored", "unknown page "+d.Events[0].PageID
		}
	}
}

// Counts returns the counters by name, for metrics.
func (s *Stats) Counts() map[string]int64 {
	return map[string]int64{
		"accepted": s.Accepted.Load(), "duplicates": s.Duplicates.Load(), "events": s.Events.Load(),
		"malformed": s.Malformed.Load(), "bad_signature": s.BadSignature.Load(),
		"unavailable": s.Unavailable.Load(), "batches": s.Batches.Load(),
	}
}
