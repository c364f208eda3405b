package conversation

import (
	"fmt"
	"time"
)

// Window lengths of PROTOCOL.md §11, and Baton's safety margin: a reply
// decided a minute before the edge could arrive after it.
const (
	ResponseWindow   = 24 * time.Hour
	HumanAgentWindow = 7 * 24 * time.Hour
	WindowMargin     = 60 * time.Second
)

// Tier is what the next reply may be sent as.
type Tier string

const (
	TierResponse   Tier = "response"    // messaging_type RESPONSE
	TierHumanAgent Tier = "human_agent" // MESSAGE_TAG + HUMAN_AGENT
	TierClosed     Tier = "closed"      // nothing may be sent
	TierUnknown    Tier = "unknown"     // no user event stored: try RESPONSE
)

// Window is the messaging window of a thread at one moment.
type Window struct {
	Tier Tier
	// Left is the time left in the current tier (0 when closed/unknown).
	Left time.Duration
	// ClosedAt is when the last tier closed (only when closed).
	ClosedAt time.Time
}

// WindowAt computes the window from the person's newest message, postback
// or referral (epoch ms; 0 = none seen). humanAgent: the app holds the
// Human Agent permission.
func WindowAt(lastUserEventMS int64, now time.Time, humanAgent bool) Window {
	if lastUserEventMS <= 0 {
		return Window{Tier: TierUnknown}
	}
	age := now.Sub(time.UnixMilli(lastUserEventMS))
	if left := ResponseWindow - WindowMargin - age; left > 0 {
		return Window{Tier: TierResponse, Left: left}
	}
	if humanAgent {
		if left := HumanAgentWindow - WindowMargin - age; left > 0 {
			return Window{Tier: TierHumanAgent, Left: left}
		}
		return Window{Tier: TierClosed, ClosedAt: time.UnixMilli(lastUserEventMS).Add(HumanAgentWindow - WindowMargin)}
	}
	return Window{Tier: TierClosed, ClosedAt: time.UnixMilli(lastUserEventMS).Add(ResponseWindow - WindowMargin)}
}

// MessagingType is the Send API messaging_type and tag for the tier.
func (w Window) MessagingType() (messagingType, tag string) {
	switch w.Tier {
	case TierResponse, TierUnknown:
		return "RESPONSE", ""
	case TierHumanAgent:
		return "MESSAGE_TAG", "HUMAN_AGENT"
	}
	return "", ""
}

// Describe says in plain words what the next reply will be, for the
// composer ("Standard reply · 23 h 12 min left").
func (w Window) Describe(now time.Time) string {
	switch w.Tier {
	case TierResponse:
		return "Standard reply · " + Human(w.Left) + " left in the 24-hour window"
	case TierHumanAgent:
		return "Human agent reply (HUMAN_AGENT tag) · " + Human(w.Left) + " left in the 7-day window"
	case TierUnknown:
		return "Standard reply"
	}
	return fmt.Sprintf("The reply window closed %s ago; Messenger allows no more messages until the person writes again.", Human(now.Sub(w.ClosedAt)))
}

// Human formats a duration for people: "3 d 4 h", "5 h 12 min", "42 min", "30 s".
func Human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d s", int(d.Seconds()))
}
