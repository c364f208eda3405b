package demobot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestChallenge(t *testing.T) {
	b := New(Config{EmulatorURL: "http://127.0.0.1:1", VerifyToken: "s3cret", Logger: quietLogger()})
	defer b.Close()
	tests := []struct {
		name     string
		query    url.Values
		status   int
		wantBody string
	}{
		{"good", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"s3cret"}, "hub.challenge": {"1158201444"}}, 200, "1158201444"},
		{"wrong token", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"nope"}, "hub.challenge": {"1"}}, 403, ""},
		{"token prefix", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"s3cre"}, "hub.challenge": {"1"}}, 403, ""},
		{"wrong mode", url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {"s3cret"}, "hub.challenge": {"1"}}, 403, ""},
		{"missing challenge", url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"s3cret"}}, 400, ""},
		{"nothing", url.Values{}, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			b.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/webhook?"+tt.query.Encode(), nil))
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if tt.status == 200 {
				if got := rec.Body.String(); got != tt.wantBody {
					t.Errorf("body = %q, want %q", got, tt.wantBody)
				}
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type = %q", ct)
				}
			}
		})
	}
}

func TestDeliverySignature(t *testing.T) {
	b := New(Config{EmulatorURL: "http://127.0.0.1:1", Secret: "appsecret", Logger: quietLogger()})
	defer b.Close()
	// An app_roles event: valid, but with no person, so it causes no Graph call.
	body := []byte(`{"object":"page","entry":[{"id":"100200300","time":1,"messaging":[{"recipient":{"id":"100200300"},"timestamp":1,"app_roles":{"1500000001":["primary_receiver"]}}]}]}`)
	good := sign("appsecret", body)
	tests := []struct {
		name   string
		method string
		header string
		body   []byte
		status int
	}{
		{"good", http.MethodPost, good, body, 200},
		{"good, uppercase hex", http.MethodPost, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, 200},
		{"wrong secret", http.MethodPost, sign("other", body), body, 403},
		{"body changed", http.MethodPost, good, append([]byte(" "), body...), 403},
		{"missing", http.MethodPost, "", body, 403},
		{"sha1 only", http.MethodPost, "sha1=" + strings.Repeat("0", 40), body, 403},
		{"not hex", http.MethodPost, "sha256=zz", body, 403},
		{"malformed JSON, signed", http.MethodPost, sign("appsecret", []byte("{nope")), []byte("{nope"), 400},
		{"other object ignored", http.MethodPost, sign("appsecret", []byte(`{"object":"user","entry":[]}`)), []byte(`{"object":"user","entry":[]}`), 200},
		{"method", http.MethodPut, good, body, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/webhook", strings.NewReader(string(tt.body)))
			if tt.header != "" {
				req.Header.Set("X-Hub-Signature-256", tt.header)
			}
			rec := httptest.NewRecorder()
			b.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tt.status, rec.Body.String())
			}
			if tt.status == 200 {
				if got, _ := io.ReadAll(rec.Body); string(got) != "EVENT_RECEIVED" {
					t.Errorf("body = %q", got)
				}
			}
		})
	}
}

func TestDeliveryAfterClose(t *testing.T) {
	b := New(Config{EmulatorURL: "http://127.0.0.1:1", Secret: "s", Logger: quietLogger()})
	b.Close()
	b.Close() // idempotent
	body := []byte(`{"object":"page","entry":[]}`)
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(string(body)))
	req.Header.Set("X-Hub-Signature-256", sign("s", body))
	rec := httptest.NewRecorder()
	b.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
}

func TestParseDelivery(t *testing.T) {
	body := `{"object":"page","entry":[
	 {"id":"100200300","time":1,
	  "messaging":[
	   {"sender":{"id":"700800900"},"recipient":{"id":"100200300"},"timestamp":"1458692752478","message":{"mid":"m_1","text":"hi","quick_reply":{"payload":"TALK_TO_HUMAN"}}},
	   {"sender":{"id":700800901},"recipient":{"id":"100200300"},"timestamp":1458692752478.0,
	    "pass_thread_control":{"previous_owner_app_id":null,"new_owner_app_id":15000000010000000001,"metadata":null}},
	   {"sender":{"id":"700800902"},"recipient":{"id":"100200300"},"timestamp":3,"take_thread_control":{"previous_owner_app_id":"2500000002"}},
	   {"sender":{"id":"700800903"},"recipient":{"id":"100200300"},"timestamp":4,"request_thread_control":{"requested_owner_app_id":2500000002,"metadata":{"odd":true}}},
	   {"sender":{"id":"700800904"},"recipient":{"id":"100200300"},"timestamp":5,"message_edit":{"mid":"m_1","text":"new"}},
	   {"sender":"not an object"},
	   {"recipient":{"id":"100200300"},"timestamp":6,"app_roles":{"1500000001":["primary_receiver"]}}
	  ],
	  "standby":[
	   {"sender":{"id":"100200300"},"recipient":{"id":"700800900"},"timestamp":7,"message":{"is_echo":true,"app_id":2500000002,"mid":"m_2","text":"On it!"}}
	  ],
	  "changes":[{"field":"feed"}]}
	]}`
	events, err := parseDelivery([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 7 {
		t.Fatalf("got %d events, want 7 (the undecodable one skipped)", len(events))
	}
	tests := []struct {
		i       int
		psid    string
		standby bool
		check   func(event) bool
	}{
		{0, "700800900", false, func(ev event) bool {
			return ev.Timestamp == 1458692752478 && ev.Message.QuickReply.Payload == payloadHuman
		}},
		{1, "700800901", false, func(ev event) bool {
			return ev.Pass.NewOwner == "15000000010000000001" && ev.Pass.PreviousOwner == "" && ev.Pass.Metadata == ""
		}},
		{2, "700800902", false, func(ev event) bool { return ev.Take.PreviousOwner == "2500000002" }},
		{3, "700800903", false, func(ev event) bool {
			return ev.Request.RequestedOwner == "2500000002" && ev.Request.Metadata == `{"odd":true}`
		}},
		{4, "700800904", false, func(ev event) bool { return ev.Message == nil && ev.Pass == nil }},
		{5, "", false, func(ev event) bool { return ev.Sender == nil }},
		{6, "700800900", true, func(ev event) bool { return ev.Message.IsEcho && ev.Message.AppID == "2500000002" }},
	}
	for _, tt := range tests {
		in := events[tt.i]
		if in.psid() != tt.psid || in.standby != tt.standby || !tt.check(in.ev) {
			t.Errorf("event %d: psid %q standby %v %+v", tt.i, in.psid(), in.standby, in.ev)
		}
	}
}

func TestParseDeliveryRejectsNonEnvelope(t *testing.T) {
	for _, body := range []string{"", "[]", `{"entry":"x"}`, `{"entry":[{"messaging":{}}]}`} {
		if _, err := parseDelivery([]byte(body)); err == nil {
			t.Errorf("parseDelivery(%q) = nil error", body)
		}
	}
}

// sign is the X-Hub-Signature-256 value a platform sends for body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
