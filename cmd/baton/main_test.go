package main

import (
	"os"
	"testing"

	"github.com/baton-chat/baton/internal/pgtest"
)

// TestMain shares the private test PostgreSQL cluster (see pgtest).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
