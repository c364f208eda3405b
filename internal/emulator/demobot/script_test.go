package demobot

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		text, payload string
		attachment    bool
		want          intent
	}{
		{"hi", "", false, intentGreeting},
		{"Hello there", "", false, intentGreeting},
		{"Good morning!", "", false, intentGreeting},
		{"", payloadGetStarted, false, intentGreeting},
		{"talk to a human", "", false, intentHuman},
		{"Can I speak to an AGENT please", "", false, intentHuman},
		{"I want a real person", "", false, intentHuman},
		{"let me talk to someone", "", false, intentHuman},
		{"representative", "", false, intentHuman},
		{"Talk to a person", payloadHuman, false, intentHuman},
		{"anything", payloadHuman, false, intentHuman},
		{"hi, where is my refund? get me a human", "", false, intentHuman},
		{"Where is my order?", "", false, intentOrderStatus},
		{"ORDER STATUS", "", false, intentOrderStatus},
		{"Order status", payloadOrderStatus, false, intentOrderStatus},
		{"can I track my parcel", "", false, intentOrderStatus},
		{"I placed an order yesterday", "", false, intentOrderStatus},
		{"When do you open?", "", false, intentHours},
		{"opening hours", "", false, intentHours},
		{"Opening hours", payloadHours, false, intentHours},
		{"how do returns work", "", false, intentReturns},
		{"I want a refund for my order", "", false, intentReturns},
		{"Refund policy?", "", false, intentReturns},
		{"how much is shipping", "", false, intentShipping},
		{"Do you deliver to Canada?", "", false, intentShipping},
		{"thanks!", "", false, intentThanks},
		{"", "", true, intentAttachment},
		{"asdf qwerty", "", false, intentUnknown},
		{"", "", false, intentUnknown},
		{"my reagent is personal", "", false, intentUnknown}, // whole words only
		{"purple elephants", "UNKNOWN_PAYLOAD", false, intentUnknown},
	}
	for _, tt := range tests {
		if got := classify(tt.text, tt.payload, tt.attachment); got != tt.want {
			t.Errorf("classify(%q, %q, %v) = %v, want %v", tt.text, tt.payload, tt.attachment, got, tt.want)
		}
	}
}

func TestMentionsBilling(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"I was charged twice", true},
		{"where is my REFUND", true},
		{"need an invoice", true},
		{"my payment failed", true},
		{"where is my order", false},
		{"my phone charger broke", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := mentionsBilling(tt.text); got != tt.want {
			t.Errorf("mentionsBilling(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestAnswer(t *testing.T) {
	tests := []struct {
		in       intent
		contains string
		ok       bool
	}{
		{intentOrderStatus, "northwind.example/orders", true},
		{intentHours, "Monday to Saturday", true},
		{intentReturns, "30 days", true},
		{intentShipping, "3–5 business days", true},
		{intentGreeting, "Hi again", true},
		{intentThanks, "welcome", true},
		{intentAttachment, "Talk to a person", true},
		{intentHuman, "", false},
		{intentUnknown, "", false},
	}
	for _, tt := range tests {
		got, ok := answer(tt.in)
		if ok != tt.ok || !strings.Contains(got, tt.contains) {
			t.Errorf("answer(%v) = %q, %v; want containing %q, %v", tt.in, got, ok, tt.contains, tt.ok)
		}
	}
}

func TestGreeting(t *testing.T) {
	if got := greeting("Peter"); !strings.HasPrefix(got, "Hi Peter! I'm the Northwind bot") {
		t.Errorf("greeting(Peter) = %q", got)
	}
	if got := greeting(""); !strings.HasPrefix(got, "Hi there! I'm the Northwind bot") {
		t.Errorf("greeting(\"\") = %q", got)
	}
}

func TestBuildPassMetadata(t *testing.T) {
	long := strings.Repeat("ö\"<", 2000)
	tests := []struct {
		name                         string
		reason, summary, team, asked string
		wantAsked                    string
	}{
		{"human", reasonAskedForHuman, "Ana asked to talk to a person.", teamSupport, "talk to a human", "talk to a human"},
		{"billing", reasonBotFailed, "The bot did not understand Ana twice in a row.", teamBilling, "I was charged twice??", "I was charged twice??"},
		{"huge text still fits", reasonAskedForHuman, long, teamSupport, long, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := buildPassMetadata(tt.reason, tt.summary, tt.team, tt.asked)
			if len(raw) > maxMetadata {
				t.Fatalf("metadata is %d bytes, over %d", len(raw), maxMetadata)
			}
			var m map[string]string
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatalf("metadata is not a JSON object: %v\n%s", err, raw)
			}
			if m["reason"] != tt.reason || m["team"] != tt.team {
				t.Errorf("reason, team = %q, %q; want %q, %q", m["reason"], m["team"], tt.reason, tt.team)
			}
			if tt.wantAsked != "" && m["asked"] != tt.wantAsked {
				t.Errorf("asked = %q, want %q", m["asked"], tt.wantAsked)
			}
			if tt.wantAsked == "" && !utf8.ValidString(m["asked"]) {
				t.Errorf("asked was cut inside a character: %q", m["asked"])
			}
			if _, ok := m["summary"]; !ok {
				t.Error("summary missing")
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		reason, name string
		topics       []string
		want         string
	}{
		{reasonAskedForHuman, "Ana", nil, "Ana asked to talk to a person."},
		{reasonAskedForHuman, "", []string{"returns"}, "The customer asked to talk to a person. Bot answered: returns."},
		{reasonBotFailed, "Ana", []string{"hours", "shipping"}, "The bot did not understand Ana twice in a row. Bot answered: hours, shipping."},
		{reasonRequested, "", nil, "Handed over on request of your team."},
	}
	for _, tt := range tests {
		if got := summarize(tt.reason, tt.name, tt.topics); got != tt.want {
			t.Errorf("summarize(%q, %q, %v) = %q, want %q", tt.reason, tt.name, tt.topics, got, tt.want)
		}
	}
}

func TestHandBackReply(t *testing.T) {
	tests := []struct {
		name       string
		metadata   string
		quiet      bool
		contains   []string
		notContain []string
	}{
		{"resolved with agent and billing tag",
			`{"v":1,"outcome":"resolved","note":"Refund issued","tags":["billing"],"agent":{"id":"u_12","name":"Ana"},"conversation_id":"c_8f2e","handled_seconds":412}`,
			false, []string{"Glad that's sorted!", "Ana", "charge"}, []string{"Refund issued"}},
		{"resolved bare", `{"v":1,"outcome":"resolved"}`, false, []string{"Glad that's sorted!"}, []string{"Thanks for chatting with"}},
		{"unresolved", `{"v":1,"outcome":"unresolved","agent":{"name":"Sam"}}`, false,
			[]string{"Sorry we couldn't fix it yet — ", "Sam has noted"}, nil},
		{"escalated", `{"v":1,"outcome":"escalated","agent":{"name":"Ana"}}`, false,
			[]string{"Your case was escalated", "by Ana"}, nil},
		{"idle", `{"v":1,"outcome":"idle"}`, false, []string{"Looks like our team got busy — I'm back"}, nil},
		{"spam is quiet", `{"v":1,"outcome":"spam","agent":{"name":"Ana"}}`, true, nil, nil},
		{"unknown outcome reads as unresolved", `{"v":2,"outcome":"teleported"}`, false,
			[]string{"Sorry we couldn't fix it yet"}, nil},
		{"outcome of another type reads as unresolved", `{"outcome":42}`, false,
			[]string{"Sorry we couldn't fix it yet"}, nil},
		{"outcome case-insensitive", `{"outcome":"RESOLVED"}`, false, []string{"Glad that's sorted!"}, nil},
		{"agent as plain string", `{"outcome":"resolved","agent":"Lee"}`, false, []string{"Lee"}, nil},
		{"unknown tags ignored, known one used", `{"outcome":"resolved","tags":["zzz",7,"shipping"]}`, false,
			[]string{"follow your parcel"}, nil},
		{"page inbox plain text", "Pass thread control from Page Inbox", false, []string{textNeutralBack}, nil},
		{"empty metadata", "", false, []string{textNeutralBack}, nil},
		{"JSON without outcome", `{"reason":"whatever"}`, false, []string{textNeutralBack}, nil},
		{"JSON array", `["resolved"]`, false, []string{textNeutralBack}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, quiet := handBackReply(tt.metadata)
			if quiet != tt.quiet {
				t.Fatalf("quiet = %v, want %v (text %q)", quiet, tt.quiet, got)
			}
			if quiet && got != "" {
				t.Errorf("quiet reply has text %q", got)
			}
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("reply %q does not contain %q", got, c)
				}
			}
			for _, c := range tt.notContain {
				if strings.Contains(got, c) {
					t.Errorf("reply %q contains %q", got, c)
				}
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Minute, "10m"},
		{90 * time.Minute, "1h30m"},
		{time.Hour, "1h"},
		{45 * time.Second, "45s"},
		{2*time.Minute + 5*time.Second, "2m5s"},
		{250 * time.Millisecond, "250ms"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
