package pgserver

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq"
)

// shortDir is a data directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pgs")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o711)
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "pg")
}

func ping(t *testing.T, s *Server) {
	t.Helper()
	db, err := sql.Open("postgres", s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRow(`select 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("query the private server: %v", err)
	}
}

func postmasterPID(t *testing.T, s *Server) int {
	t.Helper()
	pid, ok := s.pidFromFile()
	if !ok {
		t.Fatal("no postmaster.pid")
	}
	return pid
}

// The first user starts the server, a second one reuses it, and only the
// last to leave stops it.
func TestStartSharedAndStopLast(t *testing.T) {
	dir := shortDir(t)
	ctx := context.Background()
	a, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ping(t, a)
	pid := postmasterPID(t, a)
	b, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := postmasterPID(t, b); got != pid {
		t.Fatalf("second Start started another postmaster (%d, first %d)", got, pid)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	ping(t, b) // still serving b
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// pg_ctl stop returns once the server stopped accepting; the process
	// itself may take a moment longer to exit on a loaded box.
	for i := 0; i < 250 && isPostgres(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if isPostgres(pid) {
		t.Fatal("the last user left, but the server still runs")
	}
	// Data survives: starting again reuses the cluster without initdb.
	c, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c)
	c.Stop()
}

// After a crash (postmaster killed), the next Start recovers, including
// when postmaster.pid names a pid now used by an unrelated process.
func TestRecoverAfterCrash(t *testing.T) {
	dir := shortDir(t)
	ctx := context.Background()
	s, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pid := postmasterPID(t, s)
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200 && isPostgres(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	// Children of the killed postmaster exit on their own; make sure the
	// shared memory they hold is gone before restarting.
	exec.Command("pkill", "-KILL", "-f", "postgres -D "+s.pgdata()).Run()
	time.Sleep(300 * time.Millisecond)
	// Point the stale pid file at a live, unrelated process.
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	pidFile := filepath.Join(s.pgdata(), "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 2)
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"+lines[1]), 0o600)
	s.users.Close() // the crashed process's lock dies with it
	s.users = nil

	r, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("start after a crash: %v", err)
	}
	ping(t, r)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

// A missing installation gets one sentence saying what to install.
func TestMissingBinariesMessage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinaries(filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("message = %q", err)
	}
}

// A data dir too long for a unix socket is refused with a clear message.
func TestSocketPathTooLong(t *testing.T) {
	long := filepath.Join(os.TempDir(), strings.Repeat("x", 120))
	_, err := Start(context.Background(), long, Options{})
	if err == nil || !strings.Contains(err.Error(), "too long for a unix socket") {
		t.Fatalf("err = %v", err)
	}
}

// Halt takes the server away from its clients in either mode and Resume
// brings it back with every committed row; a bad mode is refused.
func TestHaltAndResume(t *testing.T) {
	dir := shortDir(t)
	ctx := context.Background()
	s, err := Start(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	db, err := sql.Open("postgres", s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`create table kept (n int)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Halt(ctx, "sometime"); err == nil || !strings.Contains(err.Error(), "not smart, fast or immediate") {
		t.Fatalf("bad mode: err = %v", err)
	}
	for i, mode := range []string{"fast", "immediate"} {
		if _, err := db.Exec(`insert into kept values ($1)`, i); err != nil {
			t.Fatalf("%s: insert: %v", mode, err)
		}
		pid := postmasterPID(t, s)
		if err := s.Halt(ctx, mode); err != nil {
			t.Fatal(err)
		}
		if s.running() {
			t.Fatalf("%s: still running after Halt", mode)
		}
		if err := db.Ping(); err == nil {
			t.Fatalf("%s: the database answered while halted", mode)
		}
		if err := s.Halt(ctx, mode); err == nil {
			t.Fatalf("%s: a second Halt succeeded", mode)
		}
		if err := s.Resume(ctx); err != nil {
			t.Fatalf("%s: resume: %v", mode, err)
		}
		if got := postmasterPID(t, s); got == pid {
			t.Fatalf("%s: the same postmaster (%d) after Resume", mode, pid)
		}
		if err := s.Resume(ctx); err != nil {
			t.Fatalf("%s: Resume of a running server: %v", mode, err)
		}
		var n int
		// The pool's connections died with the server; database/sql
		// retries a dead one on a fresh connection.
		if err := db.QueryRow(`select count(*) from kept`).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("%s: %d rows kept (%v), want %d", mode, n, err, i+1)
		}
	}
}
