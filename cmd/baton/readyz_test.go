package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"testing"

	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/lib/pq"
)

// /readyz answers 503 while the LISTEN connection is down (this instance
// would not hear the others' changes) and 200 once it is back. The
// connection is really down: its backend is killed and the database
// refuses the listener's reconnects for a while.
func TestReadyzFollowsListenConnection(t *testing.T) {
	s := bootStack(t, nil)
	status := func() int {
		resp, err := http.Get(s.ConsoleURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusOK {
		t.Fatalf("ready = %d, want 200", got)
	}
	if s.rtListenBackends() == 0 {
		t.Fatal("no LISTEN connection found")
	}
	// While it is down, the instance is not ready. The database refuses
	// new connections, so the listener cannot come back until it allows
	// them again (said from the maintenance database: a database cannot
	// refuse connections from inside itself).
	var dbname string
	if err := s.inst.db.Get(&dbname, `select current_database()`); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("postgres", pgtest.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	allow := func(on bool) {
		t.Helper()
		if _, err := admin.Exec(fmt.Sprintf(`alter database %s with allow_connections %v`, pq.QuoteIdentifier(dbname), on)); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	defer allow(true)
	if _, err := admin.Exec(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = $2`, postgres.ListenerApplicationName, dbname); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz 503 with LISTEN down", func() bool { return status() == http.StatusServiceUnavailable })
	allow(true)
	waitFor(t, "the LISTEN connection back and /readyz 200", func() bool { return status() == http.StatusOK })
}
