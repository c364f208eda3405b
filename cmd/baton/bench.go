package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/pgserver"
	"github.com/lib/pq"
)

// runBench dispatches the benchmark subcommands. Only "ingest" exists: the
// webhook figures SPEC.md "How fast" asks the README to state.
func runBench(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "ws" {
		return runBenchWS(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "soak" {
		return runBenchSoak(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprintln(stderr, "Usage: baton bench ingest|ws|soak [flags]   (baton bench ingest -h lists the flags)")
		return 2
	}
	return runBenchIngest(ctx, args[1:], stdout, stderr)
}

// ingestBench is one `baton bench ingest` invocation, flags parsed.
type ingestBench struct {
	url, secret, page string
	events            int
	eventBytes        int
	textBytes         int
	persons           int
	rate              float64
	concurrency       int
	duration, warmup  time.Duration
	timeout           time.Duration
	maxDeliveries     int64
	reference         bool
	// pgDir is the private cluster's directory, when there is one, so
	// that its CPU time can be counted beside the process's.
	pgDir string
	// pgAdmin reads the private cluster's WAL position, so that the WAL
	// written per delivery can be shown (SPEC.md reasons in WAL volume).
	pgAdmin    *sql.DB
	cpuprofile string
	// now is the clock every latency is measured with.
	now func() time.Time
}

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	b := ingestBench{now: time.Now}
	fs := flag.NewFlagSet("baton bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&b.url, "url", "", "webhook URL of a running instance (loopback only); empty: start one in-process with a private PostgreSQL")
	fs.StringVar(&b.secret, "secret", "", "app secret of the instance at -url")
	fs.StringVar(&b.page, "page", "", "Page id connected to the instance at -url")
	fs.IntVar(&b.events, "events", 1, "events per delivery (one per entry, as Meta sends them)")
	fs.IntVar(&b.eventBytes, "event-bytes", 1400, "approximate JSON size of one event (the part beyond the text is Meta's nlp block)")
	fs.IntVar(&b.textBytes, "text-bytes", 200, "length of each message's text (Messenger allows 2,000; a chat line is far shorter)")
	fs.IntVar(&b.persons, "persons", 0, "number of distinct people writing; 0: every event comes from a new person")
	fs.Float64Var(&b.rate, "rate", 0, "deliveries per second, scheduled open-loop; 0: as fast as -concurrency workers go")
	fs.IntVar(&b.concurrency, "concurrency", 0, "workers (= keep-alive connections); 0: 64 at -rate 0, 256 otherwise")
	fs.DurationVar(&b.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&b.warmup, "warmup", 2*time.Second, "load before the measured time, not counted")
	fs.DurationVar(&b.timeout, "timeout", 10*time.Second, "give up on one request after this long (counted as failed)")
	fs.Int64Var(&b.maxDeliveries, "n", 0, "stop after this many deliveries (warm-up included); 0: no limit")
	fs.BoolVar(&b.reference, "reference", false, "afterwards run the same load against a lean reference handler on the same PostgreSQL")
	fs.StringVar(&b.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole process (server and load generator) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := b.validate(); err != nil {
		fmt.Fprintf(stderr, "baton bench ingest: %v\n", err)
		return 2
	}
	if err := b.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "baton bench ingest: %v\n", err)
		return 1
	}
	return 0
}

func (b *ingestBench) validate() error {
	var errs []error
	if b.events < 1 || b.events > 100 {
		errs = append(errs, errors.New("-events must be between 1 and 100 (Meta batches at most 100 entries)"))
	}
	if b.eventBytes < 200 || b.eventBytes > 2200 {
		errs = append(errs, errors.New("-event-bytes must be between 200 and 2200 (a text is at most 2000 characters)"))
	}
	if b.textBytes < 1 || b.textBytes > 2000 {
		errs = append(errs, errors.New("-text-bytes must be between 1 and 2000 (Messenger's limit)"))
	}
	if b.rate < 0 || b.persons < 0 || b.concurrency < 0 || b.maxDeliveries < 0 {
		errs = append(errs, errors.New("-rate, -persons, -concurrency and -n must not be negative"))
	}
	if b.duration <= 0 || b.warmup < 0 || b.timeout <= 0 {
		errs = append(errs, errors.New("-duration and -timeout must be positive, -warmup not negative"))
	}
	if b.url != "" {
		if b.secret == "" || !digits(b.page) {
			errs = append(errs, errors.New("-url needs -secret and a numeric -page"))
		}
		if err := loopbackURL(b.url); err != nil {
			errs = append(errs, err)
		}
	}
	if b.concurrency == 0 {
		b.concurrency = 256
		if b.rate == 0 {
			b.concurrency = 64
		}
	}
	return errors.Join(errs...)
}

// loopbackURL refuses targets off this machine: the benchmark is a load
// generator, and must not be pointed at someone else's server by mistake.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url must be an http:// URL, got %q", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-url must point at this machine (127.0.0.1, ::1 or localhost), got host %q", host)
}

func (b *ingestBench) run(ctx context.Context, stdout, stderr io.Writer) error {
	if b.cpuprofile != "" {
		f, err := os.Create(b.cpuprofile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	target := "baton (in-process)"
	if b.url != "" {
		target = "baton (running instance)"
	}
	// The private PostgreSQL is started here, before the instance joins
	// it, so that the reference run can use the same cluster afterwards.
	var srv *pgserver.Server
	stopBaton := func() {}
	if b.url == "" || b.reference {
		dir, err := os.MkdirTemp("/tmp", "bb-")
		if err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		// The postgres user must pass through to the cluster directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		fmt.Fprintf(stderr, "starting a private PostgreSQL under %s\n", dir)
		srv, err = pgserver.Start(ctx, filepath.Join(dir, "pg"), pgserver.Options{})
		if err != nil {
			return err
		}
		defer srv.Stop()
		b.pgDir = srv.Dir
		b.pgAdmin, err = sql.Open("postgres", srv.DSN("postgres"))
		if err != nil {
			return fmt.Errorf("open database: %w", err)
		}
		defer b.pgAdmin.Close()
		if b.url == "" {
			stop, err := b.startBaton(ctx, srv, stderr)
			if err != nil {
				return err
			}
			var once sync.Once
			stopBaton = func() { once.Do(stop) }
			defer stopBaton()
		}
	}

	fmt.Fprintln(stdout, b.describe())
	if srv != nil {
		if err := printSyncCommit(ctx, srv, stdout); err != nil {
			return err
		}
	}
	res, err := b.load(ctx, target, b.url)
	if err != nil {
		return err
	}
	res.print(stdout)
	if !b.reference {
		return nil
	}
	// Baton's background work (profile look-ups of the new people) must
	// not run during the reference's measured time.
	stopBaton()
	refURL, stopRef, err := startReference(ctx, srv, b.secret)
	if err != nil {
		return err
	}
	defer stopRef()
	ref, err := b.load(ctx, "reference (signature check, one transaction per delivery)", refURL)
	if err != nil {
		return err
	}
	ref.print(stdout)
	if r := ref.deliveriesPerSec(); r > 0 {
		fmt.Fprintf(stdout, "baton/reference: %.2f× acknowledged deliveries/s\n", res.deliveriesPerSec()/r)
	}
	return nil
}

// startBaton starts an in-process Baton on 127.0.0.1:0 against the private
// cluster srv (as `baton serve` would use it: database "baton", default
// settings), with a generated app secret and Page, and points the
// benchmark at it.
func (b *ingestBench) startBaton(ctx context.Context, srv *pgserver.Server, stderr io.Writer) (stop func(), err error) {
	b.secret = randomHex(16)
	b.page = randomDigits(15)
	if err := ensureDatabase(ctx, srv, "baton"); err != nil {
		return nil, err
	}
	graphURL, stopGraph, err := startGraphStub()
	if err != nil {
		return nil, err
	}
	c, err := loadConfig(Env{
		"DATABASE_URL":           srv.DSN("baton"),
		"BATON_DATA":             filepath.Dir(srv.Dir),
		"BATON_ADDR":             "127.0.0.1:0",
		"MESSENGER_APP_ID":       randomDigits(15),
		"MESSENGER_APP_SECRET":   b.secret,
		"MESSENGER_VERIFY_TOKEN": randomHex(8),
		"MESSENGER_PAGE_ID":      b.page,
		"BATON_LOG_LEVEL":        "warn",
		"BATON_LOG_FORMAT":       "text",
		"MESSENGER_PAGE_TOKEN":   randomHex(16),
		"GRAPH_API_URL":          graphURL,
	}, false)
	if err != nil {
		stopGraph()
		return nil, fmt.Errorf("configuration: %w", err)
	}
	inst, err := startInstance(ctx, c, newLogger(c, stderr))
	if err != nil {
		stopGraph()
		return nil, err
	}
	b.url = "http://" + inst.Addr() + "/webhook"
	return func() {
		if err := inst.Shutdown(); err != nil {
			fmt.Fprintf(stderr, "baton bench ingest: shutdown: %v\n", err)
		}
		stopGraph()
	}, nil
}

// startGraphStub answers the Graph API calls an idle Baton makes on its
// own, which are User Profile look-ups of each new person, as Facebook
// would: without it the profile fetcher would retry failing look-ups and
// log each, loading the box with work production does not have.
func startGraphStub() (baseURL string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.Method != http.MethodGet {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"error":{"message":"(#100) Not in the benchmark's stub.","type":"OAuthException","code":100}}`))
				return
			}
			w.Write([]byte(`{"first_name":"Bench","last_name":"Person","profile_pic":"https:\/\/cdn.example\/p.jpg","id":"` +
				strings.TrimPrefix(r.URL.Path, "/") + `"}`))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		hs.Close()
		<-served
	}, nil
}

func (b *ingestBench) describe() string {
	mode := fmt.Sprintf("open loop at %g deliveries/s, %d workers", b.rate, b.concurrency)
	if b.rate == 0 {
		mode = fmt.Sprintf("as fast as possible, %d workers", b.concurrency)
	}
	persons := "a new person per event"
	if b.persons > 0 {
		persons = fmt.Sprintf("%d people", b.persons)
	}
	g := newDeliveryGen(b.page, b.events, b.eventBytes, b.textBytes, b.persons, b.now)
	return fmt.Sprintf("load: %d event(s)/delivery, %d B/delivery, %s; %s; %s measured after %s warm-up",
		b.events, len(g.appendDelivery(nil, 0)), persons, mode, b.duration, b.warmup)
}

func printSyncCommit(ctx context.Context, srv *pgserver.Server, w io.Writer) error {
	db, err := sql.Open("postgres", srv.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	var sc, fsync string
	if err := db.QueryRowContext(ctx, `show synchronous_commit`).Scan(&sc); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if err := db.QueryRowContext(ctx, `show fsync`).Scan(&fsync); err != nil {
		return fmt.Errorf("read fsync: %w", err)
	}
	fmt.Fprintf(w, "postgresql: private cluster, synchronous_commit=%s fsync=%s\n", sc, fsync)
	return nil
}

// benchResult is what one target did during the measured time.
type benchResult struct {
	target   string
	events   int
	measured time.Duration
	// acked counts 200s that completed inside the measured time, which is
	// what throughput is: under overload the requests scheduled in the
	// window finish late, and counting them would report the offered rate.
	acked int64
	// Status counts and latencies are of the requests scheduled inside
	// the measured time, waited for to the end.
	ok, unavailable, other, failed int64
	latencies                      []time.Duration
	// cpu is the CPU time spent during the measured time, when it could
	// be read: a figure that other load on the box does not distort.
	cpu *cpuUse
}

func (r *benchResult) deliveriesPerSec() float64 {
	return float64(r.acked) / r.measured.Seconds()
}

func (r *benchResult) print(w io.Writer) {
	fmt.Fprintf(w, "== %s\n", r.target)
	fmt.Fprintf(w, "acknowledged: %.1f deliveries/s, %.1f events/s\n", r.deliveriesPerSec(), r.deliveriesPerSec()*float64(r.events))
	fmt.Fprintf(w, "status: 200=%d 503=%d other=%d failed=%d\n", r.ok, r.unavailable, r.other, r.failed)
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	fmt.Fprintf(w, "latency from intended send: p50=%s p90=%s p99=%s p99.9=%s max=%s\n",
		fmtMS(percentile(r.latencies, 0.50)), fmtMS(percentile(r.latencies, 0.90)),
		fmtMS(percentile(r.latencies, 0.99)), fmtMS(percentile(r.latencies, 0.999)),
		fmtMS(percentile(r.latencies, 1)))
	if r.cpu != nil && r.acked > 0 {
		sec := r.measured.Seconds()
		fmt.Fprintf(w, "cpu: %.2f cores this process (server and load generator), %.2f cores postgresql; %.0f µs per acknowledged delivery\n",
			r.cpu.self.Seconds()/sec, r.cpu.pg.Seconds()/sec, float64((r.cpu.self+r.cpu.pg).Microseconds())/float64(r.acked))
		if r.cpu.wal >= 0 {
			fmt.Fprintf(w, "wal: %.1f KiB per acknowledged delivery\n", float64(r.cpu.wal)/1024/float64(r.acked))
		}
	}
}

// cpuUse is CPU time (user + system) of this process and of the private
// PostgreSQL's processes.
type cpuUse struct {
	self, pg time.Duration
	// wal is the WAL the cluster wrote, in bytes; -1 when unknown.
	wal int64
}

// walPosition is the cluster's current WAL position ("" when unknown).
func (b *ingestBench) walPosition(ctx context.Context) string {
	var lsn string
	if b.pgAdmin == nil || b.pgAdmin.QueryRowContext(ctx, `select pg_current_wal_lsn()::text`).Scan(&lsn) != nil {
		return ""
	}
	return lsn
}

// walSince is the WAL written since position lsn, in bytes (-1 when unknown).
func (b *ingestBench) walSince(ctx context.Context, lsn string) int64 {
	var n float64
	if lsn == "" || b.pgAdmin.QueryRowContext(ctx, `select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)`, lsn).Scan(&n) != nil {
		return -1
	}
	return int64(n)
}

// readCPU samples cpuUse from /proc; ok is false where that is not
// possible (no private cluster, not Linux).
func readCPU(pgDir string) (use cpuUse, ok bool) {
	if pgDir == "" {
		return use, false
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return use, false
	}
	use.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b, err := os.ReadFile(filepath.Join(pgDir, "pgdata", "postmaster.pid"))
	if err != nil {
		return use, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return use, false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return use, false
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		ppid, ticks, ok := procStat(pid)
		if ok && (pid == postmaster || ppid == postmaster) {
			use.pg += ticks
		}
	}
	return use, true
}

// procStat reads a process's parent and CPU time from /proc/<pid>/stat,
// whose times are in clock ticks of 1/100 s on Linux.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may hold spaces: fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return ppid, time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// percentile is the nearest-rank percentile of sorted (0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// workerStats is one worker's share of a result, merged at the end so the
// hot path takes no lock.
type workerStats struct {
	acked, ok, unavailable, other, failed int64
	latencies                             []time.Duration
}

// job is one delivery to send and the time it was meant to leave.
type job struct {
	seq      int64
	intended time.Time
}

// load drives target for warm-up plus the measured time. With -rate each
// delivery has an intended send time on a fixed schedule, and its latency
// counts from that time, so a stalled server is charged for the requests
// it kept waiting (coordinated omission); with -rate 0 every worker sends
// its next delivery as soon as the previous one is answered.
func (b *ingestBench) load(ctx context.Context, target, rawURL string) (*benchResult, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        b.concurrency,
		MaxIdleConnsPerHost: b.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: b.timeout}
	// Every delivery is unique across runs and targets, so that a running
	// instance never answers from its deduplication.
	gen := newDeliveryGen(b.page, b.events, b.eventBytes, b.textBytes, b.persons, b.now)

	// A hard stop, so that a wedged target cannot hold the command.
	ctx, cancel := context.WithTimeout(ctx, b.warmup+b.duration+b.timeout+5*time.Second)
	defer cancel()

	start := b.now()
	from, until := start.Add(b.warmup), start.Add(b.warmup+b.duration)
	var issued atomic.Int64
	next := func() (int64, bool) {
		seq := issued.Add(1) - 1
		return seq, b.maxDeliveries == 0 || seq < b.maxDeliveries
	}

	// CPU is sampled at the edges of the measured time.
	cpuDone := make(chan *cpuUse, 1)
	go func() {
		defer close(cpuDone)
		wait := func(t time.Time) bool {
			select {
			case <-time.After(t.Sub(b.now())):
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !wait(from) {
			return
		}
		before, ok := readCPU(b.pgDir)
		lsn := b.walPosition(ctx)
		if !ok || !wait(until) {
			return
		}
		if after, ok := readCPU(b.pgDir); ok {
			cpuDone <- &cpuUse{self: after.self - before.self, pg: after.pg - before.pg, wal: b.walSince(ctx, lsn)}
		}
	}()

	stats := make([]workerStats, b.concurrency)
	var wg sync.WaitGroup
	jobs := make(chan job, b.concurrency)
	for w := range stats {
		wg.Add(1)
		go func(st *workerStats) {
			defer wg.Done()
			var buf []byte
			send := func(j job) {
				buf = gen.appendDelivery(buf[:0], j.seq)
				status, err := b.post(ctx, client, rawURL, buf)
				done := b.now()
				if status == http.StatusOK && !done.Before(from) && done.Before(until) {
					st.acked++
				}
				if j.intended.Before(from) || !j.intended.Before(until) {
					return
				}
				st.latencies = append(st.latencies, done.Sub(j.intended))
				switch {
				case err != nil:
					st.failed++
				case status == http.StatusOK:
					st.ok++
				case status == http.StatusServiceUnavailable:
					st.unavailable++
				default:
					st.other++
				}
			}
			if b.rate > 0 {
				for j := range jobs {
					send(j)
				}
				return
			}
			for ctx.Err() == nil {
				t := b.now()
				if !t.Before(until) {
					return
				}
				seq, ok := next()
				if !ok {
					return
				}
				send(job{seq: seq, intended: t})
			}
		}(&stats[w])
	}
	if b.rate > 0 {
		b.schedule(ctx, start, until, next, jobs)
		close(jobs)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}

	res := &benchResult{target: target + " " + rawURL, events: b.events, measured: b.duration, cpu: <-cpuDone}
	for i := range stats {
		s := &stats[i]
		res.acked += s.acked
		res.ok += s.ok
		res.unavailable += s.unavailable
		res.other += s.other
		res.failed += s.failed
		res.latencies = append(res.latencies, s.latencies...)
	}
	return res, nil
}

// schedule hands out deliveries at their intended times. When it falls
// behind (all workers busy) it hands the late ones out at once, keeping
// their intended times, so the delay shows in their latency.
func (b *ingestBench) schedule(ctx context.Context, start, until time.Time, next func() (int64, bool), jobs chan<- job) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); ; i++ {
		at := start.Add(time.Duration(float64(i) * float64(time.Second) / b.rate))
		if !at.Before(until) {
			return
		}
		if wait := at.Sub(b.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		seq, ok := next()
		if !ok {
			return
		}
		select {
		case jobs <- job{seq: seq, intended: at}:
		case <-ctx.Done():
			return
		}
	}
}

// post sends one signed delivery and drains the answer, so that the
// keep-alive connection is reused.
func (b *ingestBench) post(ctx context.Context, client *http.Client, rawURL string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(messenger.HeaderSignature256, messenger.SignSHA256(body, b.secret))
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post delivery: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}

// deliveryGen writes webhook bodies as Meta sends them: one person
// message per entry, every mid unique, each event about eventBytes of JSON
// (SPEC.md's reference uses 1.4 KB events). The text is textBytes long (a
// chat line, by default); the rest is the "nlp" block Messenger adds to a
// message when the Page has built-in NLP on, which Baton stores with the
// raw delivery but neither parses nor indexes. -text-bytes 1400 makes the
// text carry it all instead, the worst case for the search index.
type deliveryGen struct {
	page     string
	run      string
	psidBase int64
	events   int
	persons  int
	text     string
	nlpPad   string
	now      func() time.Time
}

// fillerWords make the text look like what people write, so that
// nothing downstream compresses or indexes it unrealistically well.
const fillerWords = "hi there, I ordered the blue jacket last week and the tracking page still says " +
	"label created. could someone check what happened with order 48213? I need it before friday " +
	"because it is a present, and I would rather not buy a second one. thanks a lot for your help! "

// nlpHead and nlpTail wrap the padding in the shape of Messenger's
// built-in NLP output (detected locale, traits, entities with bodies).
const (
	nlpHead = `,"nlp":{"detected_locales":[{"locale":"en_XX","confidence":0.9871}],"traits":{"wit$sentiment":[{"id":"5ac2b50a-44e4-466e-9d49-bad6bd40092c","value":"neutral","confidence":0.5402}]},"entities":{"wit$contact:contact":[{"id":"1045386059353357","role":"contact","confidence":0.8123,"body":"`
	nlpTail = `"}]}}`
)

func newDeliveryGen(page string, events, eventBytes, textBytes, persons int, now func() time.Time) *deliveryGen {
	g := &deliveryGen{page: page, run: randomHex(6), events: events, persons: persons, now: now}
	// PSIDs are 16-digit numbers in a random range, distinct per run.
	base, _ := rand.Int(rand.Reader, big.NewInt(8e15))
	g.psidBase = 1e15 + base.Int64()
	room := eventBytes - len(g.appendEntry(nil, 0, 0, now().UnixMilli(), 0))
	textBytes = max(1, min(textBytes, room))
	g.text = filler(textBytes)
	if pad := room - textBytes - len(nlpHead) - len(nlpTail); pad > 0 {
		g.nlpPad = filler(pad)
	}
	return g
}

// filler is n bytes of fillerWords.
func filler(n int) string {
	var f strings.Builder
	for f.Len() < n {
		f.WriteString(fillerWords)
	}
	return f.String()[:n]
}

// appendDelivery appends delivery number seq to b.
func (g *deliveryGen) appendDelivery(b []byte, seq int64) []byte {
	ts := g.now().UnixMilli()
	b = append(b, `{"object":"page","entry":[`...)
	for j := 0; j < g.events; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		n := seq*int64(g.events) + int64(j)
		person := n
		if g.persons > 0 {
			person = n % int64(g.persons)
		}
		b = g.appendEntry(b, seq, j, ts, person)
	}
	return append(b, "]}"...)
}

func (g *deliveryGen) appendEntry(b []byte, seq int64, j int, ts, person int64) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, g.page...)
	b = append(b, `","time":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"messaging":[{"sender":{"id":"`...)
	b = strconv.AppendInt(b, g.psidBase+person, 10)
	b = append(b, `"},"recipient":{"id":"`...)
	b = append(b, g.page...)
	b = append(b, `"},"timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"message":{"mid":"m_`...)
	b = append(b, g.run...)
	b = append(b, '_')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(j), 10)
	b = append(b, `","text":"`...)
	b = append(b, g.text...)
	b = append(b, '"')
	if g.nlpPad != "" {
		b = append(b, nlpHead...)
		b = append(b, g.nlpPad...)
		b = append(b, nlpTail...)
	}
	return append(b, `}}]}`...)
}

// referenceHandler is the lean handler SPEC.md measures the box with:
// signature check, then one transaction per delivery holding the raw row
// and one jsonb row per event, with synchronous_commit on. It is what
// "the box allows" without group commit, for Baton's figure to stand beside.
type referenceHandler struct {
	db     *sql.DB
	secret string
}

func (h *referenceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, "Could not read the body.", http.StatusBadRequest)
		return
	}
	if !messenger.VerifySHA256(body, r.Header.Get(messenger.HeaderSignature256), h.secret) {
		http.Error(w, "Bad or missing signature.", http.StatusForbidden)
		return
	}
	var env struct {
		Entry []struct {
			Messaging []json.RawMessage `json:"messaging"`
			Standby   []json.RawMessage `json:"standby"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, "Malformed JSON body.", http.StatusBadRequest)
		return
	}
	var evs []string
	for _, e := range env.Entry {
		for _, raw := range append(e.Messaging, e.Standby...) {
			evs = append(evs, string(raw))
		}
	}
	// One statement in autocommit is one transaction: one durable flush
	// per delivery.
	if _, err := h.db.ExecContext(r.Context(), `
		with raw as (
			insert into bench_reference_deliveries (body)
			values ($1)
			returning id
		)
		insert into bench_reference_events (delivery_id, event)
		select raw.id, e
		from raw, unnest($2::jsonb[]) as e`, body, pq.Array(evs)); err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Storage unavailable; retry.", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("EVENT_RECEIVED"))
}

// startReference serves the reference handler on 127.0.0.1:0, storing in
// throwaway tables of its own database on srv, dropped when it stops.
func startReference(ctx context.Context, srv *pgserver.Server, secret string) (webhookURL string, stop func(), err error) {
	const dbName = "baton_bench_reference"
	if err := ensureDatabase(ctx, srv, dbName); err != nil {
		return "", nil, err
	}
	db, err := sql.Open("postgres", srv.DSN(dbName))
	if err != nil {
		return "", nil, fmt.Errorf("open reference database: %w", err)
	}
	// The same pool size as Baton's (postgres.Open).
	db.SetMaxOpenConns(40)
	db.SetMaxIdleConns(40)
	drop := func() {
		db.ExecContext(context.Background(), `drop table if exists bench_reference_events, bench_reference_deliveries`)
		db.Close()
	}
	if _, err := db.ExecContext(ctx, `
		drop table if exists bench_reference_events, bench_reference_deliveries;
		create table bench_reference_deliveries (
			id bigint generated always as identity primary key,
			received_at timestamptz not null default now(),
			body bytea not null
		);
		create table bench_reference_events (
			id bigint generated always as identity primary key,
			delivery_id bigint not null,
			event jsonb not null
		)`); err != nil {
		drop()
		return "", nil, fmt.Errorf("create reference tables: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           &referenceHandler{db: db, secret: secret},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/webhook", func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		<-served
		drop()
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomDigits is a numeric Graph-style id of n digits, never starting with 0.
func randomDigits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}
