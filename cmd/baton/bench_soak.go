package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
	"github.com/coder/websocket"
)

// soakBench is one `baton bench soak` invocation: the ingest load and the
// websocket clients of the other two benchmarks, together, against two
// instances for a long time (issue 9: ten minutes), printing every
// interval what the process holds, so that a leak or a slow drift shows as
// a column that keeps growing. At the end the load stops, every client
// goes away, and goroutines and heap are compared with the baseline taken
// the same way after a warm-up.
type soakBench struct {
	duration, interval, warmup time.Duration
	rate                       float64
	sockets, persons           int
	now                        func() time.Time
}

func runBenchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	b := soakBench{now: time.Now}
	fs := flag.NewFlagSet("baton bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&b.duration, "duration", 10*time.Minute, "how long the load runs after the warm-up")
	fs.DurationVar(&b.interval, "interval", 30*time.Second, "one row of figures per interval")
	fs.DurationVar(&b.warmup, "warmup", 10*time.Second, "load before the baseline is taken")
	fs.Float64Var(&b.rate, "rate", 200, "signed deliveries per second (open loop), alternating between the instances")
	fs.IntVar(&b.sockets, "sockets", 200, "signed-in websocket clients, split over the two instances, connected throughout")
	fs.IntVar(&b.persons, "persons", 2000, "distinct people writing (their conversations are updated again and again)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if b.duration <= 0 || b.interval <= 0 || b.warmup < 0 || b.rate <= 0 || b.sockets < 0 || b.persons < 1 {
		fmt.Fprintln(stderr, "baton bench soak: -duration, -interval, -rate and -persons must be positive")
		return 2
	}
	if err := b.run(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "baton bench soak: %v\n", err)
		return 1
	}
	return 0
}

// soakSample is what one delivery got.
type soakSample struct {
	latency time.Duration
	ok      bool
}

// soakLoad posts deliveries open-loop and keeps this interval's samples.
type soakLoad struct {
	b      *soakBench
	pair   *wsBenchPair
	client *http.Client
	gen    *deliveryGen
	mu     sync.Mutex
	cur    []soakSample
	posts  sync.WaitGroup
}

func (l *soakLoad) take() []soakSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.cur
	l.cur = nil
	return out
}

// run sends deliveries until ctx ends; delivery i is due at start + i/rate
// and its latency counts from then (no coordinated omission).
func (l *soakLoad) run(ctx context.Context) {
	addrs := []string{l.pair.a.Addr(), l.pair.b.Addr()}
	start := l.b.now()
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(float64(i) / l.b.rate * float64(time.Second)))
		if d := due.Sub(l.b.now()); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return
		}
		body := l.gen.appendDelivery(nil, i)
		url := "http://" + addrs[i%2] + "/webhook"
		l.posts.Add(1)
		go func() {
			defer l.posts.Done()
			// Not ctx: a request in flight when the load stops finishes.
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(messenger.HeaderSignature256, messenger.SignSHA256(body, l.pair.secret))
			resp, err := l.client.Do(req)
			ok := false
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			l.mu.Lock()
			l.cur = append(l.cur, soakSample{latency: l.b.now().Sub(due), ok: ok})
			l.mu.Unlock()
		}()
	}
}

// soakSockets keeps n signed-in clients connected, reconnecting any that
// drop, and counts the change messages they hear.
type soakSockets struct {
	heard, drops, up atomic.Int64
	wg               sync.WaitGroup
}

func (s *soakSockets) run(ctx context.Context, p *wsBenchPair, n int) error {
	addrs := []string{p.a.Addr(), p.b.Addr()}
	dial := func(addr string) (*websocket.Conn, error) { return p.dial(ctx, addr) }
	for i := range n {
		addr := addrs[i%2]
		c, err := dial(addr)
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				s.up.Add(1)
				for {
					_, data, err := c.Read(ctx)
					if err != nil {
						break
					}
					if bytes.Contains(data, []byte(`"change"`)) {
						s.heard.Add(1)
					}
				}
				s.up.Add(-1)
				c.CloseNow()
				if ctx.Err() != nil {
					return
				}
				s.drops.Add(1)
				for {
					if c, err = dial(addr); err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Second)
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	return nil
}

// soakMemory is the process after a forced collection.
type soakMemory struct {
	goroutines int
	heap       uint64 // live heap
	stacks     uint64
	rss        uint64
}

func measureSoak() soakMemory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return soakMemory{goroutines: runtime.NumGoroutine(), heap: ms.HeapAlloc, stacks: ms.StackInuse, rss: rssBytes()}
}

// rssBytes is the process's resident set (Linux), 0 when unknown.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(n uint64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

func (b *soakBench) run(ctx context.Context, stdout, stderr io.Writer) error {
	p, stop, err := startBenchPair(ctx, stderr)
	if err != nil {
		return err
	}
	defer stop()
	load := &soakLoad{b: b, pair: p, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		gen: newDeliveryGen(p.page, 1, 1400, 200, b.persons, b.now)}
	fmt.Fprintf(stdout, "two instances on one private PostgreSQL, in this process (GOMAXPROCS=%d); %g deliveries/s from %d people; %d sockets\n",
		runtime.GOMAXPROCS(0), b.rate, b.persons, b.sockets)

	// Baseline: after a warm-up with the whole load, with every client
	// gone again, the way the end is measured.
	quiesce := func() (soakMemory, error) {
		load.posts.Wait()
		load.client.CloseIdleConnections()
		// The servers have let go of every websocket, and then of the
		// HTTP connections (their goroutines end on the close; counted
		// settled once the number stops moving for half a second).
		ws := &wsBench{now: b.now}
		for _, inst := range []*instance{p.a, p.b} {
			if err := ws.waitSockets(ctx, inst, 0); err != nil {
				return soakMemory{}, err
			}
		}
		n, still := runtime.NumGoroutine(), b.now()
		for deadline := b.now().Add(10 * time.Second); b.now().Before(deadline) && b.now().Sub(still) < 500*time.Millisecond; {
			time.Sleep(50 * time.Millisecond)
			if m := runtime.NumGoroutine(); m != n {
				n, still = m, b.now()
			}
		}
		return measureSoak(), nil
	}
	phase := func(d time.Duration, row func(elapsed, span time.Duration, socks *soakSockets)) error {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		socks := &soakSockets{}
		if err := socks.run(lctx, p, b.sockets); err != nil {
			return err
		}
		loading := make(chan struct{})
		go func() { defer close(loading); load.run(lctx) }()
		tick := time.NewTicker(b.interval)
		defer tick.Stop()
		end := time.After(d)
		start := b.now()
		prev := start
		emit := func() {
			if now := b.now(); row != nil && now.Sub(prev) >= time.Second {
				row(now.Sub(start).Round(time.Second), now.Sub(prev), socks)
				prev = now
			}
		}
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-end:
				emit() // the last, partial interval
				cancel()
				// The sender has stopped adding requests before anyone
				// waits for those in flight.
				<-loading
				socks.wg.Wait()
				return nil
			case <-tick.C:
				emit()
			}
		}
	}
	if err := phase(b.warmup, nil); err != nil {
		return err
	}
	load.take()
	base, err := quiesce()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "baseline after %s warm-up: %d goroutines, heap %s MiB, stacks %s MiB, RSS %s MiB\n",
		b.warmup, base.goroutines, mib(base.heap), mib(base.stacks), mib(base.rss))

	fmt.Fprintln(stdout, "elapsed | acked/s | non-200 | p50 | p99 | max | socket changes/s | sockets up | drops | goroutines | heap MiB | RSS MiB")
	var first, last time.Duration
	var heard int64
	rows := 0
	err = phase(b.duration, func(elapsed, span time.Duration, socks *soakSockets) {
		ss := load.take()
		lat := make([]time.Duration, 0, len(ss))
		bad := 0
		for _, s := range ss {
			if s.ok {
				lat = append(lat, s.latency)
			} else {
				bad++
			}
		}
		slices.Sort(lat)
		m := measureSoak()
		p99 := percentile(lat, 0.99)
		if rows++; rows == 1 {
			first = p99
		}
		last = p99
		var maxLat time.Duration
		if len(lat) > 0 {
			maxLat = lat[len(lat)-1]
		}
		h := socks.heard.Load()
		fmt.Fprintf(stdout, "%s | %.0f | %d | %s | %s | %s | %.0f | %d | %d | %d | %s | %s\n",
			elapsed, float64(len(lat))/span.Seconds(), bad,
			fmtMS(percentile(lat, 0.5)), fmtMS(p99), fmtMS(maxLat), float64(h-heard)/span.Seconds(),
			socks.up.Load(), socks.drops.Load(), m.goroutines, mib(m.heap), mib(m.rss))
		heard = h
	})
	if err != nil {
		return err
	}
	end, err := quiesce()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "after the load, every client gone: %d goroutines (baseline %d), heap %s MiB (baseline %s), stacks %s MiB (baseline %s), RSS %s MiB (baseline %s)\n",
		end.goroutines, base.goroutines, mib(end.heap), mib(base.heap), mib(end.stacks), mib(base.stacks), mib(end.rss), mib(base.rss))
	fmt.Fprintf(stdout, "p99 first interval %s, last interval %s\n", fmtMS(first), fmtMS(last))
	var problems []string
	if end.goroutines > base.goroutines+20 {
		problems = append(problems, fmt.Sprintf("%d goroutines more than the baseline", end.goroutines-base.goroutines))
	}
	if end.heap > base.heap*3/2+8<<20 {
		problems = append(problems, fmt.Sprintf("live heap grew from %s to %s MiB", mib(base.heap), mib(end.heap)))
	}
	if len(problems) > 0 {
		return errors.New("not flat: " + strings.Join(problems, "; "))
	}
	fmt.Fprintln(stdout, "flat: goroutines and live heap back to the baseline")
	return nil
}
