// Package pgserver runs the private PostgreSQL that Baton uses when
// DATABASE_URL is unset: it finds the system binaries, initialises a cluster
// once under a data directory, starts it on a unix socket inside that
// directory (no TCP port to collide with) and stops it when the last user of
// it leaves. Tests use it too, so that every test run has a real database
// without any setup.
//
// Several processes may point at the same directory (two `baton serve`, or
// the test binaries of several packages running in parallel). A shared lock
// held by every user and an exclusive lock held while starting or stopping
// make that safe: the first starts the server, the others reuse it, and only
// the last to leave stops it.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Port is the number in the socket file name. The server listens on no TCP
// port, so any value works; the default keeps psql invocations short.
const Port = 5432

// Server is a running private PostgreSQL cluster shared by its users.
type Server struct {
	// Dir is the directory holding the cluster ("pgdata"), the socket and the log.
	Dir    string
	binDir string
	users  *os.File // shared lock held while this process uses the server
	opts   Options  // what Start was given, for Resume
	cred   *syscall.Credential
	uid    int
	gid    int
}

// Options tune Start. The zero value is what `baton` uses.
type Options struct {
	// Settings are extra "-c name=value" server settings.
	Settings map[string]string
}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres:
// first from PATH, then the newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	return findBinaries("/usr/lib/postgresql/*/bin")
}

func findBinaries(libGlob string) (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(libGlob)
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql) or set DATABASE_URL")
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Start starts (or joins) the cluster under dir, creating it on first use.
// The caller must Stop it.
func Start(ctx context.Context, dir string, opts Options) (*Server, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if n := len(filepath.Join(dir, ".s.PGSQL.5432")); n > 100 {
		return nil, fmt.Errorf("data dir %s is too long for a unix socket path (%d bytes, limit 100): choose a shorter BATON_DATA", dir, n)
	}
	// Parents we create must let the postgres user pass through (but not
	// list); the cluster directory itself stays private.
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Server{Dir: dir, binDir: bin, opts: opts, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user and
		// give that user the directory.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, but there is no 'postgres' user to run PostgreSQL as: create one (useradd -r postgres) or run baton as a normal user")
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}
		if err := checkTraversable(dir, s.uid, s.gid); err != nil {
			return nil, err
		}
	}
	lock, err := s.lockExclusive()
	if err != nil {
		return nil, err
	}
	defer unlock(lock)

	if err := s.initdb(ctx); err != nil {
		return nil, err
	}
	if !s.running() {
		if err := s.removeStalePid(); err != nil {
			return nil, err
		}
		if err := s.start(ctx, opts); err != nil {
			return nil, err
		}
	}
	users, err := os.OpenFile(filepath.Join(s.Dir, "users.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open users lock: %w", err)
	}
	if err := syscall.Flock(int(users.Fd()), syscall.LOCK_SH); err != nil {
		users.Close()
		return nil, fmt.Errorf("take users lock: %w", err)
	}
	s.users = users
	return s, nil
}

// checkTraversable fails clearly when the postgres user cannot reach dir,
// which happens when the data dir lives under a private home such as /root.
func checkTraversable(dir string, uid, gid int) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("data dir parent: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		ok := fi.Mode().Perm()&0o001 != 0 ||
			(int(st.Uid) == uid && fi.Mode().Perm()&0o100 != 0) ||
			(int(st.Gid) == gid && fi.Mode().Perm()&0o010 != 0)
		if !ok {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v): put BATON_DATA somewhere it can reach, or chmod o+x %s", p, fi.Mode().Perm(), p)
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// DSN is the lib/pq connection string for database name on this server.
func (s *Server) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.Dir, Port, dbname)
}

// Stop leaves the server; the last user to leave shuts it down.
func (s *Server) Stop() error {
	if s.users == nil {
		return nil
	}
	lock, err := s.lockExclusive()
	if err != nil {
		return err
	}
	defer unlock(lock)
	// Release our shared lock, then see whether anyone else still holds one.
	syscall.Flock(int(s.users.Fd()), syscall.LOCK_UN)
	last := syscall.Flock(int(s.users.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
	s.users.Close()
	s.users = nil
	if !last || !s.running() {
		return nil
	}
	out, err := s.pgctl(context.Background(), "stop", "-m", "fast", "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("stop postgres: %w: %s", err, out)
	}
	return nil
}

// Halt stops the postmaster now, whoever else still uses it, the way an
// operator or a crash would: mode is pg_ctl's shutdown mode, "fast"
// (disconnect every client, then shut down cleanly) or "immediate" (quit
// at once; the next start runs crash recovery). It exists so that tests can
// take the database away from running clients and prove they survive;
// Resume brings it back. The users' locks are untouched: they still hold
// the server, which is merely down.
func (s *Server) Halt(ctx context.Context, mode string) error {
	if mode != "fast" && mode != "immediate" && mode != "smart" {
		return fmt.Errorf("halt postgres: mode %q is not smart, fast or immediate", mode)
	}
	lock, err := s.lockExclusive()
	if err != nil {
		return err
	}
	defer unlock(lock)
	if !s.running() {
		return errors.New("halt postgres: the server is not running")
	}
	if out, err := s.pgctl(ctx, "stop", "-m", mode, "-w", "-t", "60"); err != nil {
		return fmt.Errorf("halt postgres (%s): %w: %s", mode, err, out)
	}
	return nil
}

// Resume starts the postmaster again, with the settings Start used, after
// Halt (or a crash); it does nothing when the server runs.
func (s *Server) Resume(ctx context.Context) error {
	lock, err := s.lockExclusive()
	if err != nil {
		return err
	}
	defer unlock(lock)
	if s.running() {
		return nil
	}
	if err := s.removeStalePid(); err != nil {
		return err
	}
	return s.start(ctx, s.opts)
}

func (s *Server) pgdata() string { return filepath.Join(s.Dir, "pgdata") }

func (s *Server) lockExclusive() (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.Dir, "start.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open start lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("take start lock: %w", err)
	}
	return f, nil
}

func unlock(f *os.File) {
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}

func (s *Server) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.pgdata(), "PG_VERSION")); err == nil {
		return nil
	}
	// A half-made cluster from an interrupted initdb is useless: start over.
	os.RemoveAll(s.pgdata())
	if err := s.chown(s.Dir); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "initdb"),
		"-D", s.pgdata(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Env = []string{"PATH=" + s.binDir + ":/usr/bin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, s.uid, s.gid); err != nil {
		return fmt.Errorf("chown %s to postgres: %w", path, err)
	}
	return nil
}

// running reports whether a postmaster serves this cluster now.
func (s *Server) running() bool {
	pid, ok := s.pidFromFile()
	if !ok {
		return false
	}
	return isPostgres(pid)
}

func (s *Server) pidFromFile() (int, bool) {
	return pidIn(filepath.Join(s.pgdata(), "postmaster.pid"))
}

func isPostgres(pid int) bool {
	// /proc/<pid>/stat is "pid (comm) state …"; a zombie (Z) has exited.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 >= len(s) {
		return false
	}
	return strings.HasPrefix(s[open+1:end], "postgres") && s[end+2] != 'Z' && s[end+2] != 'X'
}

// removeStalePid deletes a postmaster.pid left by a crash whose pid now
// belongs to an unrelated process (PostgreSQL itself only detects dead pids).
//
// The socket's lock file gets the same treatment: PostgreSQL refuses to
// start while the pid it names exists, and in a container whose init does
// not reap, a crashed postmaster stays a zombie that still "exists".
func (s *Server) removeStalePid() error {
	for _, f := range []string{filepath.Join(s.pgdata(), "postmaster.pid"), filepath.Join(s.Dir, fmt.Sprintf(".s.PGSQL.%d.lock", Port))} {
		pid, ok := pidIn(f)
		if !ok || isPostgres(pid) {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

// pidIn reads the pid on the first line of a PostgreSQL lock file.
func pidIn(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(first)))
	return pid, err == nil
}

func (s *Server) start(ctx context.Context, opts Options) error {
	settings := map[string]string{
		"listen_addresses":        "''",
		"unix_socket_directories": "'" + s.Dir + "'",
		"port":                    strconv.Itoa(Port),
		"max_connections":         "200",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var o strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&o, "-c %s=%s ", k, settings[k])
	}
	out, err := s.pgctl(ctx, "start", "-w", "-t", "60", "-l", filepath.Join(s.Dir, "postgres.log"), "-o", o.String())
	if err != nil {
		tail, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("start postgres: %w: %s\n%s", err, out, tail)
	}
	return nil
}

func (s *Server) pgctl(ctx context.Context, args ...string) ([]byte, error) {
	if s.cred != nil {
		// The log file and socket live in Dir; postgres must own it.
		if err := s.chown(s.Dir); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	full := append([]string{"-D", s.pgdata()}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "pg_ctl"), full...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	cmd.Env = []string{"PATH=" + s.binDir + ":/usr/bin:/bin", "LC_ALL=C"}
	return cmd.CombinedOutput()
}
