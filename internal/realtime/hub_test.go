package realtime

import (
	"testing"
)

func dropped(s *Subscriber) bool {
	select {
	case <-s.Dropped:
		return true
	default:
		return false
	}
}

// A subscriber that never reads is dropped once its buffer is full; the
// others keep every change, in order, and are not held up.
func TestWSSlowSubscriberDropped(t *testing.T) {
	h := NewHub()
	stuck := h.Subscribe(1)
	fast := h.Subscribe(2)
	var got []int64
	for i := int64(1); i <= subscriberBuffer+10; i++ {
		h.Publish(Change{ConversationID: 7, Seq: i})
		// The healthy one reads as it goes.
		for len(fast.C) > 0 {
			got = append(got, (<-fast.C).Seq)
		}
	}
	if !dropped(stuck) {
		t.Fatal("a subscriber that never reads was not dropped")
	}
	if dropped(fast) {
		t.Fatal("a reading subscriber was dropped")
	}
	if len(got) != subscriberBuffer+10 {
		t.Fatalf("the healthy subscriber got %d changes, want %d", len(got), subscriberBuffer+10)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("change %d has seq %d: out of order", i, s)
		}
	}
	if n := h.Count(); n != 1 {
		t.Fatalf("Count = %d after the drop, want 1", n)
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
			a1, a2, b := h.Subscribe(1), h.Subscribe(1), h.Subscribe(2)
			tc.drop(h)
			if !dropped(a1) || !dropped(a2) {
				t.Error("the user's subscriptions survived")
			}
			if dropped(b) {
				t.Error("another user's subscription was dropped")
			}
			if len(relayed) != len(tc.wantRelay) || (len(relayed) == 1 && relayed[0] != tc.wantRelay[0]) {
				t.Errorf("relayed %v, want %v", relayed, tc.wantRelay)
			}
		})
	}
}

// After shutdown began, a late subscriber is dropped at once rather than
// kept open on an instance that is going away.
func TestWSDropAllRefusesLateSubscribers(t *testing.T) {
	h := NewHub()
	early := h.Subscribe(1)
	h.DropAll()
	late := h.Subscribe(1)
	if !dropped(early) || !dropped(late) {
		t.Fatalf("dropped: early %v, late %v; want both", dropped(early), dropped(late))
	}
	early.Close() // idempotent
	if h.Count() != 0 {
		t.Fatalf("Count = %d after DropAll", h.Count())
	}
}
