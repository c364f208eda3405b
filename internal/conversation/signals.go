package conversation

import (
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/baton-chat/baton/internal/baton"
)

// Signal is one reason a supervisor might step into a thread the bot still
// owns (SPEC "Beyond every peer" 4), computed from the history.
type Signal struct {
	Kind   string // asked_human, fallback, repeated_question, long, angry
	Label  string // the badge text
	Detail string // the evidence, for the badge's title
	Weight int    // how strongly it calls for a human
}

// Signal kinds and weights: asking for a person outweighs everything,
// anger and a bot that keeps failing come next.
const (
	SignalAskedHuman       = "asked_human"
	SignalFallback         = "fallback"
	SignalRepeatedQuestion = "repeated_question"
	SignalLong             = "long"
	SignalAngry            = "angry"
)

// LongExchange: more messages than this is a long exchange.
const LongExchange = 12

var humanPhrases = []string{"human", "agent", "real person", "a person", "representative", "operator",
	"someone real", "talk to someone", "speak to someone", "customer service", "live chat", "support team"}

var fallbackPhrases = []string{"didn't understand", "did not understand", "didn't get that", "didn't quite get", "not sure",
	"don't understand", "do not understand", "couldn't understand", "can you rephrase", "please rephrase"}

var angryWords = []string{"angry", "furious", "ridiculous", "useless", "terrible", "worst", "stupid",
	"awful", "unacceptable", "scam", "hate", "wtf", "pathetic", "joke", "fed up", "sick of", "rubbish", "idiot"}

// Signals computes the escalation signals of a history (oldest first),
// strongest first.
func Signals(msgs []*baton.Message) []Signal {
	var out []Signal
	var asked, angry []string
	userSeen := map[string]int{}
	var repeatedQ string
	botSeen := map[string]int{}
	fallbacks := 0
	var fallbackText string
	count := 0
	for _, m := range msgs {
		text := strings.TrimSpace(m.Text)
		if text == "" && len(m.Attachments) == 0 {
			continue
		}
		count++
		norm := normalize(text)
		switch m.Author {
		case baton.AuthorUser:
			if norm == "" {
				continue
			}
			if containsAny(norm, humanPhrases) {
				asked = append(asked, text)
			}
			if containsAny(norm, angryWords) || shouting(text) {
				angry = append(angry, text)
			}
			userSeen[norm]++
			if userSeen[norm] == 2 && repeatedQ == "" {
				repeatedQ = text
			}
		case baton.AuthorBot, baton.AuthorApp:
			// Before Baton learns the Primary's id, the bot's echoes are
			// labelled as another app's; both are automated answers.
			if norm == "" {
				continue
			}
			botSeen[norm]++
			isFallback := containsAny(norm, fallbackPhrases)
			switch {
			case isFallback || botSeen[norm] > 2:
				fallbacks++
				fallbackText = text
			case botSeen[norm] == 2:
				// The same answer again: both were fallbacks.
				fallbacks += 2
				fallbackText = text
			}
		}
	}
	if len(asked) > 0 {
		out = append(out, Signal{Kind: SignalAskedHuman, Label: "Asked for a human", Detail: quote(asked[len(asked)-1]), Weight: 10})
	}
	if len(angry) > 0 {
		out = append(out, Signal{Kind: SignalAngry, Label: "Angry words", Detail: quote(angry[len(angry)-1]), Weight: 6 + min(len(angry)-1, 3)})
	}
	if fallbacks >= 2 {
		out = append(out, Signal{Kind: SignalFallback, Label: "Bot fallback ×" + strconv.Itoa(fallbacks), Detail: "The bot keeps failing: " + quote(fallbackText), Weight: 4 + min(fallbacks-2, 4)})
	}
	if repeatedQ != "" {
		out = append(out, Signal{Kind: SignalRepeatedQuestion, Label: "Repeated question", Detail: "Asked again: " + quote(repeatedQ), Weight: 4})
	}
	if count > LongExchange {
		out = append(out, Signal{Kind: SignalLong, Label: "Long exchange (" + strconv.Itoa(count) + ")", Detail: strconv.Itoa(count) + " messages without a human", Weight: 2})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}

// Score sums the weights of signals: the watch list's sort key.
func Score(signals []Signal) int {
	n := 0
	for _, s := range signals {
		n += s.Weight
	}
	return n
}

// normalize lower-cases text, folds curly apostrophes and collapses
// punctuation and spaces, so "Where is my order?!" equals "where is my order".
func normalize(s string) string {
	s = strings.ReplaceAll(strings.ToLower(s), "’", "'")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'':
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		default:
			space = true
		}
	}
	return b.String()
}

func containsAny(norm string, phrases []string) bool {
	padded := " " + norm + " "
	for _, p := range phrases {
		if strings.Contains(padded, " "+p+" ") || strings.Contains(padded, " "+p+"s ") {
			return true
		}
	}
	return false
}

// shouting: a message of several words written in capitals, or "!!!".
func shouting(s string) bool {
	if strings.Contains(s, "!!!") {
		return true
	}
	letters, upper := 0, 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			letters++
			if unicode.IsUpper(r) {
				upper++
			}
		}
	}
	return letters >= 12 && upper*10 >= letters*8
}

func quote(s string) string {
	r := []rune(s)
	if len(r) > 80 {
		s = string(r[:80]) + "…"
	}
	return "“" + s + "”"
}
