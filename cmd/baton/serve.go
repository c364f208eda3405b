package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/baton-chat/baton/internal/metrics"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/internal/webhook"
	"github.com/baton-chat/baton/web"
)

// runServe runs the console and webhook receiver until ctx ends.
func runServe(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	c, err := loadConfig(env, true)
	if err != nil {
		fmt.Fprintf(stderr, "baton serve: configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(c, stderr)
	tuneGC(env)
	inst, err := startInstance(ctx, c, log)
	if err != nil {
		fmt.Fprintf(stderr, "baton serve: %v\n", err)
		return 1
	}
	log.Info("baton listening", "addr", inst.Addr())
	<-ctx.Done()
	if err := inst.Shutdown(); err != nil {
		fmt.Fprintf(stderr, "baton serve: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// tuneGC makes the collector run less often unless GOGC says otherwise:
// ingest allocates per request, and at the default the collector took
// 10–14 % of the CPU under load for a heap of a few MB (baton bench
// ingest; +8–45 % throughput at GOGC=400 in paired runs).
func tuneGC(env Env) {
	if env["GOGC"] == "" {
		debug.SetGCPercent(400)
	}
}

// instance is one running Baton: HTTP server, ingest writers, database.
type instance struct {
	log     *slog.Logger
	db      *postgres.DB
	closeDB func()
	ingest  *webhook.Ingester
	cons    *consoleParts
	acct    *accounts
	srv     *http.Server
	ln      net.Listener
	served  chan error
}

// startInstance opens the database, migrates, and starts serving on c.Addr.
func startInstance(ctx context.Context, c Config, log *slog.Logger) (*instance, error) {
	db, closeDB, err := openDatabase(ctx, c)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*instance, error) {
		closeDB()
		return nil, err
	}
	if err := prepareSchema(ctx, db, c.Migrate); err != nil {
		return fail(err)
	}
	// Seeds the Page settings (the environment fills what is still empty)
	// and the bootstrap admin.
	acct, err := setUpAccounts(ctx, c, db, log)
	if err != nil {
		return fail(err)
	}
	// Read at scrape time: the ingester and hub are made below.
	var ingest *webhook.Ingester
	var cons *consoleParts
	met := metrics.New(metrics.Sources{DB: db.DB.DB,
		Ingest:  func() map[string]int64 { return ingest.Stats.Counts() },
		Sockets: func() int { return cons.hub.Count() }})
	cons, err = startConsole(ctx, c, db, db.DSN, acct.settings, met, log)
	if err != nil {
		return fail(err)
	}
	ingest = webhook.New(db, webhook.Config{
		AppSecret: c.AppSecret, VerifyToken: c.VerifyToken, AcceptSHA1: c.AcceptSHA1,
		Secrets:  acct.settings.Secrets,
		OnCommit: cons.IngestCommitted,
		Logger:   log.With("component", "webhook"),
	})
	ingest.Start()
	handler := web.New(web.Config{
		Logger: log.With("component", "web"),
		Ingest: ingest,
		Ready:  func(ctx context.Context) error { return ready(ctx, db, cons.listening) },
		Users:  db, Accounts: acct.service, Sessions: acct.sessions, Settings: acct.settings, Audit: db,
		AllowedOrigins: acct.origins, SecureCookies: c.SecureCookies,
		SessionIdle: c.SessionIdle, SessionMax: c.SessionMax,
		Console: cons.web, OnUserSessionsEnded: cons.hub.DropUser,
	})
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		ingest.Close()
		cons.Stop()
		return fail(fmt.Errorf("listen on %s: %w", c.Addr, err))
	}
	root := http.NewServeMux()
	root.Handle("GET /metrics", met.Handler())
	root.Handle("/", met.InstrumentWebhook(handler))
	srv := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		// Facebook gives up after 20 s; nothing Baton answers takes longer
		// except websockets, which hijack the connection.
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	inst := &instance{log: log, db: db, closeDB: closeDB, ingest: ingest, cons: cons, acct: acct, srv: srv, ln: ln, served: make(chan error, 1)}
	go func() { inst.served <- srv.Serve(ln) }()
	return inst, nil
}

// Addr is the address the instance listens on.
func (i *instance) Addr() string { return i.ln.Addr().String() }

// Shutdown stops taking requests, lets the ones in flight finish, commits
// every delivery already queued, then closes the database: nothing that
// was acknowledged, or is about to be, is lost.
func (i *instance) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Websockets first, with going-away, so browsers reconnect elsewhere.
	i.cons.hub.DropAll()
	err := i.srv.Shutdown(ctx)
	i.ingest.Close()
	i.cons.Stop()
	i.closeDB()
	if serr := <-i.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// ready: the database answers and no migration is pending.
//
// It also needs the LISTEN connection: without it this instance would not
// hear the others' changes, and its browsers would go stale.
func ready(ctx context.Context, db *postgres.DB, listening *postgres.Listening) error {
	if listening != nil && !listening.Connected() {
		return errors.New("the LISTEN connection is down")
	}
	pending, err := db.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d migrations pending", len(pending))
	}
	return nil
}
