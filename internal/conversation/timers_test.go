package conversation_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
)

var (
	t0    = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tpage = &baton.Page{PageID: "p1", BatonAppID: "2500000002", PrimaryAppID: "1500000001"}
)

func openConv() *baton.Conversation {
	opened := t0
	return &baton.Conversation{ID: 7, PSID: "700800900", OwnerAppID: tpage.BatonAppID, Status: baton.StatusOpen,
		OpenedAt: &opened, OwnerTS: t0.UnixMilli(), LastUserEventMS: t0.UnixMilli()}
}

func TestApplyOwner(t *testing.T) {
	botConv := func() *baton.Conversation {
		return &baton.Conversation{ID: 7, OwnerAppID: tpage.PrimaryAppID, Status: baton.StatusBot, OwnerUnsure: true}
	}
	tests := []struct {
		name       string
		conv       func() *baton.Conversation
		owner      conversation.Owner
		lostReason string
		wantOwner  string
		wantStatus baton.Status
		wantReason string
		wantRow    bool
	}{
		{"idle closes an open thread as expired", openConv, conversation.Owner{Idle: true}, "", "", baton.StatusClosed, baton.CloseExpired, true},
		{"the bot closes it as passed", openConv, conversation.Owner{AppID: tpage.PrimaryAppID}, "", tpage.PrimaryAppID, baton.StatusClosed, baton.ClosePassed, true},
		{"another app closes it as passed", openConv, conversation.Owner{AppID: "999"}, "", "999", baton.StatusClosed, baton.ClosePassed, true},
		{"hidden (2018234) is another Secondary", openConv, conversation.Owner{Hidden: true}, "", baton.PageInboxAppID, baton.StatusClosed, baton.ClosePassed, true},
		{"Baton keeps it open, nothing recorded", openConv, conversation.Owner{AppID: tpage.BatonAppID}, "", tpage.BatonAppID, baton.StatusOpen, "", false},
		{"the expiry check closes as expired whoever owns it", openConv, conversation.Owner{AppID: tpage.PrimaryAppID}, baton.CloseExpired, tpage.PrimaryAppID, baton.StatusClosed, baton.CloseExpired, true},
		{"a bot thread found idle just loses its owner", botConv, conversation.Owner{Idle: true}, "", "", baton.StatusBot, "", true},
		{"a bot thread confirmed changes nothing", botConv, conversation.Owner{AppID: tpage.PrimaryAppID}, "", tpage.PrimaryAppID, baton.StatusBot, "", false},
		{"a thread found to be Baton's opens", botConv, conversation.Owner{AppID: tpage.BatonAppID}, "", tpage.BatonAppID, baton.StatusOpen, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.conv()
			from := c.OwnerAppID
			h := conversation.ApplyOwner(tpage, c, tt.owner, t0.Add(time.Hour), tt.lostReason)
			if c.OwnerUnsure {
				t.Error("owner still unsure")
			}
			if c.OwnerAppID != tt.wantOwner || c.Status != tt.wantStatus || c.CloseReason != tt.wantReason {
				t.Errorf("got owner %q status %s reason %q; want %q %s %q", c.OwnerAppID, c.Status, c.CloseReason, tt.wantOwner, tt.wantStatus, tt.wantReason)
			}
			if (h != nil) != tt.wantRow {
				t.Fatalf("handover row = %v, want one: %v", h, tt.wantRow)
			}
			if h != nil && (h.Kind != "inferred" || h.FromAppID != from || h.ToAppID != tt.wantOwner || h.Metadata == "") {
				t.Errorf("handover = %+v", h)
			}
			if tt.wantStatus == baton.StatusClosed && (c.ClosedAt == nil || !c.ClosedAt.Equal(t0.Add(time.Hour))) {
				t.Errorf("closed at %v", c.ClosedAt)
			}
		})
	}
}

func TestExpiryCheckDue(t *testing.T) {
	day := conversation.PlatformIdle
	tests := []struct {
		name    string
		now     time.Time
		checked time.Time
		extUtil time.Time
		want    bool
	}{
		{"before 24 h", t0.Add(day - time.Minute), time.Time{}, time.Time{}, false},
		{"at 24 h, never checked", t0.Add(day), time.Time{}, time.Time{}, true},
		{"checked after the expiry, recently", t0.Add(day + 30*time.Minute), t0.Add(day + time.Minute), time.Time{}, false},
		{"checked after the expiry, an hour ago", t0.Add(day + 2*time.Hour), t0.Add(day + time.Minute), time.Time{}, true},
		{"checked before the expiry", t0.Add(day + time.Minute), t0.Add(day - time.Hour), time.Time{}, true},
		{"extended past now", t0.Add(day + time.Hour), time.Time{}, t0.Add(2 * day), false},
		{"extension over", t0.Add(2*day + time.Second), t0.Add(day), t0.Add(2 * day), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &baton.TimerState{Conv: openConv(), OwnerCheckedAt: tt.checked, ExtendedUntil: tt.extUtil}
			if got := conversation.ExpiryCheckDue(s, tt.now); got != tt.want {
				t.Errorf("due = %v, want %v (expiry %v)", got, tt.want, conversation.PlatformExpiry(s))
			}
		})
	}
}

func TestPlatformExpiryFollowsOwnerChange(t *testing.T) {
	c := openConv()
	c.OwnerTS = t0.Add(5 * time.Hour).UnixMilli() // handed over 5 h after the person wrote
	s := &baton.TimerState{Conv: c}
	if got, want := conversation.PlatformExpiry(s), t0.Add(29*time.Hour); !got.Equal(want) {
		t.Errorf("expiry = %v, want %v", got, want)
	}
}

func TestExtendFor(t *testing.T) {
	exp := t0.Add(conversation.PlatformIdle)
	tests := []struct {
		name      string
		now       time.Time
		lastAgent time.Time
		tried     time.Time
		lastUser  time.Time
		extended  time.Time
		want      time.Duration
	}{
		{"worked, 20 min before expiry: extend a day", exp.Add(-20 * time.Minute), exp.Add(-40 * time.Minute), time.Time{}, t0, time.Time{}, conversation.ExtendBy},
		{"too early", exp.Add(-2 * time.Hour), exp.Add(-2 * time.Hour), time.Time{}, t0, time.Time{}, 0},
		{"no agent reply in the last hour", exp.Add(-10 * time.Minute), exp.Add(-90 * time.Minute), time.Time{}, t0, time.Time{}, 0},
		{"no agent ever", exp.Add(-10 * time.Minute), time.Time{}, time.Time{}, t0, time.Time{}, 0},
		{"already expired: the expiry check's turn", exp.Add(time.Minute), exp, time.Time{}, t0, time.Time{}, 0},
		{"tried five minutes ago", exp.Add(-10 * time.Minute), exp.Add(-20 * time.Minute), exp.Add(-15 * time.Minute), t0, time.Time{}, 0},
		{"tried long ago", exp.Add(-10 * time.Minute), exp.Add(-20 * time.Minute), exp.Add(-25 * time.Minute), t0, time.Time{}, conversation.ExtendBy},
		{"capped by the 7-day window", t0.Add(7*24*time.Hour - 6*time.Hour), t0.Add(7*24*time.Hour - 6*time.Hour - time.Minute), time.Time{}, t0,
			t0.Add(7*24*time.Hour - 5*time.Hour - 50*time.Minute), 6 * time.Hour},
		{"nothing left of the 7 days", t0.Add(7 * 24 * time.Hour), t0.Add(7*24*time.Hour - time.Minute), time.Time{}, t0,
			t0.Add(7*24*time.Hour + 10*time.Minute), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openConv()
			c.LastUserEventMS = tt.lastUser.UnixMilli()
			s := &baton.TimerState{Conv: c, LastAgentActivity: tt.lastAgent, ExtendTriedAt: tt.tried, ExtendedUntil: tt.extended}
			if got := conversation.ExtendFor(s, tt.now); got != tt.want {
				t.Errorf("extend for %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdleReturnAt(t *testing.T) {
	idle := 30 * time.Minute
	tests := []struct {
		name      string
		idle      time.Duration
		lastAgent time.Time
		now       time.Time
		lastUser  time.Time
		want      time.Time
	}{
		{"off", 0, time.Time{}, t0.Add(time.Hour), t0, time.Time{}},
		{"no reply since the handover", idle, time.Time{}, t0, t0, t0.Add(idle)},
		{"from the last agent reply", idle, t0.Add(10 * time.Minute), t0.Add(15 * time.Minute), t0, t0.Add(40 * time.Minute)},
		{"a long idle time is cut short before the platform expiry", 48 * time.Hour, time.Time{}, t0.Add(time.Hour), t0,
			t0.Add(conversation.PlatformIdle - conversation.ReturnBeforeExpiry)},
		{"but not while an agent works it", 48 * time.Hour, t0.Add(23*time.Hour + 30*time.Minute), t0.Add(23*time.Hour + 40*time.Minute), t0,
			t0.Add(23*time.Hour + 30*time.Minute + 48*time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openConv()
			c.LastUserEventMS = tt.lastUser.UnixMilli()
			s := &baton.TimerState{Conv: c, LastAgentActivity: tt.lastAgent}
			if got := conversation.IdleReturnAt(s, tt.idle, tt.now); !got.Equal(tt.want) {
				t.Errorf("at %v, want %v", got, tt.want)
			}
		})
	}
	closed := openConv()
	closed.Status = baton.StatusClosed
	if got := conversation.IdleReturnAt(&baton.TimerState{Conv: closed}, idle, t0); !got.IsZero() {
		t.Errorf("closed conversation returns at %v", got)
	}
}

func TestIdleWarningAt(t *testing.T) {
	idle := 30 * time.Minute
	s := &baton.TimerState{Conv: openConv()}
	tests := []struct {
		now      time.Time
		wantWarn bool
		wantLeft time.Duration
	}{
		{t0.Add(10 * time.Minute), false, 20 * time.Minute},
		{t0.Add(21 * time.Minute), true, 9 * time.Minute},
		{t0.Add(31 * time.Minute), true, 0},
	}
	for _, tt := range tests {
		w := conversation.IdleWarningAt(s, idle, tt.now)
		if w.Warn != tt.wantWarn || w.Left != tt.wantLeft || (w.Warn && w.Text == "") || (!w.Warn && w.Text != "") {
			t.Errorf("at %v: %+v", tt.now.Sub(t0), w)
		}
	}
	if w := conversation.IdleWarningAt(s, 0, t0.Add(time.Hour)); w.Warn || !w.At.IsZero() {
		t.Errorf("off: %+v", w)
	}
}

// fakeTimerStore is the storage of the Timers tests: conversations by id.
type fakeTimerStore struct {
	baton.ConsoleStore // only Enqueue is used
	convs              map[int64]*baton.TimerState
	handovers          []*baton.Handover
	enqueued           []*baton.OutboxItem
}

func (f *fakeTimerStore) OwnerUnsureConversations(ctx context.Context, limit int) ([]*baton.Conversation, error) {
	var out []*baton.Conversation
	for _, s := range f.convs {
		if s.Conv.OwnerUnsure {
			c := *s.Conv
			out = append(out, &c)
		}
	}
	return out, nil
}

func (f *fakeTimerStore) OpenTimerStates(ctx context.Context, limit int) ([]*baton.TimerState, error) {
	var out []*baton.TimerState
	for _, s := range f.convs {
		if s.Conv.Status == baton.StatusOpen && !s.Conv.Closing {
			cp := *s
			c := *s.Conv
			cp.Conv = &c
			out = append(out, &cp)
		}
	}
	return out, nil
}

func (f *fakeTimerStore) TimerState(ctx context.Context, id int64) (*baton.TimerState, error) {
	s, ok := f.convs[id]
	if !ok {
		return nil, baton.Errorf(baton.ENOTFOUND, "no")
	}
	cp := *s
	c := *s.Conv
	cp.Conv = &c
	return &cp, nil
}

func (f *fakeTimerStore) ResolveOwner(ctx context.Context, id int64, at time.Time, fn func(c *baton.Conversation) *baton.Handover) (*baton.Conversation, error) {
	s := f.convs[id]
	if h := fn(s.Conv); h != nil {
		f.handovers = append(f.handovers, h)
	}
	s.OwnerCheckedAt = at
	return s.Conv, nil
}

func (f *fakeTimerStore) RecordExtend(ctx context.Context, id int64, at time.Time, until *time.Time) error {
	s := f.convs[id]
	s.ExtendTriedAt = at
	if until != nil {
		s.ExtendedUntil = *until
	}
	return nil
}

func (f *fakeTimerStore) Enqueue(ctx context.Context, id int64, it *baton.OutboxItem, check func(c *baton.Conversation) error) error {
	if err := check(f.convs[id].Conv); err != nil {
		return err
	}
	f.enqueued = append(f.enqueued, it)
	return nil
}

type fakeGraph struct {
	owner      conversation.Owner
	ownerCalls int
	extendErr  error
	extends    []time.Duration
}

func (g *fakeGraph) ThreadOwner(ctx context.Context, psid string) (conversation.Owner, error) {
	g.ownerCalls++
	return g.owner, nil
}

func (g *fakeGraph) ExtendThreadControl(ctx context.Context, psid string, d time.Duration) error {
	g.extends = append(g.extends, d)
	return g.extendErr
}

type auditRec struct{ actions []string }

func (a *auditRec) Audit(ctx context.Context, e baton.AuditEntry) error {
	a.actions = append(a.actions, e.Action)
	return nil
}

func newTimers(store *fakeTimerStore, g *fakeGraph, now *time.Time, idle time.Duration) (*conversation.Timers, *auditRec) {
	a := &auditRec{}
	return &conversation.Timers{Store: store, Console: store, Owners: g, Extender: g, Audit: a, IdleReturn: idle,
		Page:        func(context.Context) (*baton.Page, error) { return tpage, nil },
		Unsupported: func(err error) bool { return err.Error() == "2500" },
		Now:         func() time.Time { return *now }}, a
}

func TestTimersIdleReturn(t *testing.T) {
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{7: {Conv: openConv()}}}
	now := t0.Add(29 * time.Minute)
	tm, audit := newTimers(store, &fakeGraph{}, &now, 30*time.Minute)
	ctx := context.Background()
	if err := tm.RunOnce(ctx); err != nil || len(store.enqueued) != 0 {
		t.Fatalf("returned early: %v %v", err, store.enqueued)
	}
	now = t0.Add(30 * time.Minute)
	if err := tm.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(store.enqueued) != 1 {
		t.Fatalf("enqueued %d items", len(store.enqueued))
	}
	it := store.enqueued[0]
	var md conversation.DoneMetadata
	if err := json.Unmarshal([]byte(it.Metadata), &md); err != nil {
		t.Fatal(err)
	}
	if it.Kind != "pass" || it.TargetAppID != tpage.PrimaryAppID || it.AuthorUserID != nil ||
		md.V != 1 || md.Outcome != "idle" || md.ConversationID != "c_7" || md.HandledSeconds != 1800 {
		t.Errorf("item %+v metadata %+v", it, md)
	}
	if c := store.convs[7].Conv; !c.Closing || c.DoneOutcome != "idle" {
		t.Errorf("conversation not handing back: %+v", c)
	}
	if len(audit.actions) != 1 || audit.actions[0] != "handover.idle_return" {
		t.Errorf("audit = %v", audit.actions)
	}
	// Handing back already: no second pass.
	if err := tm.RunOnce(ctx); err != nil || len(store.enqueued) != 1 {
		t.Errorf("second scan: %v, %d items", err, len(store.enqueued))
	}
}

func TestTimersAgentReplyPostponesIdleReturn(t *testing.T) {
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{7: {Conv: openConv(), LastAgentActivity: t0.Add(20 * time.Minute)}}}
	now := t0.Add(45 * time.Minute)
	tm, _ := newTimers(store, &fakeGraph{}, &now, 30*time.Minute)
	if err := tm.RunOnce(context.Background()); err != nil || len(store.enqueued) != 0 {
		t.Fatalf("returned despite a reply 25 min ago: %v %d", err, len(store.enqueued))
	}
	now = t0.Add(50 * time.Minute)
	if err := tm.RunOnce(context.Background()); err != nil || len(store.enqueued) != 1 {
		t.Fatalf("not returned 30 min after the reply: %v %d", err, len(store.enqueued))
	}
}

func TestTimersResolveUnsureOwner(t *testing.T) {
	c := openConv()
	c.OwnerUnsure = true
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{7: {Conv: c}}}
	g := &fakeGraph{owner: conversation.Owner{AppID: tpage.PrimaryAppID}}
	now := t0.Add(time.Hour)
	tm, audit := newTimers(store, g, &now, 0)
	var changed []int64
	tm.OnChange = func(id int64) { changed = append(changed, id) }
	if err := tm.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := store.convs[7].Conv
	if got.OwnerUnsure || got.Status != baton.StatusClosed || got.CloseReason != baton.ClosePassed || got.OwnerAppID != tpage.PrimaryAppID {
		t.Errorf("conversation = %+v", got)
	}
	if len(store.handovers) != 1 || store.handovers[0].Kind != "inferred" {
		t.Errorf("handovers = %v", store.handovers)
	}
	if len(changed) != 1 || len(audit.actions) != 1 || audit.actions[0] != "handover.inferred" {
		t.Errorf("changes %v audit %v", changed, audit.actions)
	}
	if g.ownerCalls != 1 {
		t.Errorf("thread_owner called %d times", g.ownerCalls)
	}
}

func TestTimersExpiryCheck(t *testing.T) {
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{7: {Conv: openConv()}}}
	g := &fakeGraph{owner: conversation.Owner{AppID: tpage.BatonAppID}}
	now := t0.Add(conversation.PlatformIdle - time.Second)
	tm, _ := newTimers(store, g, &now, 0)
	ctx := context.Background()
	if err := tm.RunOnce(ctx); err != nil || g.ownerCalls != 0 {
		t.Fatalf("asked before 24 h: %v %d", err, g.ownerCalls)
	}
	now = t0.Add(conversation.PlatformIdle)
	if err := tm.RunOnce(ctx); err != nil || g.ownerCalls != 1 {
		t.Fatalf("not asked at 24 h: %v %d", err, g.ownerCalls)
	}
	if c := store.convs[7].Conv; c.Status != baton.StatusOpen {
		t.Fatalf("still Baton's, yet %s", c.Status)
	}
	// Asked again only after OwnerRecheck; by then the platform let go.
	now = now.Add(10 * time.Minute)
	if err := tm.RunOnce(ctx); err != nil || g.ownerCalls != 1 {
		t.Fatalf("asked again at once: %v %d", err, g.ownerCalls)
	}
	g.owner = conversation.Owner{Idle: true}
	now = now.Add(conversation.OwnerRecheck)
	if err := tm.RunOnce(ctx); err != nil || g.ownerCalls != 2 {
		t.Fatalf("recheck: %v %d", err, g.ownerCalls)
	}
	if c := store.convs[7].Conv; c.Status != baton.StatusClosed || c.CloseReason != baton.CloseExpired || c.OwnerAppID != "" {
		t.Errorf("after expiry: %+v", c)
	}
}

func TestTimersExtend(t *testing.T) {
	exp := t0.Add(conversation.PlatformIdle)
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{7: {Conv: openConv(), LastAgentActivity: exp.Add(-30 * time.Minute)}}}
	g := &fakeGraph{}
	now := exp.Add(-20 * time.Minute)
	tm, audit := newTimers(store, g, &now, 0)
	ctx := context.Background()
	if err := tm.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if len(g.extends) != 1 || g.extends[0] != conversation.ExtendBy {
		t.Fatalf("extends = %v", g.extends)
	}
	if s := store.convs[7]; !s.ExtendedUntil.Equal(now.Add(conversation.ExtendBy)) {
		t.Errorf("extended until %v", s.ExtendedUntil)
	}
	if len(audit.actions) != 1 || audit.actions[0] != "handover.extend" {
		t.Errorf("audit = %v", audit.actions)
	}
	// The extension moved the expiry: nothing more to do now.
	if err := tm.RunOnce(ctx); err != nil || len(g.extends) != 1 || g.ownerCalls != 0 {
		t.Errorf("second scan: %v extends %v owner calls %d", err, g.extends, g.ownerCalls)
	}
}

func TestTimersStopExtendingInClassicMode(t *testing.T) {
	exp := t0.Add(conversation.PlatformIdle)
	c2 := openConv()
	c2.ID = 8
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{
		7: {Conv: openConv(), LastAgentActivity: exp.Add(-30 * time.Minute)},
		8: {Conv: c2, LastAgentActivity: exp.Add(-30 * time.Minute)},
	}}
	g := &fakeGraph{extendErr: errors.New("2500")}
	now := exp.Add(-20 * time.Minute)
	tm, _ := newTimers(store, g, &now, 0)
	if err := tm.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(conversation.ExtendRetry)
	if err := tm.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(g.extends) != 1 {
		t.Errorf("extend tried %d times after a 2500", len(g.extends))
	}
}

// Where the Page's mode has no extend (a 2500 answered it), a thread in
// the extend lead falls through to the idle return instead of waiting on
// an extend that will never be made.
func TestTimersIdleReturnWhereNoExtend(t *testing.T) {
	exp := t0.Add(conversation.PlatformIdle)
	c8 := openConv()
	c8.ID = 8
	store := &fakeTimerStore{convs: map[int64]*baton.TimerState{
		// Teaches the timers that the Page has no extend.
		7: {Conv: openConv(), LastAgentActivity: exp.Add(-30 * time.Minute)},
		// Worked 40 min before expiry; with a 30 min idle return it is due
		// 10 min before expiry, inside the extend lead.
		8: {Conv: c8, LastAgentActivity: exp.Add(-40 * time.Minute)},
	}}
	g := &fakeGraph{extendErr: errors.New("2500")}
	now := exp.Add(-29 * time.Minute)
	tm, _ := newTimers(store, g, &now, 30*time.Minute)
	if err := tm.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.enqueued = nil
	now = exp.Add(-5 * time.Minute)
	if err := tm.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var returned []int64
	for id, s := range store.convs {
		if s.Conv.Closing && s.Conv.DoneOutcome == "idle" {
			returned = append(returned, id)
		}
	}
	if len(store.enqueued) == 0 || !slices.Contains(returned, 8) {
		t.Errorf("5 min before expiry, 35 min after the last reply: enqueued %d, returned %v; want conversation 8 handed back", len(store.enqueued), returned)
	}
}
