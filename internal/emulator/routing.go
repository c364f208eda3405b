package emulator

import (
	"encoding/json"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// Webhook fields (PROTOCOL.md §6, §8.10).
const (
	fieldMessages   = "messages"
	fieldEchoes     = "message_echoes"
	fieldReads      = "message_reads"
	fieldDeliveries = "message_deliveries"
	fieldPostbacks  = "messaging_postbacks"
	fieldHandovers  = "messaging_handovers"
	fieldStandby    = "standby"
	fieldReactions  = "message_reactions"
	fieldReferrals  = "messaging_referrals"
)

// Delivery channels: the array an event is placed under.
const (
	chanMessaging = "messaging"
	chanStandby   = "standby"
)

// canonicalField maps the CR page's singular spellings onto the plural ones
// (§6: "with or without the final s").
func canonicalField(f string) string {
	f = strings.TrimSpace(f)
	switch f {
	case "messaging_handover":
		return "messaging_handovers"
	case "messaging_referral":
		return "messaging_referrals"
	}
	return f
}

// threadFor returns the thread of psid, applying silent expiry (§7) and, in
// classic mode, the rule that threads always belong to the Primary.
// Callers hold e.mu.
func (e *Emulator) threadFor(psid string) *thread {
	t, ok := e.threads[psid]
	if !ok {
		t = &thread{}
		e.threads[psid] = t
	}
	now := e.now()
	if e.cfg.Mode != ModeClassic && t.Owner != "" && !now.Before(t.ExpiresAt) {
		e.log.Info("thread expired", "psid", psid, "owner", t.Owner)
		t.Owner = ""
	}
	if e.cfg.Mode == ModeClassic && t.Owner == "" {
		if p := e.primary(); p != "" {
			e.setOwner(t, p)
		}
	}
	return t
}

// setOwner changes the owner and restarts the inactivity clock (§7).
func (e *Emulator) setOwner(t *thread, id string) {
	t.Owner = id
	t.ExpiresAt = e.now().Add(windowStandard)
}

// touchUser records a window-opening user event (message, postback,
// referral) and gives an idle thread to the Primary (§7).
func (e *Emulator) touchUser(t *thread) {
	now := e.now()
	t.LastUserAt = now
	if t.Owner == "" {
		if p := e.primary(); p != "" {
			e.setOwner(t, p)
			return
		}
	}
	if exp := now.Add(windowStandard); exp.After(t.ExpiresAt) {
		t.ExpiresAt = exp
	}
}

// subscribedTo reports whether a receives webhook field f.
func (a *app) subscribedTo(f string) bool { return a.Fields[f] }

// deliverable reports whether a has a verified, subscribed webhook.
func (a *app) deliverable() bool {
	return !a.pseudo && a.Subscribed && a.Verified && a.WebhookURL != ""
}

// routeScope says who beyond the owner hears an event.
type routeScope int

const (
	scopeStandby   routeScope = iota // others with a role get standby (§6)
	scopeOwnerOnly                   // nobody else (reactions, referrals, optins)
)

// route delivers a thread event per §6: the owner on messaging, other apps
// with a role on standby, everybody with a role on messaging while idle.
// build renders the event for one channel. Callers hold e.mu.
func (e *Emulator) route(t *thread, field string, scope routeScope, build func(channel string) wireEvent) {
	if e.switches.StandbyExtra {
		scope = scopeStandby
	}
	for _, id := range e.appOrder {
		a := e.apps[id]
		if !e.hasRole(id) || !a.deliverable() {
			continue
		}
		switch {
		case t.Owner == "" || t.Owner == id:
			if a.subscribedTo(field) {
				e.enqueue(a, chanMessaging, build(chanMessaging))
			}
		case scope == scopeStandby && a.subscribedTo(fieldStandby):
			e.enqueue(a, chanStandby, build(chanStandby))
		}
	}
}

// sendHandover delivers a handover event on messaging to the listed apps.
func (e *Emulator) sendHandover(recipients []string, ev wireEvent) {
	for _, id := range recipients {
		a, ok := e.apps[id]
		if !ok || !a.deliverable() || !a.subscribedTo(fieldHandovers) {
			continue
		}
		e.enqueue(a, chanMessaging, ev)
	}
}

// handoverSubscribers lists every app with a role, for routing-cr broadcasts.
func (e *Emulator) handoverSubscribers() []string {
	var ids []string
	for _, id := range e.appOrder {
		if e.hasRole(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// appIDJSON renders an app id as the app_id_json switch asks (§1).
func (e *Emulator) appIDJSON(id string) json.RawMessage {
	mode := e.switches.AppIDJSON
	if mode == "random" {
		if mrand.IntN(2) == 0 {
			mode = "string"
		} else {
			mode = "number"
		}
	}
	if mode == "string" {
		return json.RawMessage(`"` + id + `"`)
	}
	return json.RawMessage(id)
}

// threadEvent starts an event from the person to the Page.
func (e *Emulator) threadEvent(psid string) wireEvent {
	return wireEvent{
		Sender:    &wireID{ID: psid},
		Recipient: &wireID{ID: e.cfg.PageID},
		Timestamp: ms(e.now()),
	}
}

// gErr is a Graph API error (§9). Control operations return it so that the
// Graph handlers and the Page Inbox share one state machine.
type gErr struct {
	status    int
	code      int
	subcode   int
	message   string
	transient bool
}

func (g *gErr) Error() string { return g.message }

// Graph errors used by the state machine (§9.2).
var (
	errNoRole          = &gErr{400, 10, subNoRole, "(#10) Only available to Primary and Secondary Receivers.", false}
	errNotOwnerAction  = &gErr{400, 100, messenger.CodeNotOwnerPassSub, "(#100) The action is invalid since it's not the thread owner.", false}
	errNotOwnerSend    = &gErr{400, 10, messenger.CodeNotOwnerSendSub, "(#10) Message failed to send because another app is controlling this thread now.", false}
	errWindow          = &gErr{400, 10, messenger.CodeWindowClosedSub, "(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview", false}
	errOnlyPrimaryTake = &gErr{400, 10, 0, "(#10) Only the Primary Receiver app can take thread control.", false}
	errPrimaryRequest  = &gErr{400, 10, 0, "(#10) The Primary Receiver app cannot request thread control.", false}
	errOwnerHidden     = &gErr{400, 100, messenger.CodeOwnerHiddenSub, "(#100) Denying visibility of any secondary receiver to another secondary receiver other than itself.", false}
	errNoUser          = &gErr{400, 100, messenger.CodeNoUserSub, "(#100) No matching user found", false}
)

// invalidParam is the catch-all code-100 error with a detail (§9.2).
func invalidParam(detail string) *gErr {
	return &gErr{400, 100, 0, "(#100) Invalid parameter: " + detail, false}
}

// handoverBody builds a pass or take body per mode (§5.5, §5.6).
func (e *Emulator) handoverBody(kind, prev, next string, metadata *string) *wireHandover {
	h := &wireHandover{Metadata: metadata}
	if e.cfg.Mode == ModeClassic {
		if kind == "pass" {
			h.NewOwner = e.appIDJSON(next)
		} else {
			h.PreviousOwner = e.appIDJSON(prev)
		}
		return h
	}
	if prev == "" {
		h.PreviousOwner = json.RawMessage("null")
	} else {
		h.PreviousOwner = e.appIDJSON(prev)
	}
	h.NewOwner = e.appIDJSON(next)
	return h
}

// passThread implements pass_thread_control by caller (§7, §8.3). An empty
// target means "the Primary", which only a Secondary may rely on.
func (e *Emulator) passThread(caller, psid, target string, metadata *string) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	t := e.threadFor(psid)
	if t.Owner != caller && (t.Owner != "" || e.cfg.Mode == ModeClassic) {
		return errNotOwnerAction
	}
	primary := e.primary()
	if target == "" {
		if caller == primary {
			return invalidParam("target_app_id is required")
		}
		target = primary
	}
	if target == "" || !e.hasRole(target) {
		return invalidParam("target_app_id must be an app with a role on this Page")
	}
	if target == caller {
		return invalidParam("target_app_id cannot be the caller")
	}
	prev := t.Owner
	e.setOwner(t, target)
	ev := e.threadEvent(psid)
	ev.Pass = e.handoverBody("pass", prev, target, metadata)
	recipients := []string{target}
	if e.cfg.Mode == ModeRoutingCR {
		recipients = e.handoverSubscribers()
	}
	e.sendHandover(recipients, ev)
	return nil
}

// takeThread implements take_thread_control by the Primary (§7, §8.4).
func (e *Emulator) takeThread(caller, psid string, metadata *string) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	if caller != e.primary() {
		return errOnlyPrimaryTake
	}
	t := e.threadFor(psid)
	prev := t.Owner
	if prev == caller {
		return nil
	}
	e.setOwner(t, caller)
	switch {
	case e.cfg.Mode == ModeRoutingCR:
		ev := e.threadEvent(psid)
		ev.Take = e.handoverBody("take", prev, caller, metadata)
		e.sendHandover(e.handoverSubscribers(), ev)
	case prev != "":
		ev := e.threadEvent(psid)
		ev.Take = e.handoverBody("take", prev, caller, metadata)
		e.sendHandover([]string{prev}, ev)
	}
	return nil
}

// requestThread implements request_thread_control by a Secondary (§8.5).
func (e *Emulator) requestThread(caller, psid string, metadata *string) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	primary := e.primary()
	if caller == primary {
		return errPrimaryRequest
	}
	t := e.threadFor(psid)
	if t.Owner == caller || primary == "" {
		return nil
	}
	ev := e.threadEvent(psid)
	ev.Request = &wireHandover{RequestedOwner: e.appIDJSON(caller), Metadata: metadata}
	e.sendHandover([]string{primary}, ev)
	return nil
}

// releaseThread makes an owned thread idle, silently (§8.6).
func (e *Emulator) releaseThread(caller, psid string) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	t := e.threadFor(psid)
	if t.Owner != caller {
		return errNotOwnerAction
	}
	t.Owner = ""
	return nil
}

// extendThread postpones the expiry of an owned thread (§8.6).
func (e *Emulator) extendThread(caller, psid string, d time.Duration) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	t := e.threadFor(psid)
	if t.Owner != caller {
		return errNotOwnerAction
	}
	t.ExpiresAt = e.now().Add(d)
	return nil
}

// mayAct applies the owner rule for sends and sender actions (§2).
func (e *Emulator) mayAct(caller string, t *thread) *gErr {
	if !e.hasRole(caller) {
		return errNoRole
	}
	switch e.cfg.Mode {
	case ModeClassic:
		return nil
	case ModeRoutingCR:
		if t.Owner == caller || (t.Owner == "" && caller == e.primary()) {
			return nil
		}
	default:
		if t.Owner == caller || t.Owner == "" {
			return nil
		}
	}
	return errNotOwnerSend
}

// windowCheck applies §11 to a send: messagingType RESPONSE/UPDATE within
// 24 h, MESSAGE_TAG + HUMAN_AGENT within 7 d for apps with Human Agent.
func (e *Emulator) windowCheck(a *app, t *thread, messagingType, tag string) *gErr {
	if t.LastUserAt.IsZero() {
		return errWindow
	}
	age := e.now().Sub(t.LastUserAt)
	if messagingType == "MESSAGE_TAG" && tag == "HUMAN_AGENT" && a.HumanAgent {
		if age < windowHumanAgent {
			return nil
		}
		return errWindow
	}
	if (messagingType == "RESPONSE" || messagingType == "UPDATE") && age < windowStandard {
		return nil
	}
	return errWindow
}

// onRoleLost moves the threads of an app that lost its role (§7 last row).
func (e *Emulator) onRoleLost(id string) {
	for _, t := range e.threads {
		if t.Owner != id {
			continue
		}
		t.Owner = ""
		if e.cfg.Mode == ModeClassic {
			if p := e.primary(); p != "" {
				e.setOwner(t, p)
			}
		}
	}
}

// sendAppRoles tells an app its new role (§5.8: own key only, [] when none).
func (e *Emulator) sendAppRoles(id string) {
	a := e.apps[id]
	roles := []string{}
	if a.Role != "" {
		roles = []string{a.Role}
	}
	all := map[string][]string{id: roles}
	if e.switches.AppRolesScope == "all" {
		for _, other := range e.appOrder {
			if e.hasRole(other) {
				all[other] = []string{e.apps[other].Role}
			}
		}
	}
	ev := wireEvent{
		Recipient: &wireID{ID: e.cfg.PageID},
		Timestamp: ms(e.now()),
		AppRoles:  all,
	}
	e.sendHandover([]string{id}, ev)
}

// subNoRole is the subcode for callers without a handover role (§9.2 [ED]);
// Baton does not act on it, so it is not among the shared constants.
const subNoRole = 2018171
