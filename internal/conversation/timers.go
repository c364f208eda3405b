package conversation

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// Timer constants of PROTOCOL.md §7 and §13.4.
const (
	// PlatformIdle is how long the platform keeps an owned thread without
	// a user event or owner change before it goes idle (routing modes).
	PlatformIdle = 24 * time.Hour
	// ExtendLead: extend_thread_control is called this long before the
	// platform would release a thread an agent is working.
	ExtendLead = 30 * time.Minute
	// AgentActiveWithin: an agent reply this recent means the thread is
	// being worked, so it is extended rather than let go.
	AgentActiveWithin = time.Hour
	// ExtendBy is how much each extend asks for; the 7-day human-agent
	// window caps it, since a longer hold could never be answered.
	ExtendBy = 24 * time.Hour
	// ExtendRetry spaces extend attempts after a failure.
	ExtendRetry = 10 * time.Minute
	// OwnerRecheck: a thread still Baton's after its expected expiry is
	// asked about again this often.
	OwnerRecheck = time.Hour
	// ReturnBeforeExpiry: with idle auto-return on, a thread nobody works
	// goes back to the bot this long before the platform would drop it to
	// idle, so the bot, not nobody, gets the person's next message.
	ReturnBeforeExpiry = 5 * time.Minute
	// IdleWarnBefore is the longest the idle warning is shown ahead.
	IdleWarnBefore = 10 * time.Minute
)

// Owner is the answer of GET /me/thread_owner (PROTOCOL.md §8.7) as the
// rules need it: exactly one of AppID, Idle and Hidden is set.
type Owner struct {
	AppID string
	Idle  bool
	// Hidden is 100/2018234: another Secondary, often the Page Inbox.
	Hidden bool
}

// OwnerSource asks Graph who owns a thread. It is read-only, so it is
// called directly rather than through the outbox.
type OwnerSource interface {
	ThreadOwner(ctx context.Context, psid string) (Owner, error)
}

// Extender calls POST /me/extend_thread_control (PROTOCOL.md §8.6).
type Extender interface {
	ExtendThreadControl(ctx context.Context, psid string, d time.Duration) error
}

// ApplyOwner applies a thread_owner answer to c and returns the `inferred`
// handover to record, or nil when nothing changed but the doubt. An open
// conversation that is no longer Baton's closes: with lostReason when
// given, else as expired when the thread is idle and passed otherwise. A
// conversation Baton turns out to own is opened, so agents can answer.
func ApplyOwner(p *baton.Page, c *baton.Conversation, o Owner, now time.Time, lostReason string) *baton.Handover {
	from := c.OwnerAppID
	var to, what string
	switch {
	case o.Hidden:
		// Graph hides only another Secondary's ownership from Baton:
		// keep a known other owner, else name the usual one.
		to = from
		if to == "" || to == p.BatonAppID || to == p.PrimaryAppID {
			to = baton.PageInboxAppID
		}
		what = "thread_owner: hidden (another Secondary owns the thread)"
	case o.Idle:
		what = "thread_owner: idle (no app owns the thread)"
	default:
		to = o.AppID
		what = "thread_owner: app " + o.AppID
	}
	c.OwnerUnsure = false
	changed := to != from
	c.OwnerAppID = to
	batonOwns := p.BatonAppID != "" && to == p.BatonAppID
	switch {
	case batonOwns && c.Status != baton.StatusOpen && !c.Closing:
		t := now
		c.Status, c.CloseReason, c.ClosedAt, c.OpenedAt, c.Unread = baton.StatusOpen, "", nil, &t, 0
		c.RequestedAt, c.RequestReason = nil, ""
		changed = true
	case !batonOwns && c.Status == baton.StatusOpen:
		reason := lostReason
		if reason == "" {
			reason = baton.ClosePassed
			if o.Idle {
				reason = baton.CloseExpired
			}
		}
		t := now
		c.Status, c.CloseReason, c.ClosedAt, c.Closing = baton.StatusClosed, reason, &t, false
		changed = true
	}
	if !changed {
		return nil
	}
	return &baton.Handover{ConversationID: c.ID, Kind: "inferred", FromAppID: from, ToAppID: to,
		Metadata: what, TimestampMS: now.UnixMilli()}
}

// PlatformExpiry estimates when the platform releases the thread (§7):
// 24 h after the newest user event or owner change, or the end of an
// extension if later. Zero when no clock is known.
func PlatformExpiry(s *baton.TimerState) time.Time {
	var base int64
	if s.Conv.LastUserEventMS > base {
		base = s.Conv.LastUserEventMS
	}
	if s.Conv.OwnerTS > base {
		base = s.Conv.OwnerTS
	}
	var exp time.Time
	if base > 0 {
		exp = time.UnixMilli(base).Add(PlatformIdle)
	}
	if s.ExtendedUntil.After(exp) {
		exp = s.ExtendedUntil
	}
	return exp
}

// ExpiryCheckDue reports whether Baton should ask thread_owner because the
// platform may have released the thread (§13.4): once the expected expiry
// passed, again if it moved, and every OwnerRecheck while Graph still
// says the thread is Baton's.
func ExpiryCheckDue(s *baton.TimerState, now time.Time) bool {
	exp := PlatformExpiry(s)
	if exp.IsZero() || now.Before(exp) {
		return false
	}
	checked := s.OwnerCheckedAt
	return checked.IsZero() || checked.Before(exp) || now.Sub(checked) >= OwnerRecheck
}

// agentActive: an agent replied within AgentActiveWithin of now.
func agentActive(s *baton.TimerState, now time.Time) bool {
	return !s.LastAgentActivity.IsZero() && now.Sub(s.LastAgentActivity) <= AgentActiveWithin
}

// ExtendFor returns how long to extend control now, or 0: only a thread an
// agent is working, within ExtendLead of its expiry, never past the 7-day
// human-agent window, and not again soon after an attempt.
func ExtendFor(s *baton.TimerState, now time.Time) time.Duration {
	c := s.Conv
	if c.Status != baton.StatusOpen || c.Closing || c.LastUserEventMS <= 0 || !agentActive(s, now) {
		return 0
	}
	exp := PlatformExpiry(s)
	if exp.IsZero() || !now.Before(exp) || exp.Sub(now) > ExtendLead {
		return 0
	}
	if !s.ExtendTriedAt.IsZero() && now.Sub(s.ExtendTriedAt) < ExtendRetry {
		return 0
	}
	limit := time.UnixMilli(c.LastUserEventMS).Add(HumanAgentWindow)
	d := min(ExtendBy, limit.Sub(now)).Truncate(time.Second)
	if d <= 0 || !now.Add(d).After(exp) {
		return 0
	}
	return d
}

// IdleReturnAt is when an open conversation goes back to the bot for want
// of an agent reply (issue 8): idle after the later of the handover and
// the last agent reply, or, when no agent is working it, shortly before
// the platform would let it lapse. Zero when idle is 0 (off) or the
// conversation is not open.
func IdleReturnAt(s *baton.TimerState, idle time.Duration, now time.Time) time.Time {
	c := s.Conv
	if idle <= 0 || c.Status != baton.StatusOpen {
		return time.Time{}
	}
	base := s.LastAgentActivity
	if c.OpenedAt != nil && c.OpenedAt.After(base) {
		base = *c.OpenedAt
	}
	if base.IsZero() {
		return time.Time{}
	}
	at := base.Add(idle)
	if exp := PlatformExpiry(s); !exp.IsZero() && !agentActive(s, now) {
		if early := exp.Add(-ReturnBeforeExpiry); early.Before(at) {
			at = early
		}
	}
	return at
}

// IdleWarning is what the console shows while an idle auto-return nears.
type IdleWarning struct {
	// At is when the conversation goes back to the bot; zero: never.
	At time.Time
	// Left is the time until then (0 once due).
	Left time.Duration
	// Warn: close enough to show the warning.
	Warn bool
	// Text says it in plain words, "" when Warn is false.
	Text string
}

// IdleWarningAt computes the idle warning of s: shown in the last third of
// the idle time, at most IdleWarnBefore ahead.
func IdleWarningAt(s *baton.TimerState, idle time.Duration, now time.Time) IdleWarning {
	at := IdleReturnAt(s, idle, now)
	if at.IsZero() || s.Conv.Closing {
		return IdleWarning{}
	}
	w := IdleWarning{At: at, Left: max(at.Sub(now), 0)}
	if w.Left <= min(idle/3, IdleWarnBefore) {
		w.Warn = true
		if w.Left == 0 {
			w.Text = "Going back to the bot now: no agent reply for " + Human(idle) + "."
		} else {
			w.Text = "Returns to the bot in " + Human(w.Left) + " unless an agent replies."
		}
	}
	return w
}

// Timers is the background job of PROTOCOL.md §13.4 and §16: it settles
// owner doubts with thread_owner, checks threads the platform may have
// released, extends threads agents are working and returns idle ones to
// the bot through the outbox. Every instance may run one: each change is
// re-checked under the conversation's row lock.
type Timers struct {
	Store   baton.TimerStore
	Console baton.ConsoleStore
	// Page returns the connected Page (Baton's and the Primary's ids).
	Page     func(ctx context.Context) (*baton.Page, error)
	Owners   OwnerSource
	Extender Extender
	// Unsupported reports an extend error that means the mode has no
	// extend (classic answers 2500): the Page is then not asked again.
	Unsupported func(error) bool
	Audit       baton.AuditLog
	// IdleReturn is BATON_IDLE_RETURN; 0 turns the auto-return off.
	IdleReturn time.Duration
	// Interval between scans (default 15 s); Wake starts one at once.
	Interval time.Duration
	Wake     <-chan struct{}
	Now      func() time.Time
	Logger   *slog.Logger
	// OnChange announces a changed conversation to the browsers.
	OnChange func(id int64)

	mu       sync.Mutex
	noExtend map[string]bool // pages whose mode has no extend
	busy     sync.Mutex      // one scan at a time
}

// Batch sizes of one scan.
const (
	unsureBatch = 100
	openBatch   = 1000
)

func (t *Timers) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Timers) log() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

// Warning is the idle warning of conversation id for the console.
func (t *Timers) Warning(ctx context.Context, id int64) (IdleWarning, error) {
	if t.IdleReturn <= 0 {
		return IdleWarning{}, nil
	}
	s, err := t.Store.TimerState(ctx, id)
	if err != nil {
		return IdleWarning{}, fmt.Errorf("idle warning: %w", err)
	}
	return IdleWarningAt(s, t.IdleReturn, t.now()), nil
}

// Run scans every Interval and on Wake until ctx ends.
func (t *Timers) Run(ctx context.Context) {
	interval := t.Interval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := t.RunOnce(ctx); err != nil && ctx.Err() == nil {
			t.log().Warn("thread timers scan failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.Wake:
		}
	}
}

// RunOnce performs one scan. Graph failures on one thread are logged and
// retried at a later scan; a storage failure ends the scan with an error.
func (t *Timers) RunOnce(ctx context.Context) error {
	t.busy.Lock()
	defer t.busy.Unlock()
	p, err := t.Page(ctx)
	if err != nil {
		return fmt.Errorf("timers: read page: %w", err)
	}
	unsure, err := t.Store.OwnerUnsureConversations(ctx, unsureBatch)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	for _, c := range unsure {
		if err := t.checkOwner(ctx, p, c, "", "owner unsure"); err != nil {
			return err
		}
	}
	states, err := t.Store.OpenTimerStates(ctx, openBatch)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	for _, s := range states {
		now := t.now()
		// Extending only where the Page's mode has it: otherwise the
		// thread falls through to the idle return.
		d := ExtendFor(s, now)
		switch {
		case s.Conv.OwnerUnsure:
			// Settled above or at the next scan.
		case ExpiryCheckDue(s, now):
			err = t.checkOwner(ctx, p, s.Conv, baton.CloseExpired, "expiry check")
		case d > 0 && t.canExtend(p):
			err = t.extend(ctx, p, s, d)
		default:
			if at := IdleReturnAt(s, t.IdleReturn, now); !at.IsZero() && !now.Before(at) {
				err = t.idleReturn(ctx, p, s.Conv.ID)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkOwner asks thread_owner about c and applies the answer, unless a
// handover event changed the owner meanwhile (the events are newer).
func (t *Timers) checkOwner(ctx context.Context, p *baton.Page, c *baton.Conversation, lostReason, why string) error {
	o, err := t.Owners.ThreadOwner(ctx, c.PSID)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t.log().Warn("thread_owner failed; asking again at the next scan", "conversation_id", c.ID, "why", why, "err", err)
		return nil
	}
	seenOwner, seenTS := c.OwnerAppID, c.OwnerTS
	var h *baton.Handover
	got, err := t.Store.ResolveOwner(ctx, c.ID, t.now(), func(cur *baton.Conversation) *baton.Handover {
		if cur.OwnerAppID != seenOwner || cur.OwnerTS != seenTS {
			return nil
		}
		h = ApplyOwner(p, cur, o, t.now(), lostReason)
		return h
	})
	if err != nil {
		return fmt.Errorf("timers: resolve owner: %w", err)
	}
	if got != nil && (h != nil || c.OwnerUnsure) && t.OnChange != nil {
		t.OnChange(c.ID)
	}
	if h == nil {
		return nil
	}
	t.audit(ctx, baton.AuditEntry{Action: "handover.inferred", Subject: convSubject(c.ID), Detail: map[string]any{
		"why": why, "from_app_id": h.FromAppID, "to_app_id": h.ToAppID, "answer": h.Metadata,
		"status": string(got.Status), "close_reason": got.CloseReason}})
	return nil
}

// canExtend: Baton can call extend_thread_control for p's threads (it has
// an extender, and the Page's mode has not answered that it has none).
func (t *Timers) canExtend(p *baton.Page) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Extender != nil && !t.noExtend[p.PageID]
}

// extend calls extend_thread_control for s, remembering Pages whose mode
// has none.
func (t *Timers) extend(ctx context.Context, p *baton.Page, s *baton.TimerState, d time.Duration) error {
	now := t.now()
	err := t.Extender.ExtendThreadControl(ctx, s.Conv.PSID, d)
	var until *time.Time
	if err == nil {
		u := now.Add(d)
		until = &u
	} else {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if t.Unsupported != nil && t.Unsupported(err) {
			t.mu.Lock()
			if t.noExtend == nil {
				t.noExtend = map[string]bool{}
			}
			t.noExtend[p.PageID] = true
			t.mu.Unlock()
			t.log().Warn("extend_thread_control is not available in this platform mode; not trying again for this Page", "page_id", p.PageID, "err", err)
		} else {
			t.log().Warn("extend_thread_control failed", "conversation_id", s.Conv.ID, "err", err)
		}
	}
	if err := t.Store.RecordExtend(ctx, s.Conv.ID, now, until); err != nil {
		return fmt.Errorf("timers: record extend: %w", err)
	}
	detail := map[string]any{"seconds": int64(d / time.Second), "ok": err == nil}
	if err != nil {
		detail["error"] = err.Error()
	}
	t.audit(ctx, baton.AuditEntry{Action: "handover.extend", Subject: convSubject(s.Conv.ID), Detail: detail})
	return nil
}

// idleReturn queues the pass back to the bot with outcome "idle",
// re-reading the conversation first so a reply written meanwhile wins.
func (t *Timers) idleReturn(ctx context.Context, p *baton.Page, id int64) error {
	s, err := t.Store.TimerState(ctx, id)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	now := t.now()
	if at := IdleReturnAt(s, t.IdleReturn, now); at.IsZero() || now.Before(at) || s.Conv.Closing {
		return nil
	}
	// PROTOCOL.md §13.1: target the Primary when known, else let the
	// platform default to it.
	it := &baton.OutboxItem{Kind: "pass", TargetAppID: p.PrimaryAppID}
	err = t.Console.Enqueue(ctx, id, it, func(c *baton.Conversation) error {
		if c.Status != baton.StatusOpen || c.Closing || c.OwnerUnsure {
			return baton.Errorf(baton.ECONFLICT, "The conversation is no longer waiting in Baton's inbox.")
		}
		handled := int64(0)
		if c.OpenedAt != nil {
			handled = max(int64(now.Sub(*c.OpenedAt).Seconds()), 0)
		}
		it.Metadata = DoneMetadata{Outcome: baton.CloseIdle, ConversationID: ConversationRef(c.ID), HandledSeconds: handled,
			Note: "No agent reply for " + Human(t.IdleReturn) + "; returned automatically."}.Encode()
		c.Closing, c.DoneOutcome = true, baton.CloseIdle
		return nil
	})
	if baton.ErrorCode(err) == baton.ECONFLICT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("timers: idle return: %w", err)
	}
	if t.OnChange != nil {
		t.OnChange(id)
	}
	t.audit(ctx, baton.AuditEntry{Action: "handover.idle_return", Subject: convSubject(id), Detail: map[string]any{
		"outbox_id": it.ID, "idle_seconds": int64(t.IdleReturn / time.Second), "metadata": it.Metadata}})
	return nil
}

func (t *Timers) audit(ctx context.Context, e baton.AuditEntry) {
	if t.Audit == nil {
		return
	}
	e.At = t.now()
	if err := t.Audit.Audit(ctx, e); err != nil {
		t.log().Warn("audit log write failed", "action", e.Action, "err", err)
	}
}
