package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The processes and plumbing of TestChaos: Baton instances as child
// processes (so that one can be SIGKILLed) and the load balancer in front
// of their webhooks.

// chaosChildEnv, set to "1", makes the test binary run `baton serve` with
// its environment instead of the tests (see TestMain).
const chaosChildEnv = "BATON_CHAOS_CHILD"

// chaosChild runs `baton serve` when this process is a chaos child; ok
// says whether it was. SIGTERM stops it gracefully, as in production.
func chaosChild() (code int, ok bool) {
	if os.Getenv(chaosChildEnv) != "1" {
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, []string{"serve"}, envMap(os.Environ()), os.Stdout, os.Stderr), true
}

// chaosInstance is one `baton serve` child on a fixed address, so that a
// restarted one is found where the killed one was.
type chaosInstance struct {
	t    *testing.T
	name string
	addr string
	env  []string
	log  string // its stdout and stderr, appended over restarts

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{} // closed when the current process has exited
	state *os.ProcessState
	runs  int
}

// freeAddr is a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newChaosInstance(t *testing.T, name string, env map[string]string) *chaosInstance {
	in := &chaosInstance{t: t, name: name, addr: freeAddr(t), log: t.TempDir() + "/" + name + ".log"}
	in.env = append(os.Environ(), chaosChildEnv+"=1", "BATON_ADDR="+in.addr)
	for k, v := range env {
		in.env = append(in.env, k+"="+v)
	}
	t.Cleanup(func() {
		if in.running() {
			in.kill()
		}
	})
	return in
}

// start launches the process and waits until it is ready (/readyz: the
// database answers, no migration pending, LISTEN in force).
func (in *chaosInstance) start() error {
	f, err := os.OpenFile(in.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = in.env
	cmd.Stdout, cmd.Stderr = f, f
	// A test binary killed (go test's timeout) takes its instances along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	done := make(chan struct{})
	in.mu.Lock()
	in.cmd, in.done, in.state = cmd, done, nil
	in.runs++
	in.mu.Unlock()
	go func() {
		cmd.Wait()
		f.Close()
		in.mu.Lock()
		in.state = cmd.ProcessState
		in.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(60 * time.Second) // stops a broken run only
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("%s exited while starting: %v\n%s", in.name, in.exitState(), in.logTail())
		default:
		}
		if resp, err := client.Get("http://" + in.addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60 s\n%s", in.name, in.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (in *chaosInstance) running() bool {
	in.mu.Lock()
	done := in.done
	in.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

func (in *chaosInstance) exitState() *os.ProcessState {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// kill SIGKILLs the process and waits until it is gone.
func (in *chaosInstance) kill() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop asks the process to stop (SIGTERM) and returns its exit error; a
// process that does not stop within a minute is killed.
func (in *chaosInstance) stop() error {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(time.Minute):
		in.kill()
		return fmt.Errorf("%s did not stop on SIGTERM", in.name)
	}
	if st := in.exitState(); !st.Success() {
		return fmt.Errorf("%s: %v", in.name, st)
	}
	return nil
}

// logTail is the end of the process's output, for failure messages.
func (in *chaosInstance) logTail() string {
	b, _ := os.ReadFile(in.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// chaosProxy is the load balancer in front of the instances' webhooks:
// round-robin, and 502 when the chosen instance does not answer (down,
// killed mid-request), as a real one would; the sender retries.
type chaosProxy struct {
	backends []string
	next     atomic.Uint64
	// answers counts what the proxy answered, by status (502 included).
	mu      sync.Mutex
	answers map[int]int
	// failures counts non-200 answers: the retry pump watches it.
	failures atomic.Int64
	srv      *http.Server
	URL      string
	// trap, when set, is sprung by the next request the proxy has written
	// whole to its backend: that instance is then mid-delivery.
	trap atomic.Pointer[chaosTrap]
}

// chaosTrap waits for a request to one backend.
type chaosTrap struct {
	backend string
	sprung  chan struct{}
	once    sync.Once
}

// trapNext arms a trap for the next request written to backend; the
// channel closes once one has been (the caller then kills the backend).
func (p *chaosProxy) trapNext(backend string) <-chan struct{} {
	tr := &chaosTrap{backend: backend, sprung: make(chan struct{})}
	p.trap.Store(tr)
	return tr.sprung
}

func startChaosProxy(t *testing.T, backends ...string) *chaosProxy {
	t.Helper()
	p := &chaosProxy{backends: backends, answers: map[int]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			b := p.backends[(p.next.Add(1)-1)%uint64(len(p.backends))]
			r.SetURL(&url.URL{Scheme: "http", Host: b})
			if tr := p.trap.Load(); tr != nil && tr.backend == b {
				// Sprung once the whole request is on the wire: the
				// instance is then parsing or committing it (or, rarely,
				// has answered already when the kill lands).
				trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
					if p.trap.CompareAndSwap(tr, nil) {
						tr.once.Do(func() { close(tr.sprung) })
					}
				}}
				r.Out = r.Out.WithContext(httptrace.WithClientTrace(r.Out.Context(), trace))
			}
		},
		Transport: &http.Transport{
			DialContext:     (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConns:    16,
			IdleConnTimeout: 5 * time.Second,
		},
		ModifyResponse: func(resp *http.Response) error {
			p.count(resp.StatusCode)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.count(http.StatusBadGateway)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *chaosProxy) count(status int) {
	p.mu.Lock()
	p.answers[status]++
	p.mu.Unlock()
	if status != http.StatusOK {
		p.failures.Add(1)
	}
}

// describe is the proxy's answers by status, e.g. "200×2990 502×7".
func (p *chaosProxy) describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return describeCounts(p.answers)
}

// describeCounts prints a status histogram in status order.
func describeCounts(m map[int]int) string {
	var parts []string
	for code := range 1000 {
		if n := m[code]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", code, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
