// Package demobot is the emulator's scripted demo bot: a friendly support bot
// for the fictional shop "Northwind Outfitters" that plays the Primary
// Receiver of the handover protocol.
//
// It is a real client of the emulator: it registers through the control API,
// receives signed webhooks on its own handler and acts only through the Graph
// API with its page access token, so that the demo exercises the same wire
// paths a production bot would. It shares nothing with Baton but the
// constants of package messenger.
package demobot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// pageInboxAppID is Meta's Page Inbox, which the bot hands to only when no
// other Secondary exists.
const pageInboxAppID = messenger.PageInboxAppID

// Defaults for Config fields left empty.
const (
	defaultAppID        = "1500000001"
	defaultName         = "Demo Bot"
	defaultRequestDelay = time.Second // long enough for a person to see the request pending
	defaultHTTPTimeout  = 10 * time.Second
)

// tickEvery is how often the timer loop looks at the injected clock. Timers
// are computed from Config.Now, not from this ticker, so tests drive them by
// moving their clock; a quarter second keeps the demo responsive at no cost.
const tickEvery = 250 * time.Millisecond

// Config sets up a Bot. Only EmulatorURL is required.
type Config struct {
	// EmulatorURL is where the control API and the Graph API live, e.g.
	// "http://127.0.0.1:8090".
	EmulatorURL string
	// AppID is the bot's app id on the Page; default "1500000001".
	AppID string
	// Name is shown by the emulator and in secondary_receivers; default "Demo Bot".
	Name string
	// Secret signs webhooks to the bot; generated when empty.
	Secret string
	// VerifyToken answers the webhook challenge; generated when empty.
	VerifyToken string
	// RequestDelay is how long the bot waits before honouring a
	// request_thread_control (default 1s; negative honours at once), so the
	// requesting console can show the request as pending.
	RequestDelay time.Duration
	// TakeBackAfter makes the bot take a thread back when the Secondary holding
	// it has sent no page message for this long; 0 never takes back.
	TakeBackAfter time.Duration
	// Now is the clock for the bot's timers; default time.Now.
	Now func() time.Time
	// Logger receives the bot's logs; default slog.Default().
	Logger *slog.Logger
	// HTTPClient calls the emulator; default a client with a 10 s timeout.
	HTTPClient *http.Client
}

// Bot is the demo bot. Create it with New, mount it as a webhook handler, then
// call Register; Close stops it.
type Bot struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // cancelled by Close; every Graph call runs under it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the timer loop and the per-person workers

	mu      sync.Mutex
	cond    *sync.Cond // signalled when busy drops to zero
	closed  bool
	pageTok string
	people  map[string]*person
	queues  map[string][]func(context.Context)
	busy    int // queued or running jobs, for tests that wait for quiet
}

// New returns a bot with cfg's defaults filled in and starts its timer loop.
func New(cfg Config) *Bot {
	if cfg.AppID == "" {
		cfg.AppID = defaultAppID
	}
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	if cfg.Secret == "" {
		cfg.Secret = randomHex()
	}
	if cfg.VerifyToken == "" {
		cfg.VerifyToken = randomHex()
	}
	if cfg.RequestDelay == 0 {
		cfg.RequestDelay = defaultRequestDelay
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bot{
		cfg:    cfg,
		log:    cfg.Logger.With("app_id", cfg.AppID),
		ctx:    ctx,
		cancel: cancel,
		people: map[string]*person{},
		queues: map[string][]func(context.Context){},
	}
	b.cond = sync.NewCond(&b.mu)
	b.wg.Add(1)
	go b.timerLoop()
	return b
}

// randomHex is a 128-bit random secret, so an unconfigured bot is never
// reachable with a guessable secret.
func randomHex() string {
	var buf [16]byte
	_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(buf[:])
}

// Register creates (or updates) the bot's app on the emulator's Page as the
// Primary Receiver, with webhookURL as its callback, and keeps the page access
// token it is given. The emulator verifies the webhook first, so the bot's
// handler must already be served at webhookURL.
func (b *Bot) Register(ctx context.Context, webhookURL string) error {
	req := map[string]any{
		"id":           b.cfg.AppID,
		"name":         b.cfg.Name,
		"secret":       b.cfg.Secret,
		"verify_token": b.cfg.VerifyToken,
		"webhook_url":  webhookURL,
		"role":         messenger.RolePrimary,
		"human_agent":  false,
	}
	var resp struct {
		PageAccessToken string `json:"page_access_token"`
	}
	if err := b.call(ctx, http.MethodPost, "/_emulator/apps", nil, req, &resp, false); err != nil {
		return fmt.Errorf("register demo bot: %w", err)
	}
	if resp.PageAccessToken == "" {
		return fmt.Errorf("register demo bot: no page_access_token in the answer")
	}
	b.mu.Lock()
	b.pageTok = resp.PageAccessToken
	b.mu.Unlock()
	b.log.Info("demobot: registered", "webhook_url", webhookURL)
	return nil
}

func (b *Bot) token() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pageTok
}

// Close stops the timer loop and the workers, abandoning Graph calls in
// flight, and waits for them to return. Deliveries after Close get 503 so the
// platform keeps them for a later bot.
func (b *Bot) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	b.mu.Lock()
	b.busy = 0
	b.queues = map[string][]func(context.Context){}
	b.cond.Broadcast()
	b.mu.Unlock()
}

// accept queues a delivery's events for their people; false after Close.
func (b *Bot) accept(events []incoming) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, in := range events {
		psid := in.psid()
		if psid == "" || psid == b.cfg.AppID {
			continue // app_roles and events without a person: nothing to say
		}
		b.enqueueLocked(psid, func(ctx context.Context) { b.handle(ctx, psid, in) })
	}
	return true
}

// enqueueLocked appends a job to psid's queue, starting its worker when idle.
// One worker per person keeps each person's replies in the order of their
// messages while different people are served in parallel.
func (b *Bot) enqueueLocked(psid string, job func(context.Context)) {
	if b.closed {
		return
	}
	b.busy++
	q, running := b.queues[psid]
	b.queues[psid] = append(q, job)
	if running {
		return
	}
	b.wg.Add(1)
	go b.work(psid)
}

func (b *Bot) work(psid string) {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		q := b.queues[psid]
		if len(q) == 0 || b.closed {
			delete(b.queues, psid)
			b.mu.Unlock()
			return
		}
		job := q[0]
		b.queues[psid] = q[1:]
		b.mu.Unlock()

		job(b.ctx)

		b.mu.Lock()
		b.busy--
		if b.busy == 0 {
			b.cond.Broadcast()
		}
		b.mu.Unlock()
	}
}

// waitQuiet blocks until every queued job has run. Tests use it instead of
// sleeping.
func (b *Bot) waitQuiet() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.busy > 0 {
		b.cond.Wait()
	}
}

func (b *Bot) timerLoop() {
	defer b.wg.Done()
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.fireDue()
		}
	}
}

// fireDue queues the work of every timer that is due by the injected clock:
// requests to honour and threads to take back. The work runs on the person's
// queue, after whatever the person said before.
func (b *Bot) fireDue() {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for psid, p := range b.people {
		if p.request != nil && !now.Before(p.request.due) {
			req := *p.request
			p.request = nil
			b.enqueueLocked(psid, func(ctx context.Context) { b.honourRequest(ctx, psid, req.requester) })
		}
		if b.cfg.TakeBackAfter > 0 && p.owner == ownerOther && !p.takingBack &&
			now.Sub(p.lastPageActivity) >= b.cfg.TakeBackAfter {
			p.takingBack = true
			b.enqueueLocked(psid, func(ctx context.Context) { b.takeBack(ctx, psid) })
		}
	}
}

// describe shortens metadata for logs.
func describe(s string) string {
	return truncate(strings.TrimSpace(s), 120)
}
