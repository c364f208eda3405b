package conversation

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/baton-chat/baton/internal/baton"
)

// DefaultAgentCap is how many open conversations auto-assign gives one
// agent when neither the user nor BATON_AGENT_CAP says otherwise.
const DefaultAgentCap = 5

// DefaultIdleAway is how long an online agent may go without using the
// console before they count as away: auto-assign must not feed someone
// who went to lunch without changing their status.
const DefaultIdleAway = 15 * time.Minute

// EffectiveStatus is the agent's status as the team sees it now: online
// agents idle for longer than idle are away.
func EffectiveStatus(a *baton.Agent, now time.Time, idle time.Duration) baton.AgentStatus {
	if a.Status != baton.AgentOnline {
		return a.Status
	}
	if idle > 0 && (a.LastActiveAt == nil || now.Sub(*a.LastActiveAt) > idle) {
		return baton.AgentAway
	}
	return baton.AgentOnline
}

// CapOf is the agent's own cap, or the default.
func CapOf(a *baton.Agent, defaultCap int) int {
	if a.Cap != nil {
		return *a.Cap
	}
	return defaultCap
}

// PickAgent is round robin among the agents online now and under their
// cap: the one given a conversation longest ago (never first) is next;
// ties go to the lighter load, then the lower id, so the choice is
// deterministic. ok is false when nobody can take one.
func PickAgent(agents []*baton.Agent, defaultCap int, now time.Time, idle time.Duration) (int64, bool) {
	var best *baton.Agent
	for _, a := range agents {
		if EffectiveStatus(a, now, idle) != baton.AgentOnline || a.Open >= CapOf(a, defaultCap) {
			continue
		}
		if best == nil || before(a, best) {
			best = a
		}
	}
	if best == nil {
		return 0, false
	}
	return best.UserID, true
}

// before reports whether a comes before b in the round robin.
func before(a, b *baton.Agent) bool {
	switch {
	case a.LastAssignedAt == nil && b.LastAssignedAt != nil:
		return true
	case a.LastAssignedAt != nil && b.LastAssignedAt == nil:
		return false
	case a.LastAssignedAt != nil && !a.LastAssignedAt.Equal(*b.LastAssignedAt):
		return a.LastAssignedAt.Before(*b.LastAssignedAt)
	case a.Open != b.Open:
		return a.Open < b.Open
	}
	return a.UserID < b.UserID
}

// Team carries out assignment, agent status, tags and notes. Each change
// bumps the conversation's seq (browsers re-read) and writes an audit row.
type Team struct {
	Store baton.ConsoleStore
	Team  baton.TeamStore
	Audit baton.AuditLog
	// Cap is the default per-agent cap (BATON_AGENT_CAP).
	Cap int
	// IdleAway: online agents idle this long count as away.
	IdleAway time.Duration
	// Interval between auto-assign scans besides wake-ups; 0 = 30 s.
	Interval time.Duration
	// Wake starts a scan now (a handover arrived, an agent came online).
	Wake     chan struct{}
	OnChange func(conversationID int64)
	Logger   *slog.Logger
	Now      func() time.Time
}

func (t *Team) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Team) cap() int {
	if t.Cap > 0 {
		return t.Cap
	}
	return DefaultAgentCap
}

func (t *Team) idle() time.Duration {
	if t.IdleAway > 0 {
		return t.IdleAway
	}
	return DefaultIdleAway
}

func (t *Team) changed(id int64) {
	if t.OnChange != nil {
		t.OnChange(id)
	}
}

func (t *Team) audit(ctx context.Context, actor *int64, action, subject string, detail map[string]any) {
	if t.Audit == nil {
		return
	}
	if err := t.Audit.Audit(ctx, baton.AuditEntry{At: t.now(), ActorID: actor, Action: action, Subject: subject, Detail: detail}); err != nil && t.Logger != nil {
		t.Logger.Error("write audit log", "action", action, "subject", subject, "err", err)
	}
}

// WakeUp asks the auto-assigner to scan now; it never blocks.
func (t *Team) WakeUp() {
	if t.Wake == nil {
		return
	}
	select {
	case t.Wake <- struct{}{}:
	default:
	}
}

func convSubject(id int64) string { return "conversation:" + strconv.FormatInt(id, 10) }
func userSubject(id int64) string { return "user:" + strconv.FormatInt(id, 10) }

func idOrNil(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Claim assigns an open conversation to the agent who clicked: refused
// when someone else already has it (a supervisor reassigns instead).
func (t *Team) Claim(ctx context.Context, u *baton.User, id int64) error {
	var from *int64
	_, err := t.Store.Update(ctx, id, func(c *baton.Conversation) error {
		if c.Status != baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "Only conversations in Baton's inbox can be claimed.")
		}
		if c.AssignedUserID != nil && *c.AssignedUserID != u.ID {
			return baton.Errorf(baton.ECONFLICT, "Someone else has this conversation; ask a supervisor to reassign it.")
		}
		from = c.AssignedUserID
		c.AssignedUserID = &u.ID
		return nil
	})
	if err != nil {
		return err
	}
	t.audit(ctx, &u.ID, "conversation.claim", convSubject(id), map[string]any{"from": idOrNil(from), "to": u.ID})
	t.changed(id)
	return nil
}

// Assign gives the conversation to user to (0: unassigns it). Supervisors
// may assign anyone; an agent may only release their own.
func (t *Team) Assign(ctx context.Context, u *baton.User, id, to int64) error {
	supervisor := u.Role.AtLeast(baton.RoleSupervisor)
	if to != 0 {
		if !supervisor {
			return baton.Errorf(baton.EFORBIDDEN, "Only supervisors assign conversations to others; claim it instead.")
		}
		agents, err := t.Team.Agents(ctx)
		if err != nil {
			return err
		}
		found := false
		for _, a := range agents {
			found = found || a.UserID == to
		}
		if !found {
			return baton.Errorf(baton.EINVALID, "Pick an enabled user to assign to.")
		}
	}
	var from *int64
	_, err := t.Store.Update(ctx, id, func(c *baton.Conversation) error {
		if c.Status != baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "Only conversations in Baton's inbox can be assigned.")
		}
		if !supervisor && (c.AssignedUserID == nil || *c.AssignedUserID != u.ID) {
			return baton.Errorf(baton.EFORBIDDEN, "Only supervisors unassign conversations of others.")
		}
		from = c.AssignedUserID
		if to == 0 {
			c.AssignedUserID = nil
		} else {
			c.AssignedUserID = &to
		}
		return nil
	})
	if err != nil {
		return err
	}
	action := "conversation.assign"
	if to == 0 {
		action = "conversation.unassign"
	}
	detail := map[string]any{"from": idOrNil(from)}
	if to != 0 {
		detail["to"] = to
	}
	t.audit(ctx, &u.ID, action, convSubject(id), detail)
	t.changed(id)
	if to == 0 {
		// Back in the queue: someone online may take it.
		t.WakeUp()
	}
	return nil
}

// SetStatus sets a user's status: their own, or anyone's for supervisors.
func (t *Team) SetStatus(ctx context.Context, u *baton.User, userID int64, status string) error {
	st, err := baton.ParseAgentStatus(status)
	if err != nil {
		return err
	}
	if userID != u.ID && !u.Role.AtLeast(baton.RoleSupervisor) {
		return baton.Errorf(baton.EFORBIDDEN, "Only supervisors set the status of others.")
	}
	if err := t.Team.SetAgentStatus(ctx, userID, st); err != nil {
		return err
	}
	if userID == u.ID {
		// Choosing a status is activity: "online" must not read as away.
		if err := t.Team.TouchAgent(ctx, u.ID, t.now()); err != nil {
			return err
		}
	}
	t.audit(ctx, &u.ID, "agent.status", userSubject(userID), map[string]any{"status": string(st)})
	if st == baton.AgentOnline {
		t.WakeUp()
	}
	return nil
}

// SetCap sets a user's cap ("" returns them to the default); supervisors only.
func (t *Team) SetCap(ctx context.Context, u *baton.User, userID int64, value string) error {
	if !u.Role.AtLeast(baton.RoleSupervisor) {
		return baton.Errorf(baton.EFORBIDDEN, "Only supervisors set caps.")
	}
	var cp *int
	if v := strings.TrimSpace(value); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return baton.Errorf(baton.EINVALID, "A cap is a whole number from 0 to 1000, or empty for the default.")
		}
		cp = &n
	}
	if err := t.Team.SetAgentCap(ctx, userID, cp); err != nil {
		return err
	}
	detail := map[string]any{"cap": nil}
	if cp != nil {
		detail["cap"] = *cp
	}
	t.audit(ctx, &u.ID, "agent.cap", userSubject(userID), detail)
	t.WakeUp()
	return nil
}

// Touch records that u used the console, so they stay online.
func (t *Team) Touch(ctx context.Context, u *baton.User) error {
	return t.Team.TouchAgent(ctx, u.ID, t.now())
}

// Agents lists the team with effective statuses, by name.
func (t *Team) Agents(ctx context.Context) ([]*baton.Agent, error) {
	agents, err := t.Team.Agents(ctx)
	if err != nil {
		return nil, err
	}
	now := t.now()
	for _, a := range agents {
		a.Status = EffectiveStatus(a, now, t.idle())
	}
	return agents, nil
}

// CapOf is the agent's cap under this team's default.
func (t *Team) CapOf(a *baton.Agent) int { return CapOf(a, t.cap()) }

// AssignOnce runs one auto-assign scan and returns how many
// conversations it gave out.
func (t *Team) AssignOnce(ctx context.Context) (int, error) {
	now := t.now()
	convs, err := t.Team.AutoAssign(ctx, now, func(agents []*baton.Agent) (int64, bool) {
		return PickAgent(agents, t.cap(), now, t.idle())
	})
	for _, c := range convs {
		t.audit(ctx, nil, "conversation.auto_assign", convSubject(c.ID), map[string]any{"to": idOrNil(c.AssignedUserID)})
		t.changed(c.ID)
	}
	if err != nil {
		return len(convs), fmt.Errorf("auto-assign: %w", err)
	}
	return len(convs), nil
}

// Run scans for unassigned conversations on every wake-up and every
// Interval until ctx ends. A worker rather than a step of ingest: ingest
// stays one short transaction, and the same scan also serves agents who
// come online or free a slot later.
func (t *Team) Run(ctx context.Context) {
	every := t.Interval
	if every <= 0 {
		every = 30 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := t.AssignOnce(ctx); err != nil && ctx.Err() == nil && t.Logger != nil {
			t.Logger.Warn("auto-assign failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.Wake:
		}
	}
}

// MaxNoteLength bounds an internal note.
const MaxNoteLength = 4000

// mentionRe: @ at the start or after a non-word character (so an email
// address is not a mention), then the handle.
var mentionRe = regexp.MustCompile(`(?:^|[^\p{L}\p{N}._@-])@([\p{L}\p{N}._-]+)`)

// Mentions finds the users a note @mentions: @ followed by the first word
// of their name (or the part of their email before @), case-insensitively.
func Mentions(text string, agents []*baton.Agent) []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, sp := range MentionSpans(text) {
		word := strings.ToLower(strings.TrimRight(text[sp[0]+1:sp[1]], "._-"))
		for _, a := range agents {
			if !seen[a.UserID] && MentionHandle(a) == word {
				seen[a.UserID] = true
				out = append(out, a.UserID)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// MentionHandle is what follows @ to mention a: the first word of their
// name, lower-cased.
func MentionHandle(a *baton.Agent) string {
	name := strings.TrimSpace(a.Name)
	if i := strings.IndexByte(name, '@'); i > 0 {
		name = name[:i]
	}
	if f := strings.Fields(name); len(f) > 0 {
		return strings.ToLower(strings.TrimRight(f[0], "._-"))
	}
	return ""
}

// AddNote stores an internal note; the users it @mentions see the
// conversation under "Mentions" until they open it.
func (t *Team) AddNote(ctx context.Context, u *baton.User, id int64, text string) (*baton.Note, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, baton.Errorf(baton.EINVALID, "Write the note first.")
	}
	if utf8.RuneCountInString(text) > MaxNoteLength {
		return nil, baton.Errorf(baton.EINVALID, "A note takes at most %d characters.", MaxNoteLength)
	}
	agents, err := t.Team.Agents(ctx)
	if err != nil {
		return nil, err
	}
	n := &baton.Note{ConversationID: id, AuthorUserID: &u.ID, AuthorName: u.Name, Text: text, CreatedAt: t.now(),
		Mentions: Mentions(text, agents)}
	if err := t.Team.AddNote(ctx, n); err != nil {
		return nil, err
	}
	t.audit(ctx, &u.ID, "note.add", convSubject(id), map[string]any{"note_id": n.ID, "mentions": n.Mentions,
		"length": utf8.RuneCountInString(text)})
	t.changed(id)
	return n, nil
}

// TagName cleans a typed tag: lower-case, trimmed, at most 40 characters.
func TagName(s string) (string, error) {
	tags := CleanTags([]string{strings.ReplaceAll(s, ",", " ")})
	if len(tags) != 1 {
		return "", baton.Errorf(baton.EINVALID, "A tag is one word or phrase of at most 40 characters.")
	}
	return tags[0], nil
}

// AddTag applies a tag, creating it when new.
func (t *Team) AddTag(ctx context.Context, u *baton.User, id int64, name string) error {
	name, err := TagName(name)
	if err != nil {
		return err
	}
	if _, err := t.Team.AddTag(ctx, id, name); err != nil {
		return err
	}
	t.audit(ctx, &u.ID, "tag.add", convSubject(id), map[string]any{"tag": name})
	t.changed(id)
	return nil
}

// RemoveTag takes a tag off a conversation.
func (t *Team) RemoveTag(ctx context.Context, u *baton.User, id int64, name string) error {
	name, err := TagName(name)
	if err != nil {
		return err
	}
	if err := t.Team.RemoveTag(ctx, id, name); err != nil {
		return err
	}
	t.audit(ctx, &u.ID, "tag.remove", convSubject(id), map[string]any{"tag": name})
	t.changed(id)
	return nil
}

// MentionSpans returns the byte ranges of the @words in text, @ included.
func MentionSpans(text string) [][]int {
	var out [][]int
	for _, m := range mentionRe.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, []int{m[2] - 1, m[3]})
	}
	return out
}
