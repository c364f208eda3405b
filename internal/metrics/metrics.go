// Package metrics exposes Baton's Prometheus metrics on /metrics: webhook
// deliveries by result with their latency, events, the outbox (depth, age,
// results by Facebook error code), Graph API latency, websocket
// connections, conversations by status, database pool stats and the Go
// runtime. Counters that the ingester already keeps are read at scrape
// time rather than counted twice.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Sources are what the metrics read at scrape time.
type Sources struct {
	DB     *sql.DB
	Ingest func() map[string]int64
	// Sockets is the number of open websockets on this instance.
	Sockets func() int
}

// Metrics is the registry and the instruments the code updates.
type Metrics struct {
	reg            *prometheus.Registry
	webhookLatency *prometheus.HistogramVec
	outboxResults  *prometheus.CounterVec
	graphLatency   *prometheus.HistogramVec
}

// New registers every metric.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.webhookLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "baton_webhook_request_seconds",
		Help:    "Time to answer a webhook POST, by HTTP status (200 only once durable).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"status"})
	m.outboxResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "baton_outbox_attempts_total",
		Help: "Outbox attempts by kind, result and Facebook error code (0: none).",
	}, []string{"kind", "result", "code"})
	m.graphLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "baton_graph_request_seconds",
		Help:    "Graph API call latency by call and outcome.",
		Buckets: prometheus.DefBuckets,
	}, []string{"call", "outcome"})
	m.reg.MustRegister(m.webhookLatency, m.outboxResults, m.graphLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.DB != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(src.DB, "baton"), &dbCollector{db: src.DB})
	}
	if src.Ingest != nil {
		m.reg.MustRegister(&ingestCollector{stats: src.Ingest})
	}
	if src.Sockets != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "baton_websocket_connections", Help: "Open websockets on this instance.",
		}, func() float64 { return float64(src.Sockets()) }))
	}
	return m
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// ObserveOutbox counts one outbox attempt.
func (m *Metrics) ObserveOutbox(kind, result string, code int) {
	m.outboxResults.WithLabelValues(kind, result, strconv.Itoa(code)).Inc()
}

// ObserveGraph records one Graph API call.
func (m *Metrics) ObserveGraph(call string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.graphLatency.WithLabelValues(call, outcome).Observe(d.Seconds())
}

// InstrumentWebhook times POST /webhook by status.
func (m *Metrics) InstrumentWebhook(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/webhook" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status.Load()
		if status == 0 {
			status = http.StatusOK
		}
		m.webhookLatency.WithLabelValues(strconv.Itoa(int(status))).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status atomic.Int32
}

func (w *statusWriter) WriteHeader(code int) {
	w.status.CompareAndSwap(0, int32(code))
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.status.CompareAndSwap(0, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ingestCollector reports the ingester's own counters.
type ingestCollector struct{ stats func() map[string]int64 }

var ingestDesc = prometheus.NewDesc("baton_webhook_deliveries_total",
	"Webhook deliveries and events by result (accepted, duplicates, events, malformed, bad_signature, unavailable, batches).",
	[]string{"result"}, nil)

func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ingestDesc }

func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.stats() {
		ch <- prometheus.MustNewConstMetric(ingestDesc, prometheus.CounterValue, float64(v), k)
	}
}

// dbCollector reads queue and conversation gauges at scrape time.
type dbCollector struct{ db *sql.DB }

var (
	outboxDepth = prometheus.NewDesc("baton_outbox_queue", "Outbox entries by status.", []string{"status"}, nil)
	outboxAge   = prometheus.NewDesc("baton_outbox_oldest_pending_seconds", "Age of the oldest pending outbox entry.", nil, nil)
	convByState = prometheus.NewDesc("baton_conversations", "Conversations by Baton status.", []string{"status"}, nil)
)

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepth
	ch <- outboxAge
	ch <- convByState
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if rows, err := c.db.QueryContext(ctx, `select status, count(*) from outbox where status in ('pending', 'sending', 'failed') group by status`); err == nil {
		for rows.Next() {
			var s string
			var n float64
			if rows.Scan(&s, &n) == nil {
				ch <- prometheus.MustNewConstMetric(outboxDepth, prometheus.GaugeValue, n, s)
			}
		}
		rows.Close()
	}
	var age sql.NullFloat64
	if c.db.QueryRowContext(ctx, `select extract(epoch from now() - min(created_at)) from outbox where status in ('pending', 'sending')`).Scan(&age) == nil {
		ch <- prometheus.MustNewConstMetric(outboxAge, prometheus.GaugeValue, age.Float64)
	}
	if rows, err := c.db.QueryContext(ctx, `select status, count(*) from conversations group by status`); err == nil {
		for rows.Next() {
			var s string
			var n float64
			if rows.Scan(&s, &n) == nil {
				ch <- prometheus.MustNewConstMetric(convByState, prometheus.GaugeValue, n, s)
			}
		}
		rows.Close()
	}
}
