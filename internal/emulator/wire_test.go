package emulator

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestMetaEscape(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"ascii", map[string]string{"text": "hi"}, `{"text":"hi"}`},
		{"latin", map[string]string{"text": "äöå"}, `{"text":"\u00e4\u00f6\u00e5"}`},
		{"emoji surrogate pair", map[string]string{"text": "😀"}, `{"text":"\ud83d\ude00"}`},
		{"heart with selector", map[string]string{"e": "❤️"}, `{"e":"\u2764\ufe0f"}`},
		{"slash", map[string]string{"url": "https://cdn.example/a.jpg"}, `{"url":"https:\/\/cdn.example\/a.jpg"}`},
		{"backslash then slash", map[string]string{"s": `a\/`}, `{"s":"a\\\/"}`},
		{"html kept", map[string]string{"s": "<b>&</b>"}, `{"s":"<b>&<\/b>"}`},
		{"quote and control", map[string]string{"s": "\"\n"}, `{"s":"\"\n"}`},
		{"key escaped too", map[string]int{"é": 1}, `{"\u00e9":1}`},
		{"cjk", []string{"日本"}, `["\u65e5\u672c"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serialise(tt.in, "meta")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("serialise = %s, want %s", got, tt.want)
			}
			for _, c := range got {
				if c >= 0x80 {
					t.Fatalf("non-ASCII byte %#x in %s", c, got)
				}
			}
			// The escaped form must decode to the same value as the plain one.
			plain, err := serialise(tt.in, "plain")
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(plain, &b); err != nil {
				t.Fatal(err)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("meta decodes to %s, plain to %s", ja, jb)
			}
		})
	}
}

func TestSerialisePlainKeepsUTF8(t *testing.T) {
	got, err := serialise(map[string]string{"t": "ä/😀"}, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"t":"ä/😀"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestSignatureHeaders(t *testing.T) {
	// RFC-style vectors: HMAC("key", "The quick brown fox jumps over the lazy dog").
	body := []byte("The quick brown fox jumps over the lazy dog")
	const s256 = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	const s1 = "sha1=de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
	tests := []struct {
		mode       string
		want256    string
		want1      string
		wrongValue bool
	}{
		{"both", s256, s1, false},
		{"sha256", s256, "", false},
		{"sha1", "", s1, false},
		{"none", "", "", false},
		{"wrong", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			e, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			e.switches.SignatureHeaders = tt.mode
			h := e.signatureHeaders("key", body)
			if h.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", h.Get("Content-Type"))
			}
			got256, got1 := h.Get("X-Hub-Signature-256"), h.Get("X-Hub-Signature")
			if tt.wrongValue {
				if got256 == "" || got256 == s256 || got1 == "" || got1 == s1 {
					t.Fatalf("wrong mode gave %q, %q", got256, got1)
				}
				return
			}
			if got256 != tt.want256 || got1 != tt.want1 {
				t.Fatalf("headers %q, %q; want %q, %q", got256, got1, tt.want256, tt.want1)
			}
		})
	}
}

func TestGraphErrorEnvelope(t *testing.T) {
	hs := newHarness(t, ModeRouting)
	hs.ctl("PUT", "/_emulator/faults", map[string]any{"graph_down": true})
	code, out := hs.do("POST", "/v25.0/me/messages?access_token=x", "application/json", `{}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", code)
	}
	e := out["error"].(map[string]any)
	if c, _ := graphCode(out); c != 2 || e["is_transient"] != true || e["type"] != "OAuthException" {
		t.Fatalf("envelope %v", out)
	}
	if id, _ := e["fbtrace_id"].(string); len(id) < 10 {
		t.Fatalf("fbtrace_id %q", id)
	}
	hs.ctl("PUT", "/_emulator/faults", map[string]any{"graph_down": false})
	code, out = hs.do("POST", "/v25.0/me/messages?access_token=x", "application/json", `{}`)
	if c, _ := graphCode(out); code != http.StatusBadRequest || c != 190 {
		t.Fatalf("bad token: status %d, %v", code, out)
	}
	code, out = hs.do("GET", "/me/thread_owner", "", "")
	if c, _ := graphCode(out); code != http.StatusBadRequest || c != 2500 {
		t.Fatalf("/me without token: status %d, %v", code, out)
	}
	code, out = hs.do("GET", "/v25.0/me/nonsense?access_token=x", "", "")
	if c, _ := graphCode(out); code != http.StatusBadRequest || c != 2500 {
		t.Fatalf("unknown path: status %d, %v", code, out)
	}
}
