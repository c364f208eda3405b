// Package realtime fans out change notifications to the browsers of this
// instance. Notifications are small (which conversation changed, its new
// sequence number) and carry no bodies: a browser that hears one re-reads
// what it shows from the database, rendered by the same templates as the
// page. That makes delivery idempotent: a notification lost with a dropped
// connection, or heard twice, costs a re-read, never a missing or doubled
// message. Between instances notifications travel through PostgreSQL
// LISTEN/NOTIFY (see postgres.Notifier); every instance, the publisher
// included, hears them from there, so there is one path to test.
//
// An instance holds thousands of idle sockets, so a subscriber costs no
// goroutine and no queue here: what it has not been sent yet is coalesced
// into a small pending set (see Subscriber), and a few writer goroutines
// shared by every subscriber deliver it (see Hub).
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

// BurstLimit is the most changes one notification should publish one by
// one; a larger batch (a group commit touching many conversations) is
// published as a single Resync, which makes browsers re-read what they
// show, as that many changes would anyway. It also bounds what one
// subscriber keeps pending: more conversations than this become a Resync.
const BurstLimit = 16

// defaultWriters is how many goroutines write to subscribers. A write to a
// healthy socket is one short syscall, so a handful keep up with any
// broadcast the two cores can produce; more than one so that a socket stuck
// until its write deadline holds up only its own writer, not the rest.
const defaultWriters = 8

// Deliver sends changes to one subscriber (a socket write). The hub calls
// it from its writer pool, never twice at once for one subscriber, with
// what piled up since the previous call. It must give up by its own
// deadline; an error ends the subscription (the socket is broken).
type Deliver func([]Change) error

// Subscriber is one browser's subscription. It holds no goroutine and no
// queue: changes published while one is being written are merged into a
// pending set bounded by BurstLimit, so a slow socket is sent its newest
// state once it is free, never a backlog.
type Subscriber struct {
	// UserID lets the hub end every subscription of a user (sign out
	// everywhere, disabled account).
	UserID int64
	hub    *Hub

	mu      sync.Mutex
	pending []pendingChange
	resync  bool
	// started: Start ran, deliveries may begin. queued: in the hub's
	// queue. writing: a writer is delivering to it now.
	started, queued, writing bool
	// gone: unsubscribed or dropped; nothing more is delivered.
	// dropped: by the hub, so onDrop runs (once, when started).
	gone, dropped bool
	deliver       Deliver
	onDrop        func()
}

// pendingChange is what a subscriber has yet to hear about one
// conversation: the highest sequence number announced, and whether a
// change of unknown number (seq 0) was announced too. Both are sent, so a
// browser acts exactly as if it had heard every change one by one: it
// re-reads on a seq-0 change and on a seq above the one it shows.
type pendingChange struct {
	id, seq int64
	unknown bool
}

// Close unsubscribes: the socket ended on its own. It is idempotent, so
// the socket's own exit and a hub-wide drop may both call it.
func (s *Subscriber) Close() {
	s.hub.remove(s, false)
}

// Start begins delivery with the changes published since Subscribe. The
// caller writes whatever must come first (a greeting) before calling it.
// onDrop runs once if the hub drops the subscriber (sign-out everywhere,
// shutdown): the socket should close with going-away, and the browser
// reconnects and re-reads. It may run while deliver runs, and at once,
// before Start returns, if the hub dropped the subscriber already. It
// must not block.
func (s *Subscriber) Start(deliver Deliver, onDrop func()) {
	s.mu.Lock()
	if s.gone {
		dropped := s.dropped
		s.mu.Unlock()
		if dropped {
			onDrop()
		}
		return
	}
	s.deliver, s.onDrop, s.started = deliver, onDrop, true
	queue := s.wantsWriterLocked()
	s.mu.Unlock()
	if queue {
		s.hub.enqueue(s)
	}
}

// add merges c into what s has pending and reports whether s must now be
// queued for a writer.
func (s *Subscriber) add(c Change) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return false
	}
	s.merge(c)
	return s.wantsWriterLocked()
}

// merge folds c into the pending set. A Resync covers every change: the
// browser re-reads everything when it hears it, which is after whatever
// was merged into it committed.
func (s *Subscriber) merge(c Change) {
	if s.resync {
		return
	}
	if c.Resync {
		s.resync, s.pending = true, nil
		return
	}
	for i := range s.pending {
		p := &s.pending[i]
		if p.id == c.ConversationID {
			if c.Seq == 0 {
				p.unknown = true
			} else {
				p.seq = max(p.seq, c.Seq)
			}
			return
		}
	}
	if len(s.pending) == BurstLimit {
		s.resync, s.pending = true, nil
		return
	}
	s.pending = append(s.pending, pendingChange{id: c.ConversationID, seq: c.Seq, unknown: c.Seq == 0})
}

// wantsWriterLocked marks s queued if it has something to send and no
// writer has it yet.
func (s *Subscriber) wantsWriterLocked() bool {
	if !s.started || s.gone || s.queued || s.writing || (!s.resync && len(s.pending) == 0) {
		return false
	}
	s.queued = true
	return true
}

// take hands a writer what s has pending, in the order first announced.
func (s *Subscriber) take() (Deliver, []Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = false
	if s.gone {
		return nil, nil
	}
	var out []Change
	if s.resync {
		out = []Change{{Resync: true}}
	} else {
		out = make([]Change, 0, len(s.pending))
		for _, p := range s.pending {
			if p.unknown {
				out = append(out, Change{ConversationID: p.id})
			}
			if p.seq > 0 {
				out = append(out, Change{ConversationID: p.id, Seq: p.seq})
			}
		}
	}
	s.pending, s.resync, s.writing = nil, false, true
	return s.deliver, out
}

// written ends a delivery and reports whether s has more to send.
func (s *Subscriber) written() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing = false
	return s.wantsWriterLocked()
}

// Hub is the set of local subscribers and the writers that deliver to
// them. Its queue holds each subscriber at most once (a queued subscriber
// gets later changes merged into its pending set), so it never grows past
// the number of subscribers and Publish never blocks.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscriber]struct{}
	// closed: DropAll ran (shutdown); a socket accepted afterwards must
	// not outlive the instance, so it is dropped at once.
	closed bool
	// relay tells the other instances that a user's sessions ended, so
	// that their sockets of that user close too (see SetRelay).
	relay func(userID int64)

	// The writer pool: writers goroutines at most, started when there is
	// work and gone when the queue is empty, so an idle hub holds none.
	qmu     sync.Mutex
	queue   []*Subscriber
	head    int
	running int
	writers int
}

// NewHub returns an empty hub with defaultWriters writers.
func NewHub() *Hub {
	return &Hub{subs: map[*Subscriber]struct{}{}, writers: defaultWriters}
}

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

// Subscribe adds a subscriber for user userID. Changes published from now
// on are kept for it (coalesced) until Start, so a socket subscribed
// before its upgrade answers misses nothing that commits after the browser
// sees it open. After DropAll the subscriber comes back already dropped.
func (h *Hub) Subscribe(userID int64) *Subscriber {
	s := &Subscriber{hub: h, UserID: userID}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.subs[s] = struct{}{}
	}
	h.mu.Unlock()
	if closed {
		s.gone, s.dropped = true, true
	}
	return s
}

// remove takes s out of the hub; dropped says the hub ended it, so its
// socket is told (onDrop).
func (h *Hub) remove(s *Subscriber, dropped bool) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return
	}
	s.gone, s.dropped, s.pending = true, dropped, nil
	onDrop := s.onDrop
	s.mu.Unlock()
	if dropped && onDrop != nil {
		onDrop()
	}
}

// Publish hands c to every subscriber without blocking: each merges it
// into what it has pending and, unless a writer has it already, joins the
// writers' queue.
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.add(c) {
			h.enqueue(s)
		}
	}
}

// enqueue puts s, marked queued by its caller, at the back of the queue
// and starts a writer if fewer than h.writers run.
func (h *Hub) enqueue(s *Subscriber) {
	h.qmu.Lock()
	if h.head > 0 && len(h.queue) == cap(h.queue) {
		// Reuse the slots already handed out rather than grow.
		n := copy(h.queue, h.queue[h.head:])
		clear(h.queue[n:])
		h.queue, h.head = h.queue[:n], 0
	}
	h.queue = append(h.queue, s)
	spawn := h.running < h.writers
	if spawn {
		h.running++
	}
	h.qmu.Unlock()
	if spawn {
		go h.write()
	}
}

// write is one writer: it delivers to queued subscribers until the queue
// is empty, then exits.
func (h *Hub) write() {
	for {
		h.qmu.Lock()
		if h.head == len(h.queue) {
			h.queue, h.head = h.queue[:0], 0
			h.running--
			h.qmu.Unlock()
			return
		}
		s := h.queue[h.head]
		h.queue[h.head] = nil
		h.head++
		h.qmu.Unlock()

		deliver, changes := s.take()
		if deliver == nil {
			continue // gone while queued
		}
		if err := deliver(changes); err != nil {
			s.Close()
			continue
		}
		if s.written() {
			h.enqueue(s)
		}
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
		h.remove(s, true)
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
		h.remove(s, true)
	}
}
