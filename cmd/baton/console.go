package main

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-chat/baton/internal/apiwebhook"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/internal/graph"
	"github.com/baton-chat/baton/internal/metrics"
	"github.com/baton-chat/baton/internal/outbox"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/internal/realtime"
	"github.com/baton-chat/baton/web"
)

// consoleParts are the console's background workers and live updates.
type consoleParts struct {
	web      web.Console
	hub      *realtime.Hub
	changes  chan map[int64]int64
	profWake chan struct{}
	// timers settles owner doubts and runs the thread clocks (idle
	// auto-return, expiry check, extend); timerWake starts a scan at once.
	timers    *conversation.Timers
	timerWake chan struct{}
	// team auto-assigns unassigned conversations; woken by ingest.
	team   *conversation.Team
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// overflow: a change could not be queued; every browser must re-read.
	overflow atomic.Bool
	// listening says whether this instance hears the other instances.
	listening *postgres.Listening
}

// settingsGraph is a Graph API client that reads the Page token and app
// secret from the current Page settings on every call, so that an admin's
// change (or `baton demo` registering anew) applies without a restart.
type settingsGraph struct {
	settings baton.SettingsService
	baseURL  string
	log      *slog.Logger
	metrics  *metrics.Metrics
}

// call runs fn with a client for the current settings, timing it.
func (g *settingsGraph) call(ctx context.Context, name string, fn func(c *graph.Client) error) error {
	s, err := g.settings.PageSettings(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	err = fn(&graph.Client{BaseURL: g.baseURL, PageToken: s.PageToken, AppSecret: s.AppSecret, Logger: g.log})
	g.metrics.ObserveGraph(name, time.Since(start), err)
	return err
}

func (g *settingsGraph) Send(ctx context.Context, r graph.SendRequest) (res graph.SendResult, err error) {
	err = g.call(ctx, "send", func(c *graph.Client) (err error) { res, err = c.Send(ctx, r); return err })
	return res, err
}

func (g *settingsGraph) SenderAction(ctx context.Context, psid, action string) error {
	return g.call(ctx, "sender_action", func(c *graph.Client) error { return c.SenderAction(ctx, psid, action) })
}

func (g *settingsGraph) PassThreadControl(ctx context.Context, psid, target, metadata string) error {
	return g.call(ctx, "pass_thread_control", func(c *graph.Client) error { return c.PassThreadControl(ctx, psid, target, metadata) })
}

func (g *settingsGraph) RequestThreadControl(ctx context.Context, psid, metadata string) error {
	return g.call(ctx, "request_thread_control", func(c *graph.Client) error { return c.RequestThreadControl(ctx, psid, metadata) })
}

// ThreadOwner implements conversation.OwnerSource: a read-only call made
// directly, not through the outbox.
func (g *settingsGraph) ThreadOwner(ctx context.Context, psid string) (conversation.Owner, error) {
	var o graph.Owner
	err := g.call(ctx, "thread_owner", func(c *graph.Client) (err error) { o, err = c.ThreadOwner(ctx, psid); return err })
	return conversation.Owner{AppID: o.AppID, Idle: o.Idle, Hidden: o.Hidden}, err
}

// ExtendThreadControl implements conversation.Extender.
func (g *settingsGraph) ExtendThreadControl(ctx context.Context, psid string, d time.Duration) error {
	return g.call(ctx, "extend_thread_control", func(c *graph.Client) error { return c.ExtendThreadControl(ctx, psid, d) })
}

// extendUnsupported: classic mode has no extend_thread_control and answers
// 2500 "Unknown path components" (PROTOCOL.md §8.6).
func extendUnsupported(err error) bool {
	var ge *graph.Error
	return errors.As(err, &ge) && ge.Code == 2500
}

// Profile implements conversation.ProfileSource.
func (g *settingsGraph) Profile(ctx context.Context, psid string) (first, last, pic string, notFound bool, err error) {
	var p graph.Profile
	err = g.call(ctx, "user_profile", func(c *graph.Client) (err error) { p, err = c.UserProfile(ctx, psid); return err })
	if err != nil {
		return "", "", "", graph.IsNoProfile(err), err
	}
	return p.FirstName, p.LastName, p.ProfilePic, false, nil
}

// startConsole starts the outbox worker, the profile fetcher and the
// LISTEN/NOTIFY bridge that feeds this instance's websockets.
func startConsole(ctx context.Context, c Config, db *postgres.DB, dsn string, settings baton.SettingsService, met *metrics.Metrics, log *slog.Logger) (*consoleParts, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cp := &consoleParts{hub: realtime.NewHub(), changes: make(chan map[int64]int64, 1024), profWake: make(chan struct{}, 1), cancel: cancel}
	humanAgent := func() bool {
		s, err := settings.PageSettings(context.Background())
		return err == nil && s.HumanAgent
	}
	pageID := c.PageID
	page := func(ctx context.Context) (*baton.Page, error) { return db.Page(ctx, pageID) }
	g := &settingsGraph{settings: settings, baseURL: c.GraphAPIURL, log: log.With("component", "graph"), metrics: met}
	svc := &conversation.Service{Store: db, Page: page, HumanAgent: humanAgent, AgentsMayRequest: c.AgentsMayRequest,
		RequestTimeout: c.RequestTimeout, UnassignOnDone: c.UnassignOnDone}
	svc.Now = c.clock()
	cp.team = &conversation.Team{Store: db, Team: db, Audit: db, Cap: c.AgentCap, Wake: make(chan struct{}, 1), Now: c.clock(),
		Logger: log.With("component", "assign"), OnChange: cp.announce}
	cp.web = web.Console{Store: db, Service: svc, Page: page, Hub: cp.hub, Team: cp.team, TeamStore: db}
	cp.web.Presence = db
	cp.web.Announce = cp.announce

	outboxWake := make(chan struct{}, 1)
	listening, err := postgres.Listen(ctx, dsn, log.With("component", "listen"),
		[]string{postgres.ChangesChannel, postgres.OutboxChannel, postgres.SessionsChannel},
		func(channel, payload string) {
			switch channel {
			case postgres.OutboxChannel:
				wake(outboxWake)
				return
			case postgres.SessionsChannel:
				if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
					cp.hub.DropUserLocal(id)
				}
				return
			}
			changes := postgres.ParseChanges(payload)
			if len(changes) > realtime.BurstLimit {
				cp.hub.Publish(realtime.Change{Resync: true})
				return
			}
			for id, seq := range changes {
				if id == postgres.ResyncAll {
					cp.hub.Publish(realtime.Change{Resync: true})
					continue
				}
				cp.hub.Publish(realtime.Change{ConversationID: id, Seq: seq})
			}
		},
		func() {
			// Notifications sent while the connection was down are lost:
			// every browser re-reads, and the workers look again. This
			// runs once LISTEN is in force again, so whatever committed
			// before it is in the re-read and whatever commits after it
			// is notified.
			cp.hub.Publish(realtime.Change{Resync: true})
			wake(outboxWake)
			wake(cp.profWake)
		})
	if err != nil {
		cancel()
		return nil, err
	}
	cp.listening = listening

	// Sign out everywhere on this instance reaches the sockets of every
	// instance: sessions are shared, so must their ending be. The NOTIFY
	// is sent off the request's path (DropUser must not block).
	cp.hub.SetRelay(func(userID int64) {
		cp.wg.Add(1)
		go func() {
			defer cp.wg.Done()
			nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := db.NotifySessionsEnded(nctx, userID); err != nil && ctx.Err() == nil {
				log.Warn("relaying sign-out to the other instances failed; their sockets close at the next reconnect", "user_id", userID, "err", err)
			}
		}()
	})
	worker := &outbox.Worker{Store: db, Graph: g, HumanAgent: humanAgent, Now: c.clock(), Logger: log.With("component", "outbox"),
		Wake: outboxWake, OnChange: cp.announce, Observe: met.ObserveOutbox}
	fetcher := &conversation.ProfileFetcher{Store: db, Source: g, Logger: log.With("component", "profiles"),
		Wake: cp.profWake, OnChange: cp.announce}
	cp.timerWake = make(chan struct{}, 1)
	cp.timers = &conversation.Timers{Store: db, Console: db, Page: page, Owners: g, Extender: g,
		Unsupported: extendUnsupported, Audit: db, IdleReturn: c.IdleReturn, Wake: cp.timerWake, Now: c.clock(),
		Logger: log.With("component", "timers"), OnChange: cp.announce}
	cp.web.IdleWarning = cp.timers.Warning
	// Outgoing webhooks: read from durable rows, so nothing here calls it.
	hooks := &apiwebhook.Worker{Store: db, Page: page, Now: c.clock(), Logger: log.With("component", "webhooks")}
	cp.wg.Add(6)
	go func() { defer cp.wg.Done(); hooks.Run(ctx) }()
	go func() { defer cp.wg.Done(); cp.team.Run(ctx) }()
	go func() { defer cp.wg.Done(); cp.timers.Run(ctx) }()
	go func() { defer cp.wg.Done(); worker.Run(ctx) }()
	go func() { defer cp.wg.Done(); fetcher.Run(ctx) }()
	go func() { defer cp.wg.Done(); cp.notifyLoop(ctx, db, log) }()
	return cp, nil
}

// Changed queues change notifications; it never blocks (ingest's writers
// call it after each commit).
func (cp *consoleParts) Changed(m map[int64]int64) {
	select {
	case cp.changes <- m:
	default:
		// Full: the loop is behind; it sends a resync instead.
		cp.overflow.Store(true)
		select {
		case cp.changes <- nil:
		default:
		}
	}
}

// IngestCommitted is the ingest hook: changed conversations are announced
// and the profile fetcher looks for new people.
func (cp *consoleParts) IngestCommitted(changed []*baton.Conversation) {
	m := make(map[int64]int64, len(changed))
	unassigned, unsure := false, false
	for _, c := range changed {
		m[c.ID] = c.Seq
		unassigned = unassigned || (c.Status == baton.StatusOpen && c.AssignedUserID == nil)
		unsure = unsure || c.OwnerUnsure
	}
	cp.Changed(m)
	wake(cp.profWake)
	if unassigned {
		cp.team.WakeUp()
	}
	if unsure {
		cp.WakeTimers()
	}
}

// announce tells every browser that one conversation changed, its new
// sequence number unknown (the workers' changes).
func (cp *consoleParts) announce(id int64) { cp.Changed(map[int64]int64{id: 0}) }

// WakeTimers starts a scan of the thread timers now rather than at the
// next tick: an event put an owner in doubt (or a test moved the clock).
func (cp *consoleParts) WakeTimers() { wake(cp.timerWake) }

// wake signals a worker's wake-up channel without blocking: one pending
// wake-up is as good as many.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// notifyLoop coalesces changes and sends them with NOTIFY, so that a burst
// of commits costs one notification, and ingest never waits for it (the
// NOTIFY is its own statement after the commit, not part of the ingest
// transaction: NOTIFY inside a transaction takes a database-wide lock at
// commit, which would serialize every ingest commit).
//
// A NOTIFY that fails is not given up: the changes stay pending and the
// loop tries again after a pause, announcing a resync to every instance
// when it gets through, since some browsers may have re-read in between
// and others not.
func (cp *consoleParts) notifyLoop(ctx context.Context, db *postgres.DB, log *slog.Logger) {
	var pending map[int64]int64
	failed := false
	retry := notifyRetryMin
	for {
		if pending == nil {
			select {
			case <-ctx.Done():
				return
			case m := <-cp.changes:
				pending = map[int64]int64{}
				merge(pending, m)
			}
		}
	drain:
		for {
			select {
			case m := <-cp.changes:
				merge(pending, m)
			default:
				break drain
			}
		}
		if cp.overflow.Swap(false) || failed {
			// Everything is re-read: the single resync says it all.
			pending = map[int64]int64{postgres.ResyncAll: 0}
		}
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.NotifyChanges(nctx, pending)
		cancel()
		if err == nil {
			pending, failed, retry = nil, false, notifyRetryMin
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failed {
			log.Warn("notify failed; retrying, then every browser re-reads", "err", err)
			// This instance's browsers need not wait for the database.
			cp.hub.Publish(realtime.Change{Resync: true})
		}
		failed = true
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		retry = min(2*retry, notifyRetryMax)
	}
}

// Pauses between NOTIFY attempts while the database refuses them.
const (
	notifyRetryMin = 100 * time.Millisecond
	notifyRetryMax = 5 * time.Second
)

func merge(dst, src map[int64]int64) {
	for k, v := range src {
		if v > dst[k] || v == 0 {
			dst[k] = max(v, dst[k])
		}
	}
}

// Stop ends the workers and closes every websocket with going-away, so
// browsers reconnect to another instance.
func (cp *consoleParts) Stop() {
	cp.cancel()
	cp.wg.Wait()
	cp.hub.DropAll()
}
