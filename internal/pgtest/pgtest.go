// Package pgtest gives each test a fresh, migrated PostgreSQL database:
// in the private cluster shared by every test binary of the run (started by
// the first, stopped by the last), or on the server named by
// TEST_DATABASE_URL. Each package that uses it calls Main from TestMain.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/pgserver"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/migrations"
	_ "github.com/lib/pq"
)

var (
	mu       sync.Mutex
	server   *pgserver.Server
	adminDSN string
	dsnFor   func(db string) string
	template string
)

// Main runs the tests and then leaves the shared cluster (stopping it when
// this binary is its last user). Use it as os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if server != nil {
		if err := server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		server = nil
	}
	return code
}

// ClusterDir is where the shared test cluster lives: short, so the socket
// path fits, and per user.
func ClusterDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("baton-test-pg-%d", os.Getuid()))
}

func setup() error {
	if dsnFor != nil {
		return nil
	}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminDSN = u
		dsnFor = func(db string) string { return withDB(u, db) }
	} else {
		s, err := pgserver.Start(context.Background(), ClusterDir(), pgserver.Options{
			// Tests need durability semantics but not the fsync cost.
			Settings: map[string]string{"fsync": "off", "full_page_writes": "off", "max_connections": "300"},
		})
		if err != nil {
			return err
		}
		server = s
		adminDSN = s.DSN("postgres")
		dsnFor = s.DSN
	}
	return makeTemplate()
}

// withDB returns dsn pointing at database db (URL or key=value form).
func withDB(dsn, db string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			u.Path = "/" + db
			return u.String()
		}
	}
	return dsn + " dbname=" + db
}

// makeTemplate creates, once per schema version, a migrated database that
// each test copies: copying is much faster than migrating.
func makeTemplate() error {
	h := sha256.New()
	names, _ := fs.Glob(migrations.FS, "*.sql")
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	template = "baton_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]
	admin, err := sql.Open("postgres", adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close()
	// Test binaries of several packages start at once: one builds the template.
	if _, err := conn.ExecContext(ctx, `select pg_advisory_lock(4242)`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `select pg_advisory_unlock(4242)`)
	var exists bool
	if err := conn.QueryRowContext(ctx, `select exists(select 1 from pg_database where datname = $1)`, template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := template + "_build"
	conn.ExecContext(ctx, `drop database if exists `+building+` with (force)`)
	if _, err := conn.ExecContext(ctx, `create database `+building); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	db, err := postgres.Open(ctx, dsnFor(building))
	if err != nil {
		return err
	}
	_, err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `alter database `+building+` rename to `+template); err != nil {
		return fmt.Errorf("rename template: %w", err)
	}
	return nil
}

// DSN creates a fresh migrated database for t, dropped when t ends, and
// returns its connection string.
func DSN(t testing.TB) string {
	t.Helper()
	mu.Lock()
	err := setup()
	mu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("postgres", adminDSN)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(`create database ` + name + ` template ` + template)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", adminDSN)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(`drop database if exists ` + name + ` with (force)`)
	})
	return dsnFor(name)
}

// DB opens a fresh migrated database for t, closed and dropped when t ends.
func DB(t testing.TB) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), DSN(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// AdminDSN is a connection string for the cluster's maintenance database,
// for what a test cannot do from inside its own database (such as making
// it refuse new connections). Valid once DSN or DB has run.
func AdminDSN() string {
	mu.Lock()
	defer mu.Unlock()
	return adminDSN
}
