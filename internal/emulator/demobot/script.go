package demobot

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the bot's script: pure functions from what the person wrote
// (or what Baton handed back) to what the bot says. Keeping them free of I/O
// lets the rules be table-tested one by one.

// intent is what the bot understood a person's message to be about.
type intent int

const (
	intentUnknown intent = iota
	intentHuman
	intentReturns
	intentOrderStatus
	intentShipping
	intentHours
	intentGreeting
	intentThanks
	intentAttachment
)

func (i intent) String() string {
	switch i {
	case intentHuman:
		return "human"
	case intentReturns:
		return "returns"
	case intentOrderStatus:
		return "order_status"
	case intentShipping:
		return "shipping"
	case intentHours:
		return "hours"
	case intentGreeting:
		return "greeting"
	case intentThanks:
		return "thanks"
	case intentAttachment:
		return "attachment"
	default:
		return "unknown"
	}
}

// Quick reply and postback payloads the bot offers; a payload it set itself is
// a more reliable signal than the button's text, so it is read first.
const (
	payloadOrderStatus = "ORDER_STATUS"
	payloadHours       = "OPENING_HOURS"
	payloadHuman       = "TALK_TO_HUMAN"
	payloadGetStarted  = "GET_STARTED"
)

// Teams the bot routes to in its pass metadata (PROTOCOL.md §13.3); Baton uses
// `team` for assignment when it matches one of its own.
const (
	teamBilling = "billing"
	teamSupport = "support"
)

// Reasons the bot gives in its pass metadata.
const (
	reasonAskedForHuman = "asked_for_human"
	reasonBotFailed     = "bot_failed"
	reasonRequested     = "requested"
)

// Texts the bot says at fixed points of a handover; tests and people look for them.
const (
	textConnecting  = "Connecting you with a person from our team…"
	textRequested   = "A person from our team will take it from here."
	textNoTeam      = "Sorry, I couldn't reach our team right now. Please try again in a few minutes."
	textNeutralBack = "I'm back — anything else?"
)

// quickReply is one button of a Send API quick_replies list (PROTOCOL.md §8.1).
type quickReply struct {
	ContentType string `json:"content_type"`
	Title       string `json:"title"`
	Payload     string `json:"payload"`
}

// menu is offered after most replies so that a person never has to guess what
// the bot understands.
var menu = []quickReply{
	{ContentType: "text", Title: "Order status", Payload: payloadOrderStatus},
	{ContentType: "text", Title: "Opening hours", Payload: payloadHours},
	{ContentType: "text", Title: "Talk to a person", Payload: payloadHuman},
}

// tokens splits text into lowercase words so that keywords match whole words
// only ("agent" must not match "reagent").
func tokens(text string) map[string]bool {
	set := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	}) {
		set[strings.Trim(w, "'")] = true
	}
	return set
}

func anyOf(set map[string]bool, words ...string) bool {
	for _, w := range words {
		if set[w] {
			return true
		}
	}
	return false
}

// classify maps a message (its quick reply or postback payload first, then its
// text) to an intent. Rules are ordered: asking for a person beats everything,
// and a refund question about an order is about returns, not order status.
func classify(text, payload string, hasAttachment bool) intent {
	switch payload {
	case payloadHuman:
		return intentHuman
	case payloadOrderStatus:
		return intentOrderStatus
	case payloadHours:
		return intentHours
	case payloadGetStarted:
		return intentGreeting
	}
	w := tokens(text)
	switch {
	case anyOf(w, "human", "humans", "agent", "agents", "person", "someone", "somebody",
		"representative", "representatives"):
		return intentHuman
	case anyOf(w, "return", "returns", "returning", "refund", "refunds", "exchange"):
		return intentReturns
	case anyOf(w, "track", "tracking") || (anyOf(w, "order", "orders") && anyOf(w, "where", "status")):
		return intentOrderStatus
	case anyOf(w, "shipping", "ship", "ships", "delivery", "deliver", "postage"):
		return intentShipping
	case anyOf(w, "order", "orders", "package", "parcel"):
		return intentOrderStatus
	case anyOf(w, "hours", "open", "opening", "close", "closing", "closed"):
		return intentHours
	case anyOf(w, "hi", "hello", "hey", "hiya", "howdy", "start") ||
		strings.Contains(strings.ToLower(text), "good morning"):
		return intentGreeting
	case anyOf(w, "thanks", "thank", "thx", "cheers", "ty"):
		return intentThanks
	case strings.TrimSpace(text) == "" && hasAttachment:
		return intentAttachment
	}
	return intentUnknown
}

// mentionsBilling reports whether a message is about money, which routes the
// handover to the billing team.
func mentionsBilling(text string) bool {
	return anyOf(tokens(text), "refund", "refunds", "refunded", "charge", "charged", "charges",
		"invoice", "invoices", "payment", "payments", "billing", "billed")
}

// answer is the scripted reply to an intent the bot handles itself. ok is false
// for intents that need more than a canned text (a person, or a failure).
func answer(i intent) (text string, ok bool) {
	switch i {
	case intentOrderStatus:
		return "You can track any order at northwind.example/orders with your order number and email. " +
			"Most orders leave our warehouse within 1 business day.", true
	case intentHours:
		return "Our shops are open Monday to Saturday 9:00–18:00 and Sunday 10:00–16:00. " +
			"This chat is open around the clock.", true
	case intentReturns:
		return "You can return unworn items within 30 days for a full refund: start at northwind.example/returns. " +
			"Refunds reach your card within 5–7 business days.", true
	case intentShipping:
		return "Standard shipping takes 3–5 business days and is free over $50; express arrives in 1–2 days for $9.95.", true
	case intentGreeting:
		return "Hi again! What can I help you with?", true
	case intentThanks:
		return "You're welcome! Anything else I can do?", true
	case intentAttachment:
		return "Thanks! I can't look at attachments, but a person from our team can: tap \"Talk to a person\".", true
	}
	return "", false
}

// greeting is the first thing a new person hears.
func greeting(firstName string) string {
	name := strings.TrimSpace(firstName)
	if name == "" {
		name = "there"
	}
	return "Hi " + name + "! I'm the Northwind bot. I can help with order status, opening hours, " +
		"returns and shipping, or connect you with a person from our team."
}

// notUnderstood is said after the first message the bot cannot place; the
// second in a row hands the person over instead.
const notUnderstood = "Sorry, I didn't quite get that. You can ask about order status, opening hours, " +
	"returns or shipping, or talk to a person."

// Limits that keep the pass metadata under the 1000 characters Graph accepts
// (PROTOCOL.md §8.3) whatever the person wrote.
const (
	maxAsked    = 300
	maxSummary  = 400
	maxMetadata = 1000
)

// passMetadata is the JSON document the bot attaches to a pass to the
// Secondary (PROTOCOL.md §13.3).
type passMetadata struct {
	Reason  string `json:"reason"`
	Summary string `json:"summary"`
	Team    string `json:"team"`
	Asked   string `json:"asked"`
}

// buildPassMetadata renders the pass metadata, shortening the free-text parts so
// that the result always fits the platform's limit.
func buildPassMetadata(reason, summary, team, asked string) string {
	m := passMetadata{
		Reason:  reason,
		Summary: truncate(summary, maxSummary),
		Team:    team,
		Asked:   truncate(asked, maxAsked),
	}
	for {
		b, err := json.Marshal(m)
		if err != nil {
			// Marshalling four strings cannot fail; fall back to the bare reason.
			return `{"reason":"` + reason + `"}`
		}
		if len(b) <= maxMetadata || (m.Asked == "" && m.Summary == "") {
			return string(b)
		}
		// Escaping can grow text up to six times; halve until it fits.
		m.Asked = truncate(m.Asked, utf8.RuneCountInString(m.Asked)/2)
		m.Summary = truncate(m.Summary, utf8.RuneCountInString(m.Summary)/2)
	}
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// summarize tells the agent in one line why the person is coming and what the
// bot already covered, so that nobody has to ask again.
func summarize(reason, firstName string, topics []string) string {
	who := strings.TrimSpace(firstName)
	if who == "" {
		who = "The customer"
	}
	var s string
	switch reason {
	case reasonBotFailed:
		s = "The bot did not understand " + who + " twice in a row."
	case reasonRequested:
		s = "Handed over on request of your team."
		if who != "The customer" {
			s = "Handed over on request of your team; customer: " + who + "."
		}
	default:
		s = who + " asked to talk to a person."
	}
	if len(topics) > 0 {
		s += " Bot answered: " + strings.Join(topics, ", ") + "."
	}
	return s
}

// doneMetadata is the part of Baton's Done contract (PROTOCOL.md §13.1) the bot
// reads. Agent is kept raw because other Secondaries may send a plain string.
type doneMetadata struct {
	Outcome *json.RawMessage  `json:"outcome"`
	Tags    []json.RawMessage `json:"tags"`
	Agent   json.RawMessage   `json:"agent"`
}

// Outcomes of Baton's Done contract the bot reacts to.
const (
	outcomeResolved   = "resolved"
	outcomeUnresolved = "unresolved"
	outcomeEscalated  = "escalated"
	outcomeSpam       = "spam"
	outcomeIdle       = "idle"
)

// handBack is what the bot understood from a pass back to it.
type handBack struct {
	Outcome string // "" when the metadata is not Baton's contract
	Agent   string
	Tags    []string
}

// parseHandBack reads pass metadata. Anything that is not a JSON object with an
// `outcome` is plain text (the Page Inbox's "Pass thread control from Page
// Inbox", another app's free text), which yields an empty Outcome. An outcome
// the bot does not know is read as unresolved, as the contract says.
func parseHandBack(metadata string) handBack {
	var m doneMetadata
	if err := json.Unmarshal([]byte(metadata), &m); err != nil || m.Outcome == nil {
		return handBack{}
	}
	var hb handBack
	var outcome string
	if err := json.Unmarshal(*m.Outcome, &outcome); err != nil {
		outcome = ""
	}
	switch outcome = strings.ToLower(strings.TrimSpace(outcome)); outcome {
	case outcomeResolved, outcomeUnresolved, outcomeEscalated, outcomeSpam, outcomeIdle:
		hb.Outcome = outcome
	default:
		hb.Outcome = outcomeUnresolved
	}
	hb.Agent = agentName(m.Agent)
	for _, raw := range m.Tags {
		var t string
		if json.Unmarshal(raw, &t) == nil && strings.TrimSpace(t) != "" {
			hb.Tags = append(hb.Tags, strings.ToLower(strings.TrimSpace(t)))
		}
	}
	return hb
}

// agentName accepts {"name":…} (Baton) or a bare string.
func agentName(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var obj struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Name != "" {
		return strings.TrimSpace(obj.Name)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	return ""
}

// tagRemarks are sentences that show the bot read the agent's tags; the first
// tag with a remark wins so the reply stays short.
var tagRemarks = map[string]string{
	"billing":  "If anything about the charge still looks off, tap \"Talk to a person\" and billing will pick it up.",
	"refund":   "Refunds usually reach your card within 5–7 business days.",
	"shipping": "You can follow your parcel at northwind.example/orders.",
	"returns":  "Your return label is valid for 30 days.",
	"vip":      "Thanks for being one of our best customers!",
}

// handBackReply is what the bot says when control comes back with this
// metadata. quiet is true when the bot should say nothing (spam).
func handBackReply(metadata string) (text string, quiet bool) {
	hb := parseHandBack(metadata)
	if hb.Outcome == "" {
		return textNeutralBack, false
	}
	var s string
	switch hb.Outcome {
	case outcomeSpam:
		return "", true
	case outcomeResolved:
		s = "Glad that's sorted!"
		if hb.Agent != "" {
			s += " Thanks for chatting with " + hb.Agent + "."
		}
		s += " I'm the Northwind bot again, here if you need anything else."
	case outcomeEscalated:
		s = "Your case was escalated to our specialists"
		if hb.Agent != "" {
			s += " by " + hb.Agent
		}
		s += ". They'll get back to you here as soon as they can."
	case outcomeIdle:
		s = "Looks like our team got busy — I'm back. Ask me anything, or tap \"Talk to a person\" to try again."
	default: // unresolved, and any outcome the bot does not know
		s = "Sorry we couldn't fix it yet — "
		if hb.Agent != "" {
			s += hb.Agent + " has noted your case and we'll follow up."
		} else {
			s += "your case is noted and we'll follow up."
		}
		s += " Tap \"Talk to a person\" any time to reach the team again."
	}
	for _, t := range hb.Tags {
		if r, ok := tagRemarks[t]; ok {
			s += " " + r
			break
		}
	}
	return s, false
}

// takeBackReply is said after the bot took a thread back from a silent Secondary.
const takeBackReply = "Looks like our team got busy — I'm back. Ask me anything, or tap \"Talk to a person\" to try again."
