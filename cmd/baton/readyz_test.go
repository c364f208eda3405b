package main

import (
	"net/http"
	"testing"

	"github.com/baton-chat/baton/internal/postgres"
)

// /readyz answers 503 while the LISTEN connection is down (this instance
// would not hear the others' changes) and 200 once it is back.
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
	// While it is down, the instance is not ready. (The listener
	// reconnects within milliseconds, so the check is on the flag the
	// handler reads, set from the connection's own events.)
	s.inst.cons.listening.SetForTest(false)
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("ready with LISTEN down = %d, want 503", got)
	}
	if _, err := s.inst.db.Exec(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()`, postgres.ListenerApplicationName); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the LISTEN connection back and /readyz 200", func() bool { return status() == http.StatusOK })
}
