package messenger

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
)

// VerifySHA256 reports whether header (the X-Hub-Signature-256 value,
// "sha256=<hex>", hex in either case) is the HMAC-SHA256 of body under
// secret. It works on the raw received bytes, before any parsing, and
// compares in constant time (PROTOCOL.md §4.3).
func VerifySHA256(body []byte, header, secret string) bool {
	return verify(sha256.New, "sha256=", sha256.Size, body, header, secret)
}

// VerifySHA1 checks the legacy X-Hub-Signature header ("sha1=<hex>"). Baton
// accepts it only when configured to.
func VerifySHA1(body []byte, header, secret string) bool {
	return verify(sha1.New, "sha1=", sha1.Size, body, header, secret)
}

func verify(h func() hash.Hash, prefix string, size int, body []byte, header, secret string) bool {
	if secret == "" || len(header) != len(prefix)+2*size || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got, err := hex.DecodeString(header[len(prefix):])
	if err != nil {
		return false
	}
	mac := hmac.New(h, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// SignSHA256 returns the X-Hub-Signature-256 value for body: what Facebook
// sends, used by Baton's tests and benchmark to sign deliveries.
func SignSHA256(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
