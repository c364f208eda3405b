package web

import (
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

func TestNoteParts(t *testing.T) {
	handles := map[string]bool{"ana": true, "bo": true}
	cases := []struct {
		text string
		want []templates.NotePart
	}{
		{"plain", []templates.NotePart{{Text: "plain"}}},
		{"@ana look", []templates.NotePart{{Text: "@ana", Mention: true}, {Text: " look"}}},
		{"ask @Bo, then @zed.", []templates.NotePart{{Text: "ask "}, {Text: "@Bo", Mention: true}, {Text: ", then @zed."}}},
		{"mail ana@x.com", []templates.NotePart{{Text: "mail ana@x.com"}}},
		{"<b>@ana</b>", []templates.NotePart{{Text: "<b>"}, {Text: "@ana", Mention: true}, {Text: "</b>"}}},
	}
	for _, c := range cases {
		got := noteParts(c.text, handles)
		if len(got) != len(c.want) {
			t.Errorf("noteParts(%q) = %+v, want %+v", c.text, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("noteParts(%q) = %+v, want %+v", c.text, got, c.want)
				break
			}
		}
	}
}

func TestLastAuthor(t *testing.T) {
	p := &baton.Page{BatonAppID: "10", PrimaryAppID: "20"}
	cases := []struct {
		x    baton.ListExtra
		want string
	}{
		{baton.ListExtra{}, ""},
		{baton.ListExtra{LastAuthor: baton.AuthorUser}, ""},
		{baton.ListExtra{LastAuthor: baton.AuthorAgent, LastAppID: "10"}, "Agent"},
		{baton.ListExtra{LastAuthor: baton.AuthorBot, LastAppID: "20"}, "Bot"},
		{baton.ListExtra{LastAuthor: baton.AuthorPageInbox}, "Page Inbox"},
		{baton.ListExtra{LastAuthor: baton.AuthorApp, LastAppID: "30"}, "App"},
	}
	for _, c := range cases {
		if got := lastAuthor(p, &c.x); got != c.want {
			t.Errorf("lastAuthor(%+v) = %q, want %q", c.x, got, c.want)
		}
	}
}

func TestCannedShortcut(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"refund", "refund", true},
		{" /refund ", "refund", true},
		{"", "", false},
		{"/", "", false},
		{"two words", "", false},
		{"a/b", "", false},
	}
	for _, c := range cases {
		got, err := cannedShortcut(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("cannedShortcut(%q) = %q, %v; want %q ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestContactOutcomes(t *testing.T) {
	c := &Console{}
	conv := &baton.Conversation{PSID: "123456", FirstName: "Ana", CreatedAt: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}
	hos := []*baton.Handover{
		{Kind: "pass", TimestampMS: 1000},
		{Kind: "done", Metadata: `{"v":1,"outcome":"resolved","note":"refunded"}`, TimestampMS: 2000},
		{Kind: "take", TimestampMS: 3000},
		{Kind: "idle_return", Metadata: `{"v":1,"outcome":"idle"}`, TimestampMS: 4000},
		{Kind: "done", Metadata: `not json`, TimestampMS: 5000},
	}
	cp := c.contactProps(conv, hos)
	want := []string{"done", "idle", "taken back by the bot", "resolved"}
	if len(cp.Outcomes) != len(want) {
		t.Fatalf("outcomes = %+v, want %v", cp.Outcomes, want)
	}
	for i, w := range want {
		if cp.Outcomes[i].Outcome != w {
			t.Errorf("outcome %d = %q, want %q", i, cp.Outcomes[i].Outcome, w)
		}
	}
	if cp.Outcomes[3].Note != "refunded" || cp.FirstSeen != "Jan 2, 2026 03:04" || cp.PSID != "123456" {
		t.Errorf("contact = %+v", cp)
	}
}
