// Package emulator is a local Messenger Platform: one Page, apps with
// handover roles, thread ownership, signed webhook deliveries with retries,
// the Graph API endpoints of PROTOCOL.md, a virtual clock and runtime faults.
// It lets Baton, bots and tests exercise handover flows with no network.
//
// It shares only constants with Baton (package messenger): its wire structs,
// serialiser and parsers are its own, so one misreading of the protocol
// cannot hide in both the platform and its client.
package emulator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// Modes of the emulator (PROTOCOL.md §2).
const (
	ModeClassic   = "classic"
	ModeRouting   = "routing"
	ModeRoutingCR = "routing-cr"
)

// Timing constants of the platform. They are protocol facts, not tuning.
const (
	// windowStandard is the 24 h messaging window (§11) and the inactivity
	// time after which a routed thread goes idle (§7).
	windowStandard = 24 * time.Hour
	// windowHumanAgent is the HUMAN_AGENT tag's 7-day window (§11), also the
	// longest extend_thread_control duration (§8.6).
	windowHumanAgent = 7 * 24 * time.Hour
	// retryInterval is Meta's documented resend interval (§4.4).
	retryInterval = 20 * time.Second
	// failingAfter marks an app as failing, as Meta alerts at 15 min (§4.4).
	failingAfter = 15 * time.Minute
	// disableAfter unsubscribes an app whose webhook kept failing (§4.4).
	disableAfter = time.Hour
	// webhookTimeout is how long a delivery waits for an answer (§4.4).
	webhookTimeout = 20 * time.Second
	// typingTimeout is how long Messenger shows typing without a refresh.
	typingTimeout = 20 * time.Second
	// batchMax caps the entries of one webhook POST (§4.2).
	batchMax = 100
	// deliveryLogMax bounds the per-app attempt log kept for /_emulator/deliveries.
	deliveryLogMax = 5000
)

// Config configures an Emulator. Zero values select the documented defaults.
type Config struct {
	// PageID is the Page's id; default "100200300".
	PageID string
	// PageName is the Page's display name; default "Baton Demo Page".
	PageName string
	// Mode is "classic", "routing" (default) or "routing-cr".
	Mode string
	// Now is the real clock; the emulator adds its virtual offset to it so
	// that tests can move time (POST /_emulator/clock). Default time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// StateFile, when set, keeps the people, their conversations, the
	// threads and the clock across runs: loaded by New, written by Close
	// (`baton demo` run twice shows the same conversations on both sides).
	StateFile string
	// HTTPClient performs webhook verifications and deliveries; nil selects a
	// client with the 20 s timeout that follows no redirects (§4.4).
	HTTPClient *http.Client
}

// Emulator is one emulated Page with its apps, people and threads. All state
// lives behind one mutex: the emulator is a test tool, and one lock keeps the
// state machine obviously consistent.
type Emulator struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	offset   time.Duration
	apps     map[string]*app
	appOrder []string
	tokens   map[string]string // page access token → app id
	users    map[string]*user
	userList []string
	threads  map[string]*thread
	faults   Faults
	switches Switches
	sends    rateWindow // Send API calls, 300/s per Page (§10)
	media    rateWindow // audio and video sends, 10/s per Page (§10)
}

// app is a Messenger app installed on the Page.
type app struct {
	ID          string
	Name        string
	Secret      string
	VerifyToken string
	WebhookURL  string
	Verified    bool
	Role        string // messenger.RolePrimary, messenger.RoleSecondary or ""
	HumanAgent  bool
	Subscribed  bool
	Fields      map[string]bool
	Token       string
	pseudo      bool // the Page Inbox: no token, no webhook

	queue   []queued
	batch   *batch
	log     []deliveryRecord
	wake    chan struct{}
	kick    chan chan struct{}
	started bool
}

// user is a person who talks to the Page.
type user struct {
	PSID       string
	FirstName  string
	LastName   string
	ProfilePic string
	NoProfile  bool
	log        []*chatItem
	typingApp  string
	typingTill time.Time
}

// thread is the (Page, PSID) handover state (§7).
type thread struct {
	Owner      string // app id, "" when idle
	ExpiresAt  time.Time
	LastUserAt time.Time
}

// chatItem is one line of what the person sees.
type chatItem struct {
	Mid          string
	FromUser     bool
	AppID        string
	Text         string
	Attachments  []chatAttachment
	QuickReplies []chatQuickReply
	Buttons      []chatButton
	Timestamp    time.Time
	Seen         bool
}

type chatAttachment struct {
	Type string `json:"type"`
	URL  string `json:"url,omitempty"`
}

type chatQuickReply struct {
	Title   string `json:"title"`
	Payload string `json:"payload"`
}

type chatButton struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Payload string `json:"payload,omitempty"`
	URL     string `json:"url,omitempty"`
}

// Faults are the runtime faults of SPEC.md's PUT /_emulator/faults.
type Faults struct {
	GraphLatencyMS       int     `json:"graph_latency_ms"`
	GraphErrorRate       float64 `json:"graph_error_rate"`
	GraphDown            bool    `json:"graph_down"`
	WebhookDropRate      float64 `json:"webhook_drop_rate"`
	WebhookDuplicateRate float64 `json:"webhook_duplicate_rate"`
	WebhookReorder       bool    `json:"webhook_reorder"`
	IgnoreThreadRequests bool    `json:"ignore_thread_requests"`
}

// Switches are the wire-format variants of PROTOCOL.md §14 that the
// emulator implements beyond the runtime faults.
type Switches struct {
	AppIDJSON        string `json:"app_id_json"`       // number | string | random
	SignatureHeaders string `json:"signature_headers"` // both | sha256 | sha1 | none | wrong
	JSONEscaping     string `json:"json_escaping"`     // meta | plain
	PageInbox        bool   `json:"page_inbox"`        // the Inbox holds the Secondary role
	BatchMax         int    `json:"batch_max"`         // 1..100 entries per POST
	SuccessStatus    string `json:"success_status"`    // 200 | 2xx
	DisableAfter     string `json:"disable_after"`     // 1h | 8h | never
	Status190        int    `json:"status_190"`        // 400 | 401
	RequireProof     bool   `json:"require_appsecret_proof"`
	TakeResponse     string `json:"take_response"`    // success | thread_owner
	AppRolesScope    string `json:"app_roles_scope"`  // self | all
	StandbyExtra     bool   `json:"standby_extra"`    // reactions and referrals also on standby
	AttachmentFetch  string `json:"attachment_fetch"` // skip | fail
}

// defaultSwitches are the defaults of PROTOCOL.md §14.
func defaultSwitches() Switches {
	return Switches{
		AppIDJSON: "number", SignatureHeaders: "both", JSONEscaping: "meta", PageInbox: true,
		BatchMax: batchMax, SuccessStatus: "200", DisableAfter: "1h", Status190: 400,
		TakeResponse: "success", AppRolesScope: "self", AttachmentFetch: "skip",
	}
}

var digitsRE = regexp.MustCompile(`^[0-9]{1,25}$`)

// New validates cfg and returns a running emulator. Close releases it.
func New(cfg Config) (*Emulator, error) {
	if cfg.PageID == "" {
		cfg.PageID = "100200300"
	}
	if cfg.PageName == "" {
		cfg.PageName = "Baton Demo Page"
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeRouting
	}
	switch cfg.Mode {
	case ModeClassic, ModeRouting, ModeRoutingCR:
	default:
		return nil, fmt.Errorf("new emulator: unknown mode %q (want classic, routing or routing-cr)", cfg.Mode)
	}
	if !digitsRE.MatchString(cfg.PageID) {
		return nil, fmt.Errorf("new emulator: page id %q is not a digit string", cfg.PageID)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Emulator{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   cfg.HTTPClient,
		apps:     map[string]*app{},
		tokens:   map[string]string{},
		users:    map[string]*user{},
		threads:  map[string]*thread{},
		switches: defaultSwitches(),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.client == nil {
		e.client = &http.Client{
			Timeout: webhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	inbox := &app{
		ID:         messenger.PageInboxAppID,
		Name:       "Page Inbox",
		Role:       messenger.RoleSecondary,
		Subscribed: true,
		Fields:     map[string]bool{},
		pseudo:     true,
	}
	e.apps[inbox.ID] = inbox
	e.appOrder = append(e.appOrder, inbox.ID)
	if cfg.StateFile != "" {
		if err := e.loadState(cfg.StateFile); err != nil {
			return nil, fmt.Errorf("new emulator: %w", err)
		}
	}
	return e, nil
}

// PageID returns the emulated Page's id, which callers need to build URLs.
func (e *Emulator) PageID() string { return e.cfg.PageID }

// Close stops the delivery workers and waits for them, so that no webhook
// POST outlives the emulator.
func (e *Emulator) Close() {
	// Cancel under the lock: startWorker runs under it and checks the
	// context, so no worker can join the wait group after this point.
	e.mu.Lock()
	e.cancel()
	e.mu.Unlock()
	e.wg.Wait()
	if e.cfg.StateFile != "" {
		if err := e.saveState(e.cfg.StateFile); err != nil {
			e.log.Warn("save emulator state", "file", e.cfg.StateFile, "err", err)
		}
	}
}

// Handler serves the Graph API, the person's chat page at "/" and the
// /_emulator control API.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	e.routeControl(mux)
	e.routeChat(mux)
	mux.HandleFunc("/", e.serveGraph)
	return mux
}

// now is the virtual clock: the real clock plus every advance so far.
// Callers hold e.mu.
func (e *Emulator) now() time.Time {
	return e.cfg.Now().Add(e.offset)
}

// nowLocked reads the virtual clock from outside the lock.
func (e *Emulator) nowLocked() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now()
}

// ms renders a time as epoch milliseconds, the protocol's unit.
func ms(t time.Time) int64 { return t.UnixMilli() }

// randomDigits returns n random digits that do not start with 0.
func randomDigits(n int) string {
	b := make([]byte, n)
	b[0] = byte('1' + mrand.IntN(9))
	for i := 1; i < n; i++ {
		b[i] = byte('0' + mrand.IntN(10))
	}
	return string(b)
}

// newMid returns a message id in the current shape: "m_" + 43 URL-safe chars.
func newMid() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "m_" + base64.RawURLEncoding.EncodeToString(b)
}

// newToken returns an opaque page access token.
func newToken() string {
	return "EAA" + rand.Text() + rand.Text()
}

// newTraceID returns a random fbtrace_id.
func newTraceID() string {
	b := make([]byte, 17)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:23]
}

// primary returns the Primary Receiver's id, or "". Callers hold e.mu.
func (e *Emulator) primary() string {
	for _, id := range e.appOrder {
		if a := e.apps[id]; a.Role == messenger.RolePrimary {
			return id
		}
	}
	return ""
}

// hasRole reports whether app id holds a handover role. Callers hold e.mu.
func (e *Emulator) hasRole(id string) bool {
	a, ok := e.apps[id]
	if !ok {
		return false
	}
	if a.pseudo && !e.switches.PageInbox {
		return false
	}
	return a.Role != ""
}
