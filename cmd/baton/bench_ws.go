package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
	"github.com/baton-chat/baton/internal/pgserver"
	"github.com/baton-chat/baton/web"
	"github.com/coder/websocket"
)

// wsBench is one `baton bench ws` invocation: two instances on one private
// PostgreSQL, websocket clients signed in as the admin, webhooks posted to
// the instances alternately. It measures what SPEC.md "How fast" asks of
// live updates: webhook → every socket latency, broadcast latency, and
// the memory of an idle authenticated socket.
type wsBench struct {
	sockets   int
	rate      float64
	duration  time.Duration
	broadcast int
	idle      int
	// memprofile: where to write a heap profile taken with the idle
	// sockets open, to see what a socket costs.
	memprofile string
	// clientsOf: this process is the idle sockets' client end, opened to
	// this address (see idleClients).
	clientsOf string
	now       func() time.Time
	// out receives the breakdowns printed along the way.
	out io.Writer
}

func runBenchWS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	b := wsBench{now: time.Now, out: stdout}
	fs := flag.NewFlagSet("baton bench ws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&b.sockets, "sockets", 200, "sockets for the latency run, split over the two instances")
	fs.Float64Var(&b.rate, "rate", 100, "webhooks per second (open loop), each from a new person")
	fs.DurationVar(&b.duration, "duration", 10*time.Second, "length of each measured run")
	fs.IntVar(&b.broadcast, "broadcast", 2000, "sockets on one instance for the broadcast run (0: skip)")
	fs.StringVar(&b.memprofile, "memprofile", "", "write a heap profile with the idle sockets open to this file")
	fs.IntVar(&b.idle, "idle", 5000, "idle sockets for the memory figure (0: skip; each costs a file descriptor here and one in a child process)")
	fs.StringVar(&b.clientsOf, "idle-clients-of", "", "used by the benchmark itself: be the child process that holds -idle sockets to this address open until stdin closes (cookie in "+benchCookieEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.clientsOf != "" {
		if err := idleClients(b.clientsOf, os.Getenv(benchCookieEnv), b.idle, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "baton bench ws: %v\n", err)
			return 1
		}
		return 0
	}
	if b.sockets < 1 || b.rate <= 0 || b.duration <= 0 || b.broadcast < 0 || b.idle < 0 {
		fmt.Fprintln(stderr, "baton bench ws: -sockets, -rate and -duration must be positive")
		return 2
	}
	if err := b.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "baton bench ws: %v\n", err)
		return 1
	}
	return 0
}

// wsBenchPair is the two instances under test.
type wsBenchPair struct {
	a, b         *instance
	secret, page string
	cookie       *http.Cookie
}

// dial opens a signed-in websocket to the instance at addr, as the
// console does (same origin, the session cookie).
func (p *wsBenchPair) dial(ctx context.Context, addr string) (*websocket.Conn, error) {
	h := http.Header{"Origin": {"http://" + addr}, "Cookie": {p.cookie.String()}}
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: h})
	return c, err
}

// startBenchPair starts a private PostgreSQL in a fresh directory, a
// Graph API stub and two Baton instances on them, and signs in the bench
// admin; stop undoes it all.
func startBenchPair(ctx context.Context, stderr io.Writer) (p *wsBenchPair, stop func(), err error) {
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	dir, err := os.MkdirTemp("/tmp", "bw-")
	if err != nil {
		return nil, nil, fmt.Errorf("create data dir: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	fmt.Fprintf(stderr, "starting a private PostgreSQL under %s\n", dir)
	srv, err := pgserver.Start(ctx, filepath.Join(dir, "pg"), pgserver.Options{})
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, func() { srv.Stop() })
	if err := ensureDatabase(ctx, srv, "baton"); err != nil {
		return nil, nil, err
	}
	graphURL, stopGraph, err := startGraphStub()
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, stopGraph)
	p = &wsBenchPair{secret: randomHex(16), page: randomDigits(15)}
	env := Env{
		"DATABASE_URL": srv.DSN("baton"), "BATON_DATA": dir, "BATON_ADDR": "127.0.0.1:0",
		"MESSENGER_APP_ID": randomDigits(15), "MESSENGER_APP_SECRET": p.secret,
		"MESSENGER_VERIFY_TOKEN": randomHex(8), "MESSENGER_PAGE_ID": p.page,
		"MESSENGER_PAGE_TOKEN": randomHex(16), "GRAPH_API_URL": graphURL,
		"BATON_LOG_LEVEL": "error", "BATON_LOG_FORMAT": "text",
		"BATON_ADMIN_EMAIL": "bench@baton.local", "BATON_ADMIN_PASSWORD": "bench-password-123",
	}
	c, err := loadConfig(env, false)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	log := newLogger(c, stderr)
	for _, slot := range []**instance{&p.a, &p.b} {
		inst, err := startInstance(ctx, c, log)
		if err != nil {
			return nil, nil, err
		}
		undo = append(undo, func() { inst.Shutdown() })
		*slot = inst
	}
	if p.cookie, err = benchSignIn(p.a.Addr(), "bench@baton.local", "bench-password-123"); err != nil {
		return nil, nil, err
	}
	return p, stop, nil
}

func (b *wsBench) run(ctx context.Context, stdout, stderr io.Writer) error {
	p, stop, err := startBenchPair(ctx, stderr)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "two instances on one PostgreSQL; GOMAXPROCS=%d; latency clients in the same process, idle clients in a child process\n", runtime.GOMAXPROCS(0))

	res, err := b.latency(ctx, p, b.sockets, []string{p.a.Addr(), p.b.Addr()}, b.rate)
	if err != nil {
		return err
	}
	res.print(stdout, fmt.Sprintf("webhook → socket, 2 instances, %d sockets, %g webhooks/s", b.sockets, b.rate))
	if b.broadcast > 0 {
		// Broadcast: every socket on one instance hears every change; a
		// low rate, so that the figure is the fan-out, not a backlog.
		rate := max(1, b.rate/10)
		res, err := b.latency(ctx, p, b.broadcast, []string{p.a.Addr()}, rate)
		if err != nil {
			return err
		}
		res.print(stdout, fmt.Sprintf("broadcast, 1 instance, %d sockets, %g webhooks/s", b.broadcast, rate))
	}
	if b.idle > 0 {
		per, err := b.idleMemory(ctx, p.a, p.cookie, b.idle, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "idle authenticated socket: %.1f KiB each over %d sockets (server's Go heap + stacks; the clients are in a child process)\n", per/1024, b.idle)
	}
	return nil
}

// wsLatency is one run's figures.
type wsLatency struct {
	samples  []time.Duration
	acks     []time.Duration
	webhooks int
	// missing: webhooks whose conversation is not in the database;
	// rejected: webhooks answered other than 200 (overload).
	missing, rejected int
	sockets           int
	notHeard          int
}

func (r *wsLatency) print(w io.Writer, title string) {
	slices.Sort(r.samples)
	fmt.Fprintf(w, "%s: %d webhooks (%d rejected, %d not stored), %d deliveries to sockets; p50 %s, p99 %s, max %s; %d (socket, change) pairs never heard\n",
		title, r.webhooks, r.rejected, r.missing, len(r.samples), fmtMS(percentile(r.samples, 0.50)), fmtMS(percentile(r.samples, 0.99)),
		fmtMS(percentile(r.samples, 1)), r.notHeard)
	slices.Sort(r.acks)
	fmt.Fprintf(w, "  (webhook acknowledged: p50 %s, p99 %s)\n", fmtMS(percentile(r.acks, 0.50)), fmtMS(percentile(r.acks, 0.99)))
}

// benchSocket records when it first heard each conversation.
type benchSocket struct {
	c     *websocket.Conn
	mu    sync.Mutex
	heard map[int64]time.Time
}

func (b *wsBench) latency(ctx context.Context, p *wsBenchPair, n int, addrs []string, rate float64) (*wsLatency, error) {
	socks := make([]*benchSocket, n)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range socks {
			if s != nil {
				s.c.CloseNow()
			}
		}
		readers.Wait()
	}()
	for i := range socks {
		c, err := p.dial(ctx, addrs[i%len(addrs)])
		if err != nil {
			return nil, fmt.Errorf("socket %d: %w", i, err)
		}
		s := &benchSocket{c: c, heard: map[int64]time.Time{}}
		socks[i] = s
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				_, data, err := c.Read(context.Background())
				if err != nil {
					return
				}
				at := b.now()
				var m struct {
					Type         string `json:"type"`
					Conversation int64  `json:"conversation"`
				}
				if json.Unmarshal(data, &m) != nil || m.Type != "change" {
					continue
				}
				s.mu.Lock()
				if _, ok := s.heard[m.Conversation]; !ok {
					s.heard[m.Conversation] = at
				}
				s.mu.Unlock()
			}
		}()
	}

	// Open loop: webhook i is due at start + i/rate, whoever is late.
	total := int(rate * b.duration.Seconds())
	sent := make([]time.Time, total)
	acked := make([]time.Duration, total)
	psids := make([]string, total)
	run := randomDigits(6)
	var posts sync.WaitGroup
	var errMu sync.Mutex
	var postErr error
	var rejected atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	start := b.now()
	for i := range total {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := due.Sub(b.now()); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		psids[i] = "9" + run + fmt.Sprintf("%09d", i)
		body := benchWebhook(p.page, psids[i], fmt.Sprintf("m_ws_%s_%d", run, i), b.now())
		addr := addrs[i%len(addrs)]
		sent[i] = b.now()
		posts.Add(1)
		go func() {
			defer posts.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhook", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(messenger.HeaderSignature256, messenger.SignSHA256([]byte(body), p.secret))
			resp, err := client.Do(req)
			acked[i] = b.now().Sub(sent[i])
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					// Overload answers 503 (Meta would retry): counted,
					// left out of the latencies.
					rejected.Add(1)
					return
				}
			}
			if err != nil {
				errMu.Lock()
				postErr = err
				errMu.Unlock()
			}
		}()
	}
	posts.Wait()
	if postErr != nil {
		return nil, postErr
	}
	// Which conversation each person got.
	convOf := map[string]int64{}
	rows, err := p.a.db.QueryContext(ctx, `select id, psid from conversations where psid like $1`, "9"+run+"%")
	if err != nil {
		return nil, fmt.Errorf("read conversations: %w", err)
	}
	for rows.Next() {
		var id int64
		var psid string
		if err := rows.Scan(&id, &psid); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan conversation: %w", err)
		}
		convOf[psid] = id
	}
	rows.Close()
	// Let the last notifications arrive: a bounded wait, not a measure.
	deadline := b.now().Add(5 * time.Second)
	res := &wsLatency{webhooks: total, sockets: n, acks: acked, rejected: int(rejected.Load())}
	for {
		res.samples, res.notHeard, res.missing = res.samples[:0], 0, 0
		for i, psid := range psids {
			id, ok := convOf[psid]
			if !ok {
				res.missing++
				continue
			}
			for _, s := range socks {
				s.mu.Lock()
				at, ok := s.heard[id]
				s.mu.Unlock()
				if ok {
					res.samples = append(res.samples, at.Sub(sent[i]))
				} else {
					res.notHeard++
				}
			}
		}
		if res.notHeard == 0 || b.now().After(deadline) {
			return res, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func benchWebhook(page, psid, mid string, now time.Time) string {
	ts := now.UnixMilli()
	return fmt.Sprintf(`{"object":"page","entry":[{"id":%q,"time":%d,"messaging":[{"sender":{"id":%q},"recipient":{"id":%q},"timestamp":%d,"message":{"mid":%q,"text":"hello from the websocket benchmark"}}]}]}`,
		page, ts, psid, page, ts, mid)
}

// benchCookieEnv passes the session cookie to the idle clients' process
// (not on its command line, where ps shows it).
const benchCookieEnv = "BATON_BENCH_COOKIE"

// idleMemory has a child process open n authenticated sockets to inst
// with minimal raw clients (a connection and nothing else) and returns
// the growth of this process's Go heap and stacks per socket: the
// server's share alone, as the clients live elsewhere.
func (b *wsBench) idleMemory(ctx context.Context, inst *instance, cookie *http.Cookie, n int, stderr io.Writer) (float64, error) {
	var heap, stack [2]uint64
	var goroutines [2]int
	measure := func(at int) uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heap[at], stack[at], goroutines[at] = m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
		return m.HeapInuse + m.StackInuse
	}
	// Sockets of the latency runs are still closing: wait for them to go.
	if err := b.waitSockets(ctx, inst, 0); err != nil {
		return 0, err
	}
	before := measure(0)
	if b.memprofile != "" {
		// Every allocation of the sockets sampled, not one per 512 KiB:
		// the profile is for reading a socket's cost item by item.
		runtime.MemProfileRate = 1
	}

	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find this program for the idle clients: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "ws", "-idle", strconv.Itoa(n), "-idle-clients-of", inst.Addr())
	cmd.Env = append(os.Environ(), benchCookieEnv+"="+cookie.String())
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, fmt.Errorf("idle clients: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("idle clients: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the idle clients: %w", err)
	}
	defer func() {
		stdin.Close() // the child closes its sockets and exits
		cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		return 0, fmt.Errorf("the idle clients did not open their sockets (%q, %v)", line, err)
	}
	if err := b.waitSockets(ctx, inst, n); err != nil {
		return 0, err
	}
	// Let every socket's greeting go out and settle.
	time.Sleep(time.Second)
	after := measure(1)
	if b.memprofile != "" {
		f, err := os.Create(b.memprofile)
		if err != nil {
			return 0, fmt.Errorf("create heap profile: %w", err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return 0, fmt.Errorf("write heap profile: %w", err)
		}
	}
	if after < before {
		return 0, nil
	}
	fmt.Fprintf(b.out, "  idle sockets: heap %.1f KiB, stacks %.1f KiB, %.2f goroutines per socket\n",
		float64(heap[1]-heap[0])/1024/float64(n), float64(stack[1]-stack[0])/1024/float64(n),
		float64(goroutines[1]-goroutines[0])/float64(n))
	return float64(after-before) / float64(n), nil
}

// waitSockets waits until inst holds n websockets: a bounded wait, not a
// measure.
func (b *wsBench) waitSockets(ctx context.Context, inst *instance, n int) error {
	deadline := b.now().Add(30 * time.Second)
	for inst.cons.hub.Count() != n {
		if b.now().After(deadline) {
			return fmt.Errorf("the instance holds %d websockets, want %d", inst.cons.hub.Count(), n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// idleClients is the child process of idleMemory: it opens n sockets to
// addr, says "ready" on out, and keeps them open until in closes. Each
// answers the server's pings, as a browser does, so that opening many
// sockets on a loaded box may take longer than the ping interval.
func idleClients(addr, cookie string, n int, in io.Reader, out io.Writer) error {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://" + addr +
		"\r\nCookie: " + cookie + "\r\n\r\n"
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("idle socket %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, req); err != nil {
			return fmt.Errorf("idle socket %d: %w", i, err)
		}
		br := bufio.NewReaderSize(c, 512)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("idle socket %d: %w", i, err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("idle socket %d: status %d", i, resp.StatusCode)
		}
		go answerPings(c, br)
	}
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return fmt.Errorf("say ready: %w", err)
	}
	_, err := io.Copy(io.Discard, in)
	return err
}

// answerPings reads a raw client's socket (short, unmasked server frames)
// and answers each ping with a pong, until the socket ends.
func answerPings(c net.Conn, br *bufio.Reader) {
	var h [2]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int(h[1] & 0x7f)
		if n >= 126 {
			return // the server sends nothing that long
		}
		// A client frame: FIN + opcode, masked length, a zero mask key.
		frame := make([]byte, 6+n)
		frame[0], frame[1] = 0x80|0xa, 0x80|byte(n)
		if _, err := io.ReadFull(br, frame[6:]); err != nil {
			return
		}
		switch h[0] & 0x0f {
		case 0x9: // ping
			if _, err := c.Write(frame); err != nil {
				return
			}
		case 0x8: // close
			return
		}
	}
}

// benchSignIn signs in through the login form and returns the cookie.
func benchSignIn(addr, email, password string) (*http.Cookie, error) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + addr + "/login")
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("sign in: no CSRF token on the page")
	}
	name := web.SessionCookieName(false)
	form := url.Values{"email": {email}, "password": {password}, "csrf_token": {string(m[1])}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://"+addr)
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == name && resp.StatusCode == http.StatusSeeOther {
			return ck, nil
		}
	}
	return nil, fmt.Errorf("sign in: answered %d without a session", resp.StatusCode)
}
