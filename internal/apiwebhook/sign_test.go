package apiwebhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/apiwebhook"
)

func TestSignAndVerify(t *testing.T) {
	secret := "whsec_test"
	body := []byte(`{"v":1,"id":"msg_1","type":"message.created","data":{"text":"<b>hi</b>"}}`)
	at := time.Unix(1767225600, 0)
	good := apiwebhook.Sign(secret, at, body)
	// Known answer, computed apart (Python's hmac): HMAC-SHA256 under the
	// secret of "1767225600." followed by the body.
	const want = "t=1767225600,v1=7e9c83e32c0f303ad38ced62ae809856c23326519501d02082cdb49dc62bc757"
	if good != want {
		t.Fatalf("Sign = %q, want %q", good, want)
	}
	cases := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		err    error
	}{
		{"valid", secret, good, body, at, nil},
		{"valid, clock a little ahead", secret, good, body, at.Add(4 * time.Minute), nil},
		{"valid, clock a little behind", secret, good, body, at.Add(-4 * time.Minute), nil},
		{"spaces after commas", secret, strings.Replace(good, ",", ", ", 1), body, at, nil},
		{"one of several v1 matches (secret rotation)", secret, good + ",v1=" + strings.Repeat("0", 64), body, at, nil},
		{"replayed too late", secret, good, body, at.Add(6 * time.Minute), apiwebhook.ErrStaleSignature},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), apiwebhook.ErrStaleSignature},
		{"other secret", "whsec_other", good, body, at, apiwebhook.ErrBadSignature},
		{"body changed", secret, good, append([]byte(nil), append(body, ' ')...), at, apiwebhook.ErrBadSignature},
		{"timestamp changed", secret, strings.Replace(good, "t=1767225600", "t=1767225601", 1), body, at, apiwebhook.ErrBadSignature},
		{"no v1", secret, "t=1767225600", body, at, apiwebhook.ErrMalformedSignature},
		{"no t", secret, good[strings.Index(good, "v1="):], body, at, apiwebhook.ErrMalformedSignature},
		{"garbage", secret, "sha256=abc", body, at, apiwebhook.ErrMalformedSignature},
		{"empty", secret, "", body, at, apiwebhook.ErrMalformedSignature},
	}
	for _, c := range cases {
		err := apiwebhook.Verify(c.secret, c.header, c.body, c.now, 0)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.err)
		}
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		attempts int
		max      time.Duration
	}{
		{1, 10 * time.Second},
		{2, 20 * time.Second},
		{3, 40 * time.Second},
		{6, 320 * time.Second},
		{9, 2560 * time.Second},
		{10, time.Hour},
		{50, time.Hour},
	}
	for _, c := range cases {
		for range 50 {
			d := apiwebhook.Backoff(c.attempts)
			if d > c.max || d < c.max*3/4 {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", c.attempts, d, c.max*3/4, c.max)
			}
		}
	}
}
