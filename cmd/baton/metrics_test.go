package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// /metrics reports ingest, the outbox, conversations, the pool and the
// runtime, after real traffic.
func TestMetricsEndpoint(t *testing.T) {
	s := bootStack(t, nil)
	handedOver(t, s, "Mia", "Wong")
	resp, err := http.Get(s.ConsoleURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`baton_webhook_deliveries_total{result="accepted"}`,
		`baton_webhook_request_seconds_bucket{status="200"`,
		`baton_conversations{status="open"} 1`,
		`baton_graph_request_seconds_count{call="user_profile",outcome="ok"}`,
		`baton_websocket_connections 0`,
		`go_goroutines`,
		`go_sql_open_connections{db_name="baton"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
