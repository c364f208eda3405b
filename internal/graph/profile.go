package graph

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// profileFields are the fields Baton asks for, exactly as PROTOCOL.md §8.9
// spells the call; name is derived when Graph does not send it.
const profileFields = "first_name,last_name,profile_pic"

// Profile is a person's name and picture from the User Profile API, shown on
// the contact panel. PicExpires is when ProfilePic stops working (its ext=
// parameter, or the CDN's hex oe=); zero when the URL carries neither. Baton
// refetches the profile then.
type Profile struct {
	FirstName, LastName, Name, ProfilePic string
	PicExpires                            time.Time
}

// UserProfile calls GET /<PSID>?fields=first_name,last_name,profile_pic
// (PROTOCOL.md §8.9). A hidden profile, whether Graph answers 100/2018218
// or the older `{}`, is returned as *Error with Code 100 and Subcode
// 2018218, so IsNoProfile covers both; there is no separate sentinel.
func (c *Client) UserProfile(ctx context.Context, psid string) (Profile, error) {
	if !isDigits(psid) {
		// The PSID becomes a path segment: only digits keep the URL sound.
		return Profile{}, fmt.Errorf("graph: user profile: %w",
			invalid(fmt.Sprintf("psid %q", psid), "This conversation has no valid Messenger recipient."))
	}
	var out struct {
		FirstName  string `json:"first_name"`
		LastName   string `json:"last_name"`
		Name       string `json:"name"`
		ProfilePic string `json:"profile_pic"`
	}
	q := url.Values{"fields": {profileFields}}
	if err := c.call(ctx, "GET", "/"+psid, q, nil, &out); err != nil {
		return Profile{}, fmt.Errorf("graph: user profile: %w", err)
	}
	if out.FirstName == "" && out.LastName == "" && out.Name == "" && out.ProfilePic == "" {
		return Profile{}, fmt.Errorf("graph: user profile: %w", &Error{
			HTTPStatus: 200, Code: 100, Subcode: messenger.CodeNoProfileSub, Type: "OAuthException",
			Message: "(#100) No profile available for this user.",
		})
	}
	p := Profile{
		FirstName:  out.FirstName,
		LastName:   out.LastName,
		Name:       out.Name,
		ProfilePic: out.ProfilePic,
		PicExpires: picExpiry(out.ProfilePic),
	}
	if p.Name == "" {
		p.Name = strings.TrimSpace(p.FirstName + " " + p.LastName)
	}
	return p, nil
}

// picExpiry reads when a profile picture URL expires: ext= in unix seconds
// (PROTOCOL.md §8.9), else fbcdn's oe= in hex seconds. Zero means unknown.
func picExpiry(pic string) time.Time {
	u, err := url.Parse(pic)
	if err != nil {
		return time.Time{}
	}
	q := u.Query()
	if sec, err := strconv.ParseInt(q.Get("ext"), 10, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0).UTC()
	}
	if sec, err := strconv.ParseInt(q.Get("oe"), 16, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0).UTC()
	}
	return time.Time{}
}
