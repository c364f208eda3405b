package conversation

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/baton-chat/baton/internal/baton"
)

// Service carries out agents' actions on conversations: replies, Done,
// request control, retries, read marks. Every action that talks to
// Facebook goes through the outbox, committed in the same transaction as
// its effect on the conversation.
type Service struct {
	Store baton.ConsoleStore
	// Page returns the connected Page as now known (Baton's and the
	// Primary's app ids).
	Page func(ctx context.Context) (*baton.Page, error)
	// HumanAgent reports whether the app may use the HUMAN_AGENT tag.
	HumanAgent func() bool
	// AgentsMayRequest lets agents, not only supervisors, request control.
	AgentsMayRequest bool
	// RequestTimeout: a request the bot has not answered after this is
	// shown as ignored.
	RequestTimeout time.Duration
	// UnassignOnDone clears the assignee when Done is clicked
	// (BATON_UNASSIGN_ON_DONE), so an agent's load drops at once and the
	// next handover can reach them.
	UnassignOnDone bool
	Now            func() time.Time
}

// MaxTextLength is the Send API's limit on message.text (PROTOCOL.md §8.1).
const MaxTextLength = 2000

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) humanAgent() bool { return s.HumanAgent != nil && s.HumanAgent() }

// Window is the conversation's messaging window now.
func (s *Service) Window(c *baton.Conversation) Window {
	return WindowAt(c.LastUserEventMS, s.now(), s.humanAgent())
}

// CanReply says whether an agent may send in c now, and if not, why in
// plain words (SPEC "Beyond every peer" 1).
func (s *Service) CanReply(p *baton.Page, c *baton.Conversation) (bool, string) {
	now := s.now()
	switch {
	case c.Closing:
		return false, "Handing this conversation back to the bot…"
	case c.Status == baton.StatusClosed && c.CloseReason == baton.CloseTakenBack && c.ClosedAt != nil:
		return false, "The bot took this thread back at " + c.ClosedAt.Local().Format("15:04, Jan 2") + ". Request control to answer again."
	case c.Status == baton.StatusClosed && c.ClosedAt != nil:
		return false, "This conversation was handed back (" + closeWords(c.CloseReason) + ") at " + c.ClosedAt.Local().Format("15:04, Jan 2") + ". It stays with the bot unless control is passed again."
	case c.Status != baton.StatusOpen:
		return false, OwnerSentence(p, c) + " Baton can read along but not reply until control is passed to it."
	}
	if w := WindowAt(c.LastUserEventMS, now, s.humanAgent()); w.Tier == TierClosed {
		return false, w.Describe(now)
	}
	return true, ""
}

func closeWords(reason string) string {
	switch reason {
	case baton.CloseDone:
		return "Done"
	case baton.CloseTakenBack:
		return "taken back by the bot"
	case baton.CloseExpired:
		return "the platform released the idle thread"
	case baton.CloseIdle:
		return "idle auto-return"
	}
	return "control moved to another app"
}

// OwnerSentence says who owns the thread, in plain words.
func OwnerSentence(p *baton.Page, c *baton.Conversation) string {
	switch p.OwnerKindOf(c.OwnerAppID) {
	case baton.OwnerBaton:
		return "Baton owns this thread."
	case baton.OwnerBot:
		return "The bot owns this thread."
	case baton.OwnerPageInbox:
		return "Meta's Page Inbox owns this thread."
	case baton.OwnerIdle:
		return "Nobody owns this thread right now (idle)."
	}
	return "Another app (" + c.OwnerAppID + ") owns this thread."
}

// Reply queues an agent's message. It refuses at once, before anything is
// stored or sent, when Baton does not own the thread or the window closed.
func (s *Service) Reply(ctx context.Context, u *baton.User, id int64, text, attType, attURL string) (*baton.OutboxItem, error) {
	text = strings.TrimSpace(text)
	attURL = strings.TrimSpace(attURL)
	if text == "" && attURL == "" {
		return nil, baton.Errorf(baton.EINVALID, "Write a message or give an attachment URL.")
	}
	if utf8.RuneCountInString(text) > MaxTextLength {
		return nil, baton.Errorf(baton.EINVALID, "Messenger takes at most %d characters in one message.", MaxTextLength)
	}
	if attURL != "" {
		if !strings.HasPrefix(attURL, "https://") && !strings.HasPrefix(attURL, "http://") {
			return nil, baton.Errorf(baton.EINVALID, "The attachment must be an http(s) URL.")
		}
		switch attType {
		case "image", "video", "audio", "file":
		case "":
			attType = "image"
		default:
			return nil, baton.Errorf(baton.EINVALID, "Attachment type must be image, video, audio or file.")
		}
		if text != "" {
			// The Send API takes text or an attachment per message: send
			// the text first, then the attachment.
			if _, err := s.Reply(ctx, u, id, text, "", ""); err != nil {
				return nil, err
			}
			text = ""
		}
	}
	p, err := s.Page(ctx)
	if err != nil {
		return nil, err
	}
	uid := u.ID
	it := &baton.OutboxItem{Kind: "message", Text: text, AttachmentType: attType, AttachmentURL: attURL, AuthorUserID: &uid}
	if attURL == "" {
		it.AttachmentType = ""
	}
	err = s.Store.Enqueue(ctx, id, it, func(c *baton.Conversation) error {
		if ok, why := s.CanReply(p, c); !ok {
			return baton.Errorf(baton.ECONFLICT, "%s", why)
		}
		c.Unread = 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// DonePreview is the exact metadata the bot will receive for these choices.
func (s *Service) DonePreview(c *baton.Conversation, u *baton.User, outcome, note string, tags []string) string {
	handled := int64(0)
	if c.OpenedAt != nil {
		handled = int64(s.now().Sub(*c.OpenedAt).Seconds())
	}
	return DoneMetadata{
		Outcome: outcome, Note: strings.TrimSpace(note), Tags: CleanTags(tags),
		Agent:          &Agent{ID: "u_" + strconv.FormatInt(u.ID, 10), Name: u.Name},
		ConversationID: ConversationRef(c.ID), HandledSeconds: max(handled, 0),
	}.Encode()
}

// ConversationRef is the conversation id bots see ("c_42").
func ConversationRef(id int64) string { return "c_" + strconv.FormatInt(id, 10) }

// CleanTags trims, lower-cases and de-duplicates tags.
func CleanTags(tags []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range tags {
		for _, part := range strings.Split(t, ",") {
			part = strings.ToLower(strings.TrimSpace(part))
			if part != "" && !seen[part] && len(part) <= 40 {
				seen[part] = true
				out = append(out, part)
			}
		}
	}
	return out
}

// Done hands the thread back to the Primary with the hand-back metadata.
// The conversation shows "handing back" until the pass succeeds, then
// moves to Done; a failed pass is shown and can be retried.
func (s *Service) Done(ctx context.Context, u *baton.User, id int64, outcome, note string, tags []string) (*baton.OutboxItem, error) {
	if !ValidOutcome(outcome) {
		return nil, baton.Errorf(baton.EINVALID, "Pick an outcome: %s.", strings.Join(Outcomes, ", "))
	}
	p, err := s.Page(ctx)
	if err != nil {
		return nil, err
	}
	uid := u.ID
	// PROTOCOL.md §13.1: target the Primary when known, else omit it and
	// let the platform default to the Primary.
	it := &baton.OutboxItem{Kind: "pass", TargetAppID: p.PrimaryAppID, AuthorUserID: &uid}
	err = s.Store.Enqueue(ctx, id, it, func(c *baton.Conversation) error {
		if c.Status != baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "This conversation is not in Baton's inbox any more.")
		}
		if c.Closing {
			return baton.Errorf(baton.ECONFLICT, "Done was already clicked; the hand-back is on its way.")
		}
		it.Metadata = s.DonePreview(c, u, outcome, note, tags)
		c.Closing, c.DoneOutcome = true, outcome
		if s.UnassignOnDone {
			c.AssignedUserID = nil
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// MayRequest says whether u may request control of bot-owned threads.
func (s *Service) MayRequest(u *baton.User) bool {
	return u != nil && (u.Role.AtLeast(baton.RoleSupervisor) || (s.AgentsMayRequest && u.Role.AtLeast(baton.RoleAgent)))
}

// RequestControl asks the owner for the thread (request_thread_control)
// with the reason as metadata. It stays pending until a pass arrives.
func (s *Service) RequestControl(ctx context.Context, u *baton.User, id int64, reason string) (*baton.OutboxItem, error) {
	if !s.MayRequest(u) {
		return nil, baton.Errorf(baton.EFORBIDDEN, "Only supervisors may request control.")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, baton.Errorf(baton.EINVALID, "Say why you want this conversation; the bot's developers see it.")
	}
	uid := u.ID
	it := &baton.OutboxItem{Kind: "request", AuthorUserID: &uid}
	err := s.Store.Enqueue(ctx, id, it, func(c *baton.Conversation) error {
		if c.Status == baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "Baton already owns this conversation.")
		}
		if c.RequestedAt != nil && !s.RequestIgnored(c) {
			return baton.Errorf(baton.ECONFLICT, "Control was already requested; waiting for the bot.")
		}
		it.Metadata = RequestMetadata{Reason: reason, RequestedBy: &Agent{ID: "u_" + strconv.FormatInt(u.ID, 10), Name: u.Name},
			ConversationID: ConversationRef(c.ID)}.Encode()
		t := s.now()
		c.RequestedAt, c.RequestReason = &t, reason
		return nil
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// RequestIgnored reports whether c's pending request went unanswered for
// longer than RequestTimeout.
func (s *Service) RequestIgnored(c *baton.Conversation) bool {
	timeout := s.RequestTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	return c.RequestedAt != nil && s.now().Sub(*c.RequestedAt) > timeout
}

// AbandonRequest clears a pending request.
func (s *Service) AbandonRequest(ctx context.Context, u *baton.User, id int64) error {
	if !s.MayRequest(u) {
		return baton.Errorf(baton.EFORBIDDEN, "Only supervisors may abandon requests.")
	}
	_, err := s.Store.Update(ctx, id, func(c *baton.Conversation) error {
		c.RequestedAt, c.RequestReason = nil, ""
		return nil
	})
	return err
}

// Retry puts a failed item (a message or a pass) back in the queue: the
// agent asked for one more attempt.
func (s *Service) Retry(ctx context.Context, u *baton.User, outboxID int64) (*baton.OutboxItem, error) {
	return s.Store.RetryOutbox(ctx, outboxID, func(kind string, c *baton.Conversation) error {
		return retryRule(kind, c, s.MayRequest(u))
	})
}

// retryRule says whether a failed item may be sent again now.
func retryRule(kind string, c *baton.Conversation, mayRequest bool) error {
	if kind == "request" {
		// A request for control is about a thread the bot owns: only
		// those who may request may see it and send it again.
		if !mayRequest {
			return baton.Errorf(baton.EFORBIDDEN, "Only supervisors may request control.")
		}
		if c.Status == baton.StatusOpen {
			return baton.Errorf(baton.ECONFLICT, "Nothing to retry: Baton already owns this conversation.")
		}
		return nil
	}
	// Anything else is said as Baton: only while Baton owns the thread
	// (and only then may every agent see the conversation at all).
	if c.Status != baton.StatusOpen {
		return baton.Errorf(baton.ECONFLICT, "Nothing to retry: Baton no longer owns this conversation.")
	}
	return nil
}

// MarkRead clears the unread count when an agent opens the conversation,
// and tells the person (mark_seen) while the window allows it.
func (s *Service) MarkRead(ctx context.Context, u *baton.User, c *baton.Conversation) error {
	if c.Unread == 0 || c.Status != baton.StatusOpen {
		return nil
	}
	uid := u.ID
	return s.Store.Enqueue(ctx, c.ID, &baton.OutboxItem{Kind: "mark_seen", AuthorUserID: &uid}, func(c *baton.Conversation) error {
		c.Unread = 0
		return nil
	})
}

// Typing shows the person that an agent is typing.
func (s *Service) Typing(ctx context.Context, u *baton.User, id int64) error {
	uid := u.ID
	return s.Store.Enqueue(ctx, id, &baton.OutboxItem{Kind: "typing_on", AuthorUserID: &uid}, func(c *baton.Conversation) error {
		if c.Status != baton.StatusOpen || c.Closing {
			return baton.Errorf(baton.ECONFLICT, "Baton does not own this conversation.")
		}
		return nil
	})
}
