// Package realtime fans out change notifications to the browsers of this
// instance. Notifications are small (which conversation changed, its new
// sequence number) and carry no bodies: a browser that hears one re-reads
// what it shows from the database, rendered by the same templates as the
// page. That makes delivery idempotent: a notification lost with a dropped
// connection, or heard twice, costs a re-read, never a missing or doubled
// message. Between instances notifications travel through PostgreSQL
// LISTEN/NOTIFY (see postgres.Notifier); every instance, the publisher
// included, hears them from there, so there is one path to test.
package realtime

import (
	"sync"
)

// Change says that a conversation changed; Seq is its sequence number
// after the change (0 when unknown). Resync (with no conversation) tells
// every subscriber that notifications may have been lost: re-read all.
type Change struct {
	ConversationID int64 `json:"conversation_id,omitempty"`
	Seq            int64 `json:"seq,omitempty"`
	Resync         bool  `json:"resync,omitempty"`
}

// Subscriber receives changes. C is buffered; when it is full the
// subscriber is too slow and is dropped (Dropped closes), so one stuck
// browser never blocks the others. A dropped browser reconnects and
// re-reads.
type Subscriber struct {
	C       chan Change
	Dropped chan struct{}
	hub     *Hub
	once    sync.Once
	// UserID lets the hub end every subscription of a user (sign out
	// everywhere, disabled account).
	UserID int64
}

// Close unsubscribes. It is idempotent, so the socket's own exit and a
// hub-wide drop may both call it.
func (s *Subscriber) Close() {
	s.hub.remove(s)
}

// Hub is the set of local subscribers.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscriber]struct{}
	// closed: DropAll ran (shutdown); a socket accepted afterwards must
	// not outlive the instance, so it is dropped at once.
	closed bool
	// relay tells the other instances that a user's sessions ended, so
	// that their sockets of that user close too (see SetRelay).
	relay func(userID int64)
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[*Subscriber]struct{}{}} }

// SetRelay installs f to be called by DropUser after the local sockets
// are gone. Sessions live in the shared database, so "sign out everywhere"
// on one instance must reach the sockets every instance holds; f
// typically sends a NOTIFY that the others answer with DropUserLocal. It
// must not block.
func (h *Hub) SetRelay(f func(userID int64)) {
	h.mu.Lock()
	h.relay = f
	h.mu.Unlock()
}

// subscriberBuffer absorbs a few notifications in a row without dropping
// a healthy browser. It is per socket, so it is kept small (each slot is
// 24 bytes of every idle socket's memory); a burst that would fill it
// arrives as one Resync instead (see BurstLimit).
const subscriberBuffer = 64

// BurstLimit is the most changes one notification should publish one by
// one; a larger batch (a group commit touching many conversations) is
// published as a single Resync, which makes browsers re-read what they
// show, as that many changes would anyway.
const BurstLimit = 16

// Subscribe adds a subscriber for user userID. After DropAll the
// subscriber comes back already dropped.
func (h *Hub) Subscribe(userID int64) *Subscriber {
	s := &Subscriber{C: make(chan Change, subscriberBuffer), Dropped: make(chan struct{}), hub: h, UserID: userID}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.subs[s] = struct{}{}
	}
	h.mu.Unlock()
	if closed {
		s.once.Do(func() { close(s.Dropped) })
	}
	return s
}

func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.once.Do(func() { close(s.Dropped) })
}

// Publish delivers c to every subscriber without blocking: a subscriber
// whose buffer is full is dropped instead of waited for.
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	var slow []*Subscriber
	for s := range h.subs {
		select {
		case s.C <- c:
		default:
			slow = append(slow, s)
		}
	}
	h.mu.Unlock()
	for _, s := range slow {
		s.Close()
	}
}

// DropUser ends every subscription of a user on this instance and, through
// the relay, on the others.
func (h *Hub) DropUser(userID int64) {
	h.DropUserLocal(userID)
	h.mu.Lock()
	relay := h.relay
	h.mu.Unlock()
	if relay != nil {
		relay(userID)
	}
}

// DropUserLocal ends every subscription of a user on this instance only:
// what an instance does when another one relays a DropUser.
func (h *Hub) DropUserLocal(userID int64) {
	h.mu.Lock()
	var gone []*Subscriber
	for s := range h.subs {
		if s.UserID == userID {
			gone = append(gone, s)
		}
	}
	h.mu.Unlock()
	for _, s := range gone {
		s.Close()
	}
}

// Count is the number of subscribers (for metrics).
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// DropAll ends every subscription and refuses new ones (shutdown):
// browsers reconnect elsewhere.
func (h *Hub) DropAll() {
	h.mu.Lock()
	h.closed = true
	all := make([]*Subscriber, 0, len(h.subs))
	for s := range h.subs {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
}
