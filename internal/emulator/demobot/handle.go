package demobot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// owner is who the bot believes holds a person's thread.
type owner int

const (
	ownerUnknown owner = iota // nothing seen yet: a new thread, idle or the bot's
	ownerSelf
	ownerOther
)

// maxSeen bounds the per-person memory of handled events used to drop the
// duplicates the platform may deliver (PROTOCOL.md §4.5).
const maxSeen = 256

// person is what the bot remembers about one PSID. It is guarded by Bot.mu;
// the person's worker is the only writer apart from the timer flags.
type person struct {
	greeted   bool
	firstName string
	owner     owner
	failures  int      // messages in a row the bot did not understand
	billing   bool     // the conversation mentioned money
	lastText  string   // the person's last message, for the pass metadata
	topics    []string // what the bot answered, for the agent's summary

	holder           string    // the app the bot passed to, when owner is ownerOther
	lastPageActivity time.Time // when the holder last spoke (or got the thread)
	takingBack       bool      // a take-back job is queued
	request          *pendingRequest

	seen  map[string]bool
	order []string
}

// pendingRequest is a request_thread_control waiting for RequestDelay.
type pendingRequest struct {
	requester string
	due       time.Time
}

// personLocked returns psid's state, creating it; b.mu must be held.
func (b *Bot) personLocked(psid string) *person {
	p := b.people[psid]
	if p == nil {
		p = &person{seen: map[string]bool{}}
		b.people[psid] = p
	}
	return p
}

// firstTime records key and reports whether it is new for this person.
func (p *person) firstTime(key string) bool {
	if key == "" {
		return true
	}
	if p.seen[key] {
		return false
	}
	p.seen[key] = true
	p.order = append(p.order, key)
	if len(p.order) > maxSeen {
		delete(p.seen, p.order[0])
		p.order = p.order[1:]
	}
	return true
}

// dedupeKey identifies an event per PROTOCOL.md §4.5, or "" for kinds the bot
// does not act on.
func dedupeKey(ev event) string {
	ts := strconv.FormatInt(int64(ev.Timestamp), 10)
	switch {
	case ev.Message != nil:
		if ev.Message.MID != "" {
			return "m:" + ev.Message.MID
		}
	case ev.Postback != nil:
		if ev.Postback.MID != "" {
			return "m:" + ev.Postback.MID
		}
		return "pb:" + ts + ":" + ev.Postback.Title + ":" + ev.Postback.Payload
	case ev.Pass != nil:
		return "pass:" + ts + ":" + string(ev.Pass.PreviousOwner) + ":" + string(ev.Pass.NewOwner)
	case ev.Take != nil:
		return "take:" + ts + ":" + string(ev.Take.PreviousOwner) + ":" + string(ev.Take.NewOwner)
	case ev.Request != nil:
		return "req:" + ts + ":" + string(ev.Request.RequestedOwner)
	}
	return ""
}

// handle applies one event for psid. It runs on psid's worker.
func (b *Bot) handle(ctx context.Context, psid string, in incoming) {
	b.mu.Lock()
	p := b.personLocked(psid)
	fresh := p.firstTime(dedupeKey(in.ev))
	b.mu.Unlock()
	if !fresh {
		return
	}
	ev := in.ev
	switch {
	case in.standby:
		b.onStandby(psid, ev)
	case ev.Message != nil && ev.Message.IsEcho:
		// The bot's own echoes (and, in classic mode, other apps' sends) need no answer.
	case ev.Message != nil:
		payload := ""
		if ev.Message.QuickReply != nil {
			payload = ev.Message.QuickReply.Payload
		}
		b.onMessage(ctx, psid, ev.Message.Text, payload, len(ev.Message.Attachments) > 0)
	case ev.Postback != nil:
		text := ev.Postback.Title
		b.onMessage(ctx, psid, text, ev.Postback.Payload, false)
	case ev.Pass != nil:
		b.onPass(ctx, psid, string(ev.Pass.NewOwner), string(ev.Pass.Metadata))
	case ev.Take != nil:
		b.onTake(psid, string(ev.Take.PreviousOwner), string(ev.Take.NewOwner))
	case ev.Request != nil:
		b.onRequest(ctx, psid, string(ev.Request.RequestedOwner))
	}
}

// onStandby records what happens while another app owns the thread: the
// bot stays quiet, notes what the person says (for a later handover) and
// restarts the silence clock whenever the holder speaks.
func (b *Bot) onStandby(psid string, ev event) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.personLocked(psid)
	if p.owner != ownerOther {
		// The thread changed hands without telling the bot (a Page Inbox
		// reply in routing-cr, an expiry and re-acquisition): start the
		// silence clock now.
		p.owner = ownerOther
		p.lastPageActivity = now
	}
	switch {
	case ev.Message != nil && ev.Message.IsEcho:
		if app := string(ev.Message.AppID); app != b.cfg.AppID {
			p.lastPageActivity = now
			if app != "" {
				p.holder = app
			}
		}
	case ev.Message != nil:
		p.lastText = ev.Message.Text
		p.billing = p.billing || mentionsBilling(ev.Message.Text)
	}
}

// onMessage answers a person's message or postback on the messaging channel,
// which means the bot owns the thread (or it was idle and is now the bot's).
func (b *Bot) onMessage(ctx context.Context, psid, text, payload string, hasAttachment bool) {
	b.mu.Lock()
	p := b.personLocked(psid)
	p.owner = ownerSelf
	p.holder = ""
	p.takingBack = false
	p.lastText = text
	p.billing = p.billing || mentionsBilling(text)
	greeted := p.greeted
	p.greeted = true
	b.mu.Unlock()

	kind := classify(text, payload, hasAttachment)
	if !greeted {
		name, err := b.firstName(ctx, psid)
		if err != nil {
			b.log.Warn("demobot: no first name", "psid", psid, "err", err)
		}
		b.mu.Lock()
		p.firstName = name
		b.mu.Unlock()
		if kind == intentUnknown || kind == intentGreeting {
			b.say(ctx, psid, greeting(name), menu)
			return
		}
		b.say(ctx, psid, greeting(name), nil)
	}

	if kind == intentHuman {
		b.handOver(ctx, psid, reasonAskedForHuman)
		return
	}
	if reply, ok := answer(kind); ok {
		b.mu.Lock()
		p.failures = 0
		if kind != intentGreeting && kind != intentThanks && kind != intentAttachment {
			p.topics = appendTopic(p.topics, kind.String())
		}
		b.mu.Unlock()
		b.say(ctx, psid, reply, menu)
		return
	}
	b.mu.Lock()
	p.failures++
	failures := p.failures
	b.mu.Unlock()
	if failures >= 2 {
		b.handOver(ctx, psid, reasonBotFailed)
		return
	}
	b.say(ctx, psid, notUnderstood, menu)
}

func appendTopic(topics []string, t string) []string {
	for _, have := range topics {
		if have == t {
			return topics
		}
	}
	return append(topics, t)
}

// say sends text and logs a failure: a reply that cannot be sent (window
// closed, thread taken meanwhile) is not worth more than a log line.
func (b *Bot) say(ctx context.Context, psid, text string, replies []quickReply) {
	if err := b.sendText(ctx, psid, text, replies); err != nil {
		b.log.Warn("demobot: reply failed", "psid", psid, "err", err)
	}
}

// handOver tells the person a human is coming and passes the thread to the
// Secondary with metadata the console can show and route on.
func (b *Bot) handOver(ctx context.Context, psid, reason string) {
	target, err := b.secondaryTarget(ctx)
	if err != nil {
		b.log.Warn("demobot: no one to hand over to", "psid", psid, "err", err)
		b.say(ctx, psid, textNoTeam, menu)
		return
	}
	intro := textConnecting
	if reason == reasonBotFailed {
		intro = "Sorry I couldn't help with that. " + textConnecting
	}
	b.say(ctx, psid, intro, nil)
	if err := b.passTo(ctx, psid, target, reason); err != nil {
		b.log.Warn("demobot: pass failed", "psid", psid, "target", target, "err", err)
		b.say(ctx, psid, textNoTeam, menu)
	}
}

// passTo passes psid's thread to target with the bot's metadata and records
// the new holder, starting the silence clock.
func (b *Bot) passTo(ctx context.Context, psid, target, reason string) error {
	b.mu.Lock()
	p := b.personLocked(psid)
	team := teamSupport
	if p.billing {
		team = teamBilling
	}
	meta := buildPassMetadata(reason, summarize(reason, p.firstName, p.topics), team, p.lastText)
	b.mu.Unlock()

	if err := b.passThread(ctx, psid, target, meta); err != nil {
		return err
	}
	b.log.Info("demobot: passed thread", "psid", psid, "target", target, "reason", reason)
	b.mu.Lock()
	p.owner = ownerOther
	p.holder = target
	p.failures = 0
	p.takingBack = false
	p.lastPageActivity = b.cfg.Now()
	b.mu.Unlock()
	return nil
}

// onPass handles a pass_thread_control. Only a pass to the bot gives it the
// thread; in routing-cr every subscriber hears every pass.
func (b *Bot) onPass(ctx context.Context, psid, newOwner, metadata string) {
	if newOwner != "" && newOwner != b.cfg.AppID {
		b.mu.Lock()
		p := b.personLocked(psid)
		if p.holder != newOwner || p.owner != ownerOther {
			p.lastPageActivity = b.cfg.Now()
		}
		p.owner = ownerOther
		p.holder = newOwner
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	p := b.personLocked(psid)
	p.owner = ownerSelf
	p.holder = ""
	p.failures = 0
	p.takingBack = false
	b.mu.Unlock()
	b.log.Info("demobot: control came back", "psid", psid, "metadata", describe(metadata))
	text, quiet := handBackReply(metadata)
	if quiet {
		return
	}
	b.say(ctx, psid, text, menu)
}

// onTake handles a take_thread_control: sent to the app that lost the thread,
// and in routing-cr to everyone, including the bot for its own takes.
func (b *Bot) onTake(psid, previousOwner, newOwner string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.personLocked(psid)
	switch {
	case newOwner == b.cfg.AppID:
		p.owner = ownerSelf
		p.holder = ""
	case previousOwner == b.cfg.AppID || newOwner != "":
		p.owner = ownerOther
		p.holder = newOwner
		p.lastPageActivity = b.cfg.Now()
	}
}

// onRequest schedules a Secondary's request_thread_control to be honoured
// after RequestDelay, so the requesting console shows it pending for a moment.
func (b *Bot) onRequest(ctx context.Context, psid, requester string) {
	if requester == "" || requester == b.cfg.AppID {
		return
	}
	if b.cfg.RequestDelay < 0 {
		b.honourRequest(ctx, psid, requester)
		return
	}
	b.mu.Lock()
	b.personLocked(psid).request = &pendingRequest{requester: requester, due: b.cfg.Now().Add(b.cfg.RequestDelay)}
	b.mu.Unlock()
}

// honourRequest passes the thread to the app that asked for it, unless the
// emulator's ignore_thread_requests fault makes the bot play deaf. When the
// bot does not own the thread it takes it first, as PROTOCOL.md §8.5 allows.
func (b *Bot) honourRequest(ctx context.Context, psid, requester string) {
	ignore, err := b.ignoringRequests(ctx)
	if err != nil {
		b.log.Warn("demobot: cannot read faults; honouring the request", "err", err)
	}
	if ignore {
		b.log.Info("demobot: ignoring thread request (fault)", "psid", psid, "requester", requester)
		return
	}
	b.mu.Lock()
	p := b.personLocked(psid)
	owned := p.owner != ownerOther
	b.mu.Unlock()
	if owned {
		// Best effort: on an idle thread the send gives it to nobody in
		// particular, and on a lost thread it fails harmlessly.
		b.say(ctx, psid, textRequested, nil)
	}
	err = b.passTo(ctx, psid, requester, reasonRequested)
	if isNotOwner(err) {
		// Another app holds the thread: take it, then pass it on.
		if err = b.takeThread(ctx, psid, "handing over to app "+requester+" on request"); err == nil {
			err = b.passTo(ctx, psid, requester, reasonRequested)
		}
	}
	if err != nil {
		b.log.Warn("demobot: cannot honour a thread request", "psid", psid, "requester", requester, "err", err)
	}
}

// takeBack takes a thread back from a Secondary that stayed silent for
// TakeBackAfter, and tells the person the bot is back.
func (b *Bot) takeBack(ctx context.Context, psid string) {
	b.mu.Lock()
	p := b.personLocked(psid)
	still := p.owner == ownerOther && p.takingBack &&
		b.cfg.Now().Sub(p.lastPageActivity) >= b.cfg.TakeBackAfter
	b.mu.Unlock()
	if !still {
		b.mu.Lock()
		p.takingBack = false
		b.mu.Unlock()
		return
	}
	meta := "secondary silent for " + formatDuration(b.cfg.TakeBackAfter)
	if err := b.takeThread(ctx, psid, meta); err != nil {
		b.log.Warn("demobot: take back failed", "psid", psid, "err", err)
		b.mu.Lock()
		p.takingBack = false
		p.lastPageActivity = b.cfg.Now() // try again after another silent period
		b.mu.Unlock()
		return
	}
	b.log.Info("demobot: took thread back", "psid", psid, "metadata", meta)
	b.mu.Lock()
	p.owner = ownerSelf
	p.holder = ""
	p.takingBack = false
	p.failures = 0
	b.mu.Unlock()
	b.say(ctx, psid, takeBackReply, menu)
}

// formatDuration writes d the way people read it ("10m", "1h30m", "45s").
func formatDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if d < time.Second {
		s = fmt.Sprint(d)
	}
	return s
}
