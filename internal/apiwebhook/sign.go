// Package apiwebhook sends Baton's outgoing webhooks: signed JSON events
// about conversations (handed over, done, taken back, messages,
// assignment, tags, control requests) to the receivers admins register, so
// that a team's CRM hears of them without polling the API.
//
// Events are derived from rows that are already durable (handovers,
// messages, audit_log), never from in-memory hooks: a dispatcher reads each
// source after its cursor and queues one delivery per event and endpoint
// in the same transaction that advances the cursor, so nothing is lost
// when an instance dies and ingest and the console never wait for a
// receiver. A sender then posts each delivery, retrying with backoff for
// up to a day: delivery is at least once, and receivers deduplicate on the
// event id (X-Baton-Delivery).
package apiwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" of
	// "<t>.<body>" under the endpoint's secret. The timestamp is signed
	// too, so a captured request cannot be replayed later than the
	// receiver's tolerance.
	HeaderSignature = "X-Baton-Signature"
	// HeaderEvent is the event type, for routing without parsing.
	HeaderEvent = "X-Baton-Event"
	// HeaderDelivery is the event id: the same on every retry and for
	// every endpoint, so receivers deduplicate on it.
	HeaderDelivery = "X-Baton-Delivery"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock: long enough for clock skew and a slow network, short
// enough that a replayed request is refused.
const DefaultTolerance = 5 * time.Minute

// Sign returns the X-Baton-Signature value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrMalformedSignature = errors.New("malformed signature header")
	ErrBadSignature       = errors.New("signature does not match")
	ErrStaleSignature     = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a signature header as a receiver must: the HMAC of
// "<t>.<body>" matches one of the v1 values (compared in constant time),
// and t is within tolerance of now (0 means DefaultTolerance). Receivers
// written in Go may call it; the README shows the same in ten lines.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrMalformedSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrMalformedSignature
	}
	want := []byte(mac(secret, ts, body))
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal([]byte(s), want) || ok
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s off", ErrStaleSignature, d.Round(time.Second))
	}
	return nil
}
