package main

import (
	"os"
	"testing"

	"github.com/baton-chat/baton/internal/pgtest"
)

// TestMain shares the private test PostgreSQL cluster (see pgtest).
//
// The chaos test re-executes this binary as `baton serve` (so that it can
// SIGKILL an instance): then it runs the program instead of the tests.
func TestMain(m *testing.M) {
	if code, ok := chaosChild(); ok {
		os.Exit(code)
	}
	os.Exit(pgtest.Main(m))
}
