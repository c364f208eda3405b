package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// The loop that matters most, end to end over real HTTP between Baton and
// the emulator: a person writes, the bot answers, the person asks for a
// human, the bot hands over with JSON metadata and Baton has the bot's
// history; an agent replies and the person receives it; Done hands back
// with metadata, and the bot shows it understood.
func TestJourneyHandoverReplyDone(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	psid := s.newPerson("Maria", "Garcia")

	s.say(psid, "hi")
	waitFor(t, "the bot's greeting", func() bool { return s.pageSays(psid, demoBotAppID, "Hi Maria") })
	s.say(psid, "I was charged twice for my order, talk to a human please")
	waitFor(t, "the handover to Baton", func() bool {
		c := s.conversationOf(psid)
		return c != nil && c.Status == baton.StatusOpen
	})
	c := s.conversationOf(psid)
	if c.OwnerAppID != demoBatonAppID {
		t.Errorf("owner = %q, want Baton", c.OwnerAppID)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(c.HandoverMetadata), &md); err != nil || md["reason"] != "asked_for_human" || md["team"] != "billing" {
		t.Errorf("handover metadata = %s (%v)", c.HandoverMetadata, err)
	}
	msgs, err := s.inst.db.Messages(ctx, c.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var botPart, userPart int
	for _, m := range msgs {
		if m.Part != baton.PartBot {
			t.Errorf("message %q is %s, want the bot's part (before the handover)", m.Text, m.Part)
		}
		if m.Author == baton.AuthorUser {
			userPart++
		} else {
			botPart++
		}
	}
	if userPart != 2 || botPart < 2 {
		t.Errorf("history: %d from the person, %d from the bot; want 2 and ≥2", userPart, botPart)
	}

	// The agent replies; the person sees it, sent by Baton's app.
	svc := s.inst.cons.web.Service
	if _, err := svc.Reply(ctx, s.admin, c.ID, "Hi Maria, Ana here — I'm refunding the double charge now.", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent's reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "refunding the double charge") })
	waitFor(t, "the reply stored once as the agent's", func() bool {
		ms, _ := s.inst.db.Messages(ctx, c.ID, 0, 100)
		n := 0
		for _, m := range ms {
			if m.Author == baton.AuthorAgent && strings.Contains(m.Text, "refunding") {
				n++
			}
		}
		return n == 1
	})
	s.say(psid, "thank you!")
	waitFor(t, "the person's live message", func() bool {
		ms, _ := s.inst.db.Messages(ctx, c.ID, 0, 100)
		last := ms[len(ms)-1]
		return last.Text == "thank you!" && last.Part == baton.PartLive
	})

	// Done hands back to the bot with the metadata contract; the bot says
	// something that shows it read the outcome.
	if _, err := svc.Done(ctx, s.admin, c.ID, "resolved", "Refunded the duplicate charge", []string{"billing", "refund"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the conversation in Done", func() bool {
		c := s.conversationOf(psid)
		return c.Status == baton.StatusClosed && c.CloseReason == baton.CloseDone
	})
	waitFor(t, "the bot reacting to the outcome", func() bool { return s.pageSays(psid, demoBotAppID, "Glad that's sorted") })
	hos, _ := s.inst.db.Handovers(ctx, c.ID)
	var done *baton.Handover
	for _, h := range hos {
		if h.Kind == "done" {
			done = h
		}
	}
	if done == nil {
		t.Fatalf("no done handover in %v", hos)
	}
	var contract struct {
		V       int      `json:"v"`
		Outcome string   `json:"outcome"`
		Note    string   `json:"note"`
		Tags    []string `json:"tags"`
		Agent   struct {
			ID, Name string
		} `json:"agent"`
		ConversationID string `json:"conversation_id"`
	}
	if err := json.Unmarshal([]byte(done.Metadata), &contract); err != nil {
		t.Fatal(err)
	}
	if contract.V != 1 || contract.Outcome != "resolved" || contract.Note != "Refunded the duplicate charge" ||
		len(contract.Tags) != 2 || contract.ConversationID == "" || contract.Agent.Name == "" {
		t.Errorf("done metadata = %s", done.Metadata)
	}

	// Later messages stay with the bot.
	s.say(psid, "one more question: opening hours?")
	waitFor(t, "the bot answering again", func() bool { return s.pageSays(psid, demoBotAppID, "Monday to Saturday") })
	if c := s.conversationOf(psid); c.Status != baton.StatusClosed {
		t.Errorf("after Done the conversation is %s, want it to stay closed", c.Status)
	}
}

// A supervisor requests control of a thread the bot owns; the bot honours
// it and the conversation comes to Baton with its history.
func TestJourneyRequestControl(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	psid := s.newPerson("James", "Wilson")
	s.say(psid, "what are your opening hours?")
	waitFor(t, "the bot's answer", func() bool { return s.pageSays(psid, demoBotAppID, "Monday to Saturday") })
	// Baton hears the exchange on standby and shows it as bot-owned.
	waitFor(t, "the standby history", func() bool {
		c := s.conversationOf(psid)
		return c != nil && c.Status == baton.StatusBot && c.LastMessageText != "" && strings.Contains(c.LastMessageText, "Monday")
	})
	c := s.conversationOf(psid)
	svc := s.inst.cons.web.Service
	if _, err := svc.RequestControl(ctx, s.admin, c.ID, "VIP customer"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "control to arrive", func() bool {
		c := s.conversationOf(psid)
		return c.Status == baton.StatusOpen && c.RequestedAt == nil
	})
	if _, err := svc.Reply(ctx, s.admin, c.ID, "Hello James, a person here.", "", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "a person here") })
}

// The window: past 24 h a reply goes out with the HUMAN_AGENT tag; past
// 7 days Baton refuses before calling Facebook. Classic mode: threads
// never go idle there, so the platform's 24 h expiry (routing mode) cannot
// close the conversation before the reply.
func TestJourneyMessagingWindow(t *testing.T) {
	s := bootStack(t, Env{"EMULATOR_MODE": "classic"})
	ctx := context.Background()
	psid := s.newPerson("Aiko", "Tanaka")
	s.say(psid, "agent please")
	waitFor(t, "the handover", func() bool { c := s.conversationOf(psid); return c != nil && c.Status == baton.StatusOpen })
	c := s.conversationOf(psid)
	svc := s.inst.cons.web.Service

	s.advance(25 * time.Hour)
	it, err := svc.Reply(ctx, s.admin, c.ID, "Sorry for the wait, here is your answer.", "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the tagged reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "Sorry for the wait") })
	var mt, tag, st string
	waitFor(t, "the outbox entry marked sent", func() bool {
		s.inst.db.QueryRowContext(ctx, `select status, messaging_type, tag from outbox where id = $1`, it.ID).Scan(&st, &mt, &tag)
		return st == "sent"
	})
	if mt != "MESSAGE_TAG" || tag != "HUMAN_AGENT" {
		t.Errorf("sent as %s/%s, want MESSAGE_TAG/HUMAN_AGENT", mt, tag)
	}

	s.advance(7 * 24 * time.Hour)
	_, err = svc.Reply(ctx, s.admin, c.ID, "Still there?", "", "")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "window closed") {
		t.Fatalf("reply after 8 days: %v, want a local refusal saying the window closed", err)
	}
	if s.pageSays(psid, demoBatonAppID, "Still there?") {
		t.Error("the refused reply reached Messenger")
	}
}

// With the Graph API down the reply is kept and retried; once it has
// failed for good the agent sees why, and Retry sends it after recovery.
func TestJourneyGraphDownThenRetry(t *testing.T) {
	s := bootStack(t, nil)
	ctx := context.Background()
	psid := s.newPerson("Lee", "Park")
	s.say(psid, "human")
	waitFor(t, "the handover", func() bool { c := s.conversationOf(psid); return c != nil && c.Status == baton.StatusOpen })
	c := s.conversationOf(psid)
	svc := s.inst.cons.web.Service

	s.faults(map[string]any{"graph_down": true})
	it, err := svc.Reply(ctx, s.admin, c.ID, "Your parcel is on its way.", "", "")
	if err != nil {
		t.Fatal(err)
	}
	status := func() (st, lastErr string, attempts int) {
		s.inst.db.QueryRowContext(ctx, `select status, last_error, attempts from outbox where id = $1`, it.ID).Scan(&st, &lastErr, &attempts)
		return
	}
	waitFor(t, "a failed attempt to be retried", func() bool { st, _, n := status(); return st == "pending" && n >= 1 })
	// Transient errors retry for 15 minutes; move past that.
	s.advance(16 * time.Minute)
	waitFor(t, "the message to fail for good", func() bool { st, _, _ := status(); return st == "failed" })
	if _, e, _ := status(); e == "" {
		t.Error("failed without a reason for the agent")
	}
	if s.pageSays(psid, demoBatonAppID, "parcel") {
		t.Fatal("sent while the Graph API was down")
	}

	s.faults(map[string]any{"graph_down": false})
	if _, err := svc.Retry(ctx, s.admin, it.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retried message on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "parcel is on its way") })
	waitFor(t, "sent", func() bool { st, _, _ := status(); return st == "sent" })
}
