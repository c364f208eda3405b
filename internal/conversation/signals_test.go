package conversation_test

import (
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
)

// history builds a fixture conversation from lines "user: …" / "bot: …".
func history(lines ...string) []*baton.Message {
	var out []*baton.Message
	for i, l := range lines {
		who, text, _ := strings.Cut(l, ": ")
		a := baton.AuthorUser
		if who == "bot" {
			a = baton.AuthorBot
		}
		out = append(out, &baton.Message{ID: int64(i + 1), Author: a, Text: text, TimestampMS: int64(i+1) * 1000})
	}
	return out
}

func kinds(sigs []conversation.Signal) string {
	var k []string
	for _, s := range sigs {
		k = append(k, s.Kind)
	}
	return strings.Join(k, ",")
}

func TestSignals(t *testing.T) {
	fallback := "Sorry, I didn't quite get that. You can ask about order status, opening hours, or shipping."
	long := []string{}
	for i := 0; i < 7; i++ {
		long = append(long, "user: question number "+string(rune('a'+i)), "bot: answer "+string(rune('a'+i)))
	}
	tests := []struct {
		name string
		msgs []*baton.Message
		want string // signal kinds, strongest first
	}{
		{"a calm exchange", history("user: hi", "bot: Hi Maria! How can I help?", "user: opening hours?", "bot: Monday to Saturday, 9 to 6."), ""},
		{"asked for a human", history("user: hi", "bot: Hi!", "user: can I talk to a human please"), "asked_human"},
		{"asked for an agent", history("user: I want an AGENT"), "asked_human"},
		{"'agenda' is not an agent", history("user: what's on the agenda today"), ""},
		{"repeated fallbacks", history("user: blorp", "bot: "+fallback, "user: zzz", "bot: "+fallback), "fallback"},
		{"one fallback is not a pattern", history("user: blorp", "bot: "+fallback), ""},
		{"'not sure' twice, different words", history("user: a", "bot: I'm not sure what you mean.", "user: b", "bot: Hmm, not sure about that one."), "fallback"},
		{"identical bot answers twice", history("user: where is my order", "bot: Your order is on its way.", "user: WHERE is my order?!", "bot: Your order is on its way."),
			"fallback,repeated_question"},
		{"repeated question, punctuation aside", history("user: Where is my order?", "bot: It ships soon.", "user: where is my order"), "repeated_question"},
		{"fallbacks from a bot not yet known as the Primary", func() []*baton.Message {
			ms := history("user: blorp", "bot: "+fallback, "user: zzz", "bot: "+fallback)
			ms[1].Author, ms[3].Author = baton.AuthorApp, baton.AuthorApp
			return ms
		}(), "fallback"},
		{"a human in the Page Inbox is no fallback", func() []*baton.Message {
			ms := history("user: blorp", "bot: Not sure, let me check", "user: zzz", "bot: Not sure, let me check")
			ms[1].Author, ms[3].Author = baton.AuthorPageInbox, baton.AuthorPageInbox
			return ms
		}(), ""},
		{"angry words", history("user: this is ridiculous"), "angry"},
		{"shouting", history("user: I HAVE BEEN WAITING FOR DAYS"), "angry"},
		{"long exchange", history(long...), "long"},
		{"everything, strongest first", history(append(long, "user: this bot is useless, get me a human", "bot: "+fallback, "user: hello?", "bot: "+fallback)...),
			"asked_human,angry,fallback,long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := conversation.Signals(tt.msgs)
			if got := kinds(sigs); got != tt.want {
				t.Errorf("signals = %q, want %q (%+v)", got, tt.want, sigs)
			}
			for _, s := range sigs {
				if s.Label == "" || s.Detail == "" || s.Weight <= 0 {
					t.Errorf("incomplete signal %+v", s)
				}
			}
		})
	}
}

func TestScoreRanksAskingAboveLength(t *testing.T) {
	var long []string
	for i := 0; i < 10; i++ {
		long = append(long, "user: q"+string(rune('a'+i)), "bot: a"+string(rune('a'+i)))
	}
	asked := conversation.Score(conversation.Signals(history("user: talk to a person")))
	lengthy := conversation.Score(conversation.Signals(history(long...)))
	if asked <= lengthy || lengthy <= 0 {
		t.Errorf("asked %d, long %d", asked, lengthy)
	}
	if conversation.Score(nil) != 0 {
		t.Error("no signals scored above 0")
	}
}
