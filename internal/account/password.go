// Package account holds the rules of console accounts: the password
// policy, password hashing, sign-in with rate limiting, and user
// management (roles, disabling, the last admin). Storage comes in through
// baton.UserService; nothing here knows about HTTP.
package account

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/baton-chat/baton/internal/baton"
	"golang.org/x/crypto/bcrypt"
)

// Password policy. NIST SP 800-63B: a floor on length, a generous ceiling,
// no composition rules. The ceiling only bounds the work per request.
const (
	MinPasswordLength = 10
	MaxPasswordLength = 1024
)

// DefaultCost is the bcrypt cost Baton hashes with: about a quarter of a
// second per hash on a small server, which is what makes offline guessing
// slow. Never lower in production.
const DefaultCost = 12

// CheckPassword applies the policy to a new password.
func CheckPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLength:
		return baton.Errorf(baton.EINVALID, "The password must be at least %d characters long.", MinPasswordLength)
	case n > MaxPasswordLength:
		return baton.Errorf(baton.EINVALID, "The password must be at most %d characters long.", MaxPasswordLength)
	}
	return nil
}

// Hasher hashes and verifies passwords with bcrypt.
type Hasher struct {
	cost int
	// dummy is verified against for unknown emails, at the same cost, so
	// that the answer takes as long as for a real account. It is made on
	// first use (or by Warm) so a CLI command pays for one hash, not two.
	dummy func() []byte
}

// NewHasher returns a hasher at cost (0: DefaultCost). Tests pass a low
// cost to stay fast; everything else uses the default.
func NewHasher(cost int) (*Hasher, error) {
	if cost == 0 {
		cost = DefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h := &Hasher{cost: cost}
	h.dummy = sync.OnceValue(func() []byte {
		d, err := bcrypt.GenerateFromPassword(prehash("baton dummy password"), cost)
		if err != nil {
			// Only an out-of-range cost fails, and that was checked above.
			panic(fmt.Sprintf("account: make dummy hash: %v", err))
		}
		return d
	})
	return h, nil
}

// Cost is the bcrypt cost new hashes get.
func (h *Hasher) Cost() int { return h.cost }

// Warm makes the dummy hash now, so that the first unknown email is not
// answered more slowly than the others. A server calls it at start.
func (h *Hasher) Warm() { h.dummy() }

// prehash turns any password into 44 printable bytes, because bcrypt reads
// at most 72 bytes: without it, two long passwords sharing a 72-byte prefix
// would be the same password, and the policy allows up to 1024 characters.
func prehash(pw string) []byte {
	m := hmac.New(sha256.New, []byte("baton password v1"))
	m.Write([]byte(pw))
	sum := m.Sum(nil)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum)
	return out
}

// Hash returns the bcrypt hash of pw after checking the policy.
func (h *Hasher) Hash(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	b, err := bcrypt.GenerateFromPassword(prehash(pw), h.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(b), nil
}

// Verify reports whether pw matches hash. An empty or corrupt hash never
// matches, but still costs a bcrypt verification.
func (h *Hasher) Verify(hash, pw string) bool {
	if hash == "" {
		h.VerifyDummy(pw)
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), prehash(pw))
	if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		// A corrupt hash fails fast inside bcrypt; pay the usual price.
		h.VerifyDummy(pw)
	}
	return err == nil
}

// VerifyDummy spends the time of one verification and always fails: used
// for unknown emails so that timing does not reveal which emails exist.
func (h *Hasher) VerifyDummy(pw string) {
	bcrypt.CompareHashAndPassword(h.dummy(), prehash(pw))
}
