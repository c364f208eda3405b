package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestLaxToJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{id:700800900}`, `{"id":700800900}`},
		{`{'id':'700800900'}`, `{"id":"700800900"}`},
		{`{"id":"7"}`, `{"id":"7"}`},
		{`{text:'it\'s "ok"'}`, `{"text":"it's \"ok\""}`},
		{`{a:true,b:null,c:[1,2]}`, `{"a":true,"b":null,"c":[1,2]}`},
	}
	for _, tt := range tests {
		got, err := laxToJSON(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got != tt.want {
			t.Fatalf("laxToJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Fatalf("laxToJSON(%s) is not JSON", tt.in)
		}
	}
	if _, err := laxToJSON(`{'open`); err == nil {
		t.Fatal("unterminated string accepted")
	}
}

func TestIDText(t *testing.T) {
	tests := []struct {
		in   any
		want string
		ok   bool
	}{
		{"1500000001", "1500000001", true},
		{json.Number("263902037430900"), "263902037430900", true},
		{json.Number("12345678901234567890"), "12345678901234567890", true},
		{json.Number("1500000001.0"), "1500000001", true},
		{json.Number("1.5e9"), "", false},
		{"abc", "", false},
		{"", "", false},
		{float64(12), "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := idText(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Fatalf("idText(%v) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseParamsForms(t *testing.T) {
	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
	}{
		{"json", "/me/messages", "application/json", `{"recipient":{"id":"700800900"},"metadata":"m","access_token":"tok"}`},
		{"json numeric id", "/me/messages", "application/json", `{"recipient":{"id":700800900},"metadata":"m","access_token":"tok"}`},
		{"form with json strings", "/me/messages", "application/x-www-form-urlencoded",
			"recipient=" + url.QueryEscape(`{"id":"700800900"}`) + "&metadata=m&access_token=tok"},
		{"form with lax json", "/me/messages", "application/x-www-form-urlencoded",
			"recipient=" + url.QueryEscape(`{id:700800900}`) + "&metadata=m&access_token=tok"},
		{"query only", "/me/messages?recipient=" + url.QueryEscape(`{"id":"700800900"}`) + "&metadata=m&access_token=tok", "", ""},
		{"lax json body", "/me/messages", "application/json", `{recipient:{id:700800900},metadata:'m',access_token:'tok'}`},
		{"json without content type", "/me/messages", "", `{"recipient":{"id":"700800900"},"metadata":"m","access_token":"tok"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			p, err := parseParams(req)
			if err != nil {
				t.Fatal(err)
			}
			obj, ok, err := p.object("recipient")
			if err != nil || !ok {
				t.Fatalf("recipient: %v, %v", ok, err)
			}
			if id, ok := idText(obj["id"]); !ok || id != "700800900" {
				t.Fatalf("recipient id %v", obj["id"])
			}
			if md, ok := p.str("metadata"); !ok || md != "m" {
				t.Fatalf("metadata %q", md)
			}
			tok := p.bodyToken
			if tok == "" {
				tok = req.URL.Query().Get("access_token")
			}
			if tok != "tok" {
				t.Fatalf("token %q", tok)
			}
		})
	}
}

func TestGraphAcceptsEveryForm(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app("1500000001", "primary_receiver", nil, false)
	psid := hs.user()
	hs.say(psid, "hi")
	recipient := `{"id":"` + psid + `"}`
	tests := []struct {
		name        string
		target      string
		contentType string
		body        string
		header      []string
	}{
		{"json, token in query", "/me/messages?access_token=" + bot, "application/json",
			`{"recipient":` + recipient + `,"messaging_type":"RESPONSE","message":{"text":"a"}}`, nil},
		{"versioned page node, token in body", "/v25.0/100200300/messages", "application/json",
			`{"recipient":` + recipient + `,"messaging_type":"RESPONSE","message":{"text":"b"},"access_token":"` + bot + `"}`, nil},
		{"form, bearer token", "/v2.6/me/messages", "application/x-www-form-urlencoded",
			"recipient=" + url.QueryEscape(recipient) + "&messaging_type=RESPONSE&message=" + url.QueryEscape(`{"text":"c"}`),
			[]string{"Authorization", "Bearer " + bot}},
		{"query only", "/me/messages?access_token=" + bot + "&messaging_type=RESPONSE&recipient=" + url.QueryEscape(recipient) +
			"&message=" + url.QueryEscape(`{text:'d'}`), "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := hs.do("POST", tt.target, tt.contentType, tt.body, tt.header...)
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, out)
			}
			if out["recipient_id"] != psid || !strings.HasPrefix(out["message_id"].(string), "m_") || len(out["message_id"].(string)) < 42 {
				t.Fatalf("answer %v", out)
			}
		})
	}
}

func TestAppsecretProof(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app("1500000001", "primary_receiver", nil, false)
	psid := hs.user()
	good, _ := sign("s1500000001", []byte(bot))
	tests := []struct {
		proof string
		code  int64
	}{
		{"", 0},
		{good, 0},
		{strings.ToUpper(good), 0},
		{strings.Repeat("0", 64), 100},
	}
	for _, tt := range tests {
		target := "/me/thread_owner?recipient=" + psid + "&access_token=" + bot
		if tt.proof != "" {
			target += "&appsecret_proof=" + tt.proof
		}
		_, out := hs.do("GET", target, "", "")
		if c, _ := graphCode(out); c != tt.code {
			t.Fatalf("proof %q: code %d, want %d (%v)", tt.proof, c, tt.code, out)
		}
	}
}

func TestGraphMe(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	bot := hs.app(botID, "primary_receiver", nil, false)
	for _, path := range []string{"/me", "/v25.0/me", "/v25.0/100200300"} {
		_, out := hs.graph(bot, "GET", path, nil)
		if out["id"] != "100200300" || out["name"] != "Baton Demo Page" {
			t.Fatalf("%s: %v", path, out)
		}
	}
}
