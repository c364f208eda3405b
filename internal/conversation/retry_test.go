package conversation

import (
	"testing"

	"github.com/baton-chat/baton/internal/baton"
)

func TestRetryRule(t *testing.T) {
	for _, tc := range []struct {
		kind       string
		status     baton.Status
		mayRequest bool
		want       string
	}{
		{"message", baton.StatusOpen, false, ""},
		{"pass", baton.StatusOpen, false, ""},
		{"message", baton.StatusBot, true, baton.ECONFLICT},
		{"message", baton.StatusClosed, true, baton.ECONFLICT},
		{"request", baton.StatusBot, true, ""},
		{"request", baton.StatusBot, false, baton.EFORBIDDEN},
		{"request", baton.StatusOpen, true, baton.ECONFLICT},
	} {
		err := retryRule(tc.kind, &baton.Conversation{Status: tc.status}, tc.mayRequest)
		if got := baton.ErrorCode(err); got != tc.want {
			t.Errorf("%s on a %s conversation (may request: %v): %q, want %q", tc.kind, tc.status, tc.mayRequest, got, tc.want)
		}
	}
}
