package realtime

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond; the deadline only stops a broken run from hanging.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder is a subscriber's socket: it keeps every delivery and every
// drop, and fails the test if two deliveries overlap.
type recorder struct {
	t        *testing.T
	mu       sync.Mutex
	batches  [][]Change
	drops    int
	inFlight atomic.Int32
	// hold, when set, is waited on inside each delivery; entered hears
	// that a delivery began.
	hold    chan struct{}
	entered chan struct{}
	fail    error
}

func (r *recorder) deliver(cs []Change) error {
	if r.inFlight.Add(1) > 1 {
		r.t.Error("two deliveries to one subscriber at once")
	}
	defer r.inFlight.Add(-1)
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(cs))
	return r.fail
}

func (r *recorder) dropped() {
	r.mu.Lock()
	r.drops++
	r.mu.Unlock()
}

func (r *recorder) got() (batches [][]Change, drops int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), r.drops
}

// all is every change delivered, in order.
func (r *recorder) all() []Change {
	b, _ := r.got()
	return slices.Concat(b...)
}

func start(t *testing.T, h *Hub, userID int64) (*Subscriber, *recorder) {
	s := h.Subscribe(userID)
	r := &recorder{t: t}
	s.Start(r.deliver, r.dropped)
	return s, r
}

// What a subscriber is sent after changes piled up while it was busy: its
// newest state, bounded, never the backlog.
func TestWSCoalescing(t *testing.T) {
	ch := func(id, seq int64) Change { return Change{ConversationID: id, Seq: seq} }
	resync := Change{Resync: true}
	many := func(n int) (in, out []Change) {
		for i := range int64(n) {
			in = append(in, ch(100+i, 1))
		}
		if n > BurstLimit {
			return in, []Change{resync}
		}
		return in, in
	}
	burstIn, burstOut := many(BurstLimit)
	overIn, overOut := many(BurstLimit + 1)
	tests := []struct {
		name     string
		in, want []Change
	}{
		{"one change", []Change{ch(7, 1)}, []Change{ch(7, 1)}},
		{"one conversation: the highest seq", []Change{ch(7, 1), ch(7, 3), ch(7, 2)}, []Change{ch(7, 3)}},
		{"an unknown seq is kept beside the highest", []Change{ch(7, 2), ch(7, 0), ch(7, 5)}, []Change{ch(7, 0), ch(7, 5)}},
		{"only unknown seqs", []Change{ch(7, 0), ch(7, 0)}, []Change{ch(7, 0)}},
		{"conversations in the order first announced", []Change{ch(8, 1), ch(7, 1), ch(8, 2)}, []Change{ch(8, 2), ch(7, 1)}},
		{"a resync covers what came before", []Change{ch(7, 1), resync}, []Change{resync}},
		{"a resync covers what comes after", []Change{resync, ch(7, 1)}, []Change{resync}},
		{"BurstLimit conversations one by one", burstIn, burstOut},
		{"more conversations than BurstLimit: a resync", overIn, overOut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Subscriber{}
			for _, c := range tc.in {
				s.merge(c)
			}
			_, got := s.take()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("delivered %v, want %v", got, tc.want)
			}
			if _, again := s.take(); len(again) != 0 {
				t.Fatalf("delivered %v a second time", again)
			}
		})
	}
}

// A subscriber stuck in a write holds up no one: the others hear every
// change, in order, while it waits; when it is free it is sent the newest
// state, once, not the backlog.
func TestWSStuckSubscriberHoldsUpNoOne(t *testing.T) {
	h := NewHub()
	stuck := &recorder{t: t, hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	h.Subscribe(1).Start(stuck.deliver, stuck.dropped)
	_, fast := start(t, h, 2)

	h.Publish(Change{ConversationID: 7, Seq: 1})
	<-stuck.entered // the stuck one is in its first write
	const n = 200
	for i := int64(2); i <= n; i++ {
		h.Publish(Change{ConversationID: 7, Seq: i})
	}
	waitUntil(t, "the fast subscriber's last change", func() bool {
		all := fast.all()
		return len(all) > 0 && all[len(all)-1].Seq == n
	})
	var prev int64
	for _, c := range fast.all() {
		if c.Seq <= prev {
			t.Fatalf("the fast subscriber heard seq %d after %d", c.Seq, prev)
		}
		prev = c.Seq
	}

	close(stuck.hold)
	waitUntil(t, "the stuck subscriber's second delivery", func() bool { b, _ := stuck.got(); return len(b) == 2 })
	b, _ := stuck.got()
	want := [][]Change{{{ConversationID: 7, Seq: 1}}, {{ConversationID: 7, Seq: n}}}
	if !slices.EqualFunc(b, want, slices.Equal) {
		t.Fatalf("the stuck subscriber got %v, want %v", b, want)
	}
	waitUntil(t, "the writers to finish", func() bool {
		h.qmu.Lock()
		defer h.qmu.Unlock()
		return h.running == 0
	})
}

// Changes published between Subscribe and Start (while the upgrade
// answers and the greeting is written) are delivered after Start.
func TestWSChangesBeforeStartKept(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(1)
	h.Publish(Change{ConversationID: 7, Seq: 1})
	r := &recorder{t: t}
	s.Start(r.deliver, r.dropped)
	waitUntil(t, "the delivery", func() bool { return len(r.all()) == 1 })
	if got := r.all(); got[0] != (Change{ConversationID: 7, Seq: 1}) {
		t.Fatalf("delivered %v", got)
	}
}

// A failed write ends the subscription (the socket is broken); that is not
// a drop, so the socket is not told to go away.
func TestWSDeliverErrorUnsubscribes(t *testing.T) {
	h := NewHub()
	_, r := start(t, h, 1)
	r.fail = errors.New("broken pipe")
	h.Publish(Change{ConversationID: 7, Seq: 1})
	waitUntil(t, "unsubscribed", func() bool { return h.Count() == 0 })
	h.Publish(Change{ConversationID: 7, Seq: 2})
	waitUntil(t, "the writers to finish", func() bool {
		h.qmu.Lock()
		defer h.qmu.Unlock()
		return h.running == 0
	})
	if b, drops := r.got(); len(b) != 1 || drops != 0 {
		t.Fatalf("%d deliveries and %d drops, want 1 and 0", len(b), drops)
	}
}

func TestWSDropUserAndRelay(t *testing.T) {
	tests := []struct {
		name      string
		drop      func(h *Hub)
		wantRelay []int64
	}{
		{"DropUser relays to the other instances", func(h *Hub) { h.DropUser(1) }, []int64{1}},
		{"DropUserLocal does not relay back", func(h *Hub) { h.DropUserLocal(1) }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub()
			var relayed []int64
			h.SetRelay(func(id int64) { relayed = append(relayed, id) })
			_, a1 := start(t, h, 1)
			_, a2 := start(t, h, 1)
			b, rb := start(t, h, 2)
			tc.drop(h)
			for _, r := range []*recorder{a1, a2} {
				if _, drops := r.got(); drops != 1 {
					t.Errorf("a subscription of the user was dropped %d times, want once", drops)
				}
			}
			if _, drops := rb.got(); drops != 0 {
				t.Error("another user's subscription was dropped")
			}
			if h.Count() != 1 {
				t.Errorf("Count = %d, want 1", h.Count())
			}
			if !slices.Equal(relayed, tc.wantRelay) {
				t.Errorf("relayed %v, want %v", relayed, tc.wantRelay)
			}
			b.Close()
			if _, drops := rb.got(); drops != 0 {
				t.Error("closing a subscription called its drop")
			}
		})
	}
}

// After shutdown began, a late subscriber is dropped at once rather than
// kept open on an instance that is going away.
func TestWSDropAllRefusesLateSubscribers(t *testing.T) {
	h := NewHub()
	early, re := start(t, h, 1)
	h.DropAll()
	_, rl := start(t, h, 1)
	_, de := re.got()
	_, dl := rl.got()
	if de != 1 || dl != 1 {
		t.Fatalf("drops: early %d, late %d; want one each", de, dl)
	}
	early.Close() // idempotent
	h.Publish(Change{ConversationID: 7, Seq: 1})
	if h.Count() != 0 {
		t.Fatalf("Count = %d after DropAll", h.Count())
	}
	if b, _ := re.got(); len(b) != 0 {
		t.Fatalf("a dropped subscriber was delivered %v", b)
	}
}
