package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// ChangesChannel is the NOTIFY channel for conversation changes.
const ChangesChannel = "baton_changes"

// OutboxChannel wakes outbox workers (Enqueue notifies it in its transaction).
const OutboxChannel = "baton_outbox"

// SessionsChannel carries the id of a user whose sessions all ended (sign
// out everywhere, disabled account): every instance closes that user's
// websockets, not only the one that took the request.
const SessionsChannel = "baton_sessions"

// ListenerApplicationName is the application_name of every LISTEN
// connection, so that operators (and tests) find them in
// pg_stat_activity.
const ListenerApplicationName = "baton-listen"

// ResyncAll, as a conversation id in NotifyChanges, tells every instance
// that changes were lost: all browsers must re-read.
const ResyncAll = -1

// NotifyChanges tells every instance (this one included) that these
// conversations changed, with their new sequence numbers. Payloads stay
// far below PostgreSQL's 8000-byte limit: long lists are split, and every
// part goes in one round trip.
//
// The NOTIFY commits with synchronous_commit off: a NOTIFY's transaction
// gets an xid, so a durable commit would wait for a WAL flush of its own
// on every notification, queueing behind ingest's flushes. A notification
// lost in a crash costs nothing: every listener reconnects then, and
// reconnecting makes its browsers re-read.
func (db *DB) NotifyChanges(ctx context.Context, changes map[int64]int64) error {
	if len(changes) == 0 {
		return nil
	}
	// The statement is built from integers only, so it is safe to send as
	// text: one simple query runs it as one implicit transaction, in
	// which SET LOCAL applies.
	var q, b strings.Builder
	q.WriteString("set local synchronous_commit = off")
	flush := func() {
		if b.Len() == 0 {
			return
		}
		q.WriteString("; select pg_notify('" + ChangesChannel + "', '")
		q.WriteString(b.String())
		q.WriteString("')")
		b.Reset()
	}
	for id, seq := range changes {
		if b.Len() > 7000 {
			flush()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(seq, 10))
	}
	flush()
	if _, err := db.ExecContext(ctx, q.String()); err != nil {
		return mapError(fmt.Errorf("notify: %w", err))
	}
	return nil
}

// NotifySessionsEnded tells every instance (this one included) that every
// session of userID ended, so that each closes that user's websockets.
func (db *DB) NotifySessionsEnded(ctx context.Context, userID int64) error {
	if _, err := db.ExecContext(ctx, `select pg_notify($1, $2)`, SessionsChannel, strconv.FormatInt(userID, 10)); err != nil {
		return mapError(fmt.Errorf("notify sessions ended: %w", err))
	}
	return nil
}

// ParseChanges reads a NotifyChanges payload.
func ParseChanges(payload string) map[int64]int64 {
	out := map[int64]int64{}
	for _, part := range strings.Split(payload, ",") {
		id, seq, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		i, err1 := strconv.ParseInt(id, 10, 64)
		s, err2 := strconv.ParseInt(seq, 10, 64)
		if err1 == nil && err2 == nil {
			out[i] = s
		}
	}
	return out
}

// Listening reports whether the LISTEN connection is up (for /readyz:
// an instance that cannot hear other instances serves stale browsers).
type Listening struct{ up atomic.Bool }

// Connected reports whether the LISTEN connection is up now.
func (l *Listening) Connected() bool { return l.up.Load() }

// Listen follows NOTIFY channels on its own connection until ctx ends.
// onNotify gets each payload; onReconnect runs after the connection came
// back, because notifications sent meanwhile are lost and listeners must
// re-read what they show.
func Listen(ctx context.Context, dsn string, log *slog.Logger, channels []string, onNotify func(channel, payload string), onReconnect func()) (*Listening, error) {
	state := &Listening{}
	l := pq.NewListener(withApplicationName(dsn, ListenerApplicationName), 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected:
			state.up.Store(true)
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			state.up.Store(false)
			if ev == pq.ListenerEventDisconnected {
				log.Warn("listen connection lost", "err", err)
			}
		case pq.ListenerEventReconnected:
			state.up.Store(true)
			log.Info("listen connection back")
			if onReconnect != nil {
				onReconnect()
			}
		}
	})
	for _, ch := range channels {
		if err := l.Listen(ch); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	// Listen succeeded, so the connection is up (the Connected event may
	// not have been delivered yet).
	state.up.Store(true)
	go func() {
		defer l.Close()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-l.Notify:
				if n == nil {
					continue // reconnected; onReconnect already ran
				}
				onNotify(n.Channel, n.Extra)
			case <-ping.C:
				// Find a dead connection without waiting for TCP to notice.
				go l.Ping()
			}
		}
	}()
	return state, nil
}

// withApplicationName sets application_name on a DSN (URL or key=value
// form) unless it already has one.
func withApplicationName(dsn, name string) string {
	return withParam(dsn, "application_name", name)
}

// withParam adds a connection parameter to dsn (URL or key=value form)
// unless dsn sets it already; lib/pq sends parameters it does not know
// itself to the server as run-time settings.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		if q.Get(key) == "" {
			q.Set(key, value)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, key+"=") {
		return dsn
	}
	return strings.TrimSpace(dsn + " " + key + "=" + value)
}
