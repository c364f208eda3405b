package messenger

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
)

const secret = "app-secret"

// Meta signs an ASCII body with \uXXXX escapes and \/ (PROTOCOL.md §4.3):
// the check must run over those exact bytes.
var signedBody = []byte(`{"object":"page","entry":[{"id":"100200300","messaging":[{"message":{"text":"\u00e4\u00f6\u00e5 https:\/\/x"}}]}]}`)

func sha1Header(body []byte, key string) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write(body)
	return "sha1=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerifySHA256(t *testing.T) {
	good := SignSHA256(signedBody, secret)
	hexPart := strings.TrimPrefix(good, "sha256=")
	flipped := []byte(hexPart)
	if flipped[0] == '0' {
		flipped[0] = '1'
	} else {
		flipped[0] = '0'
	}
	tests := []struct {
		name   string
		body   []byte
		header string
		secret string
		want   bool
	}{
		{"valid", signedBody, good, secret, true},
		{"uppercase hex", signedBody, "sha256=" + strings.ToUpper(hexPart), secret, true},
		{"uppercase prefix", signedBody, "SHA256=" + hexPart, secret, true},
		{"missing", signedBody, "", secret, false},
		{"prefix only", signedBody, "sha256=", secret, false},
		{"no prefix", signedBody, hexPart, secret, false},
		{"sha1 prefix", signedBody, "sha1=" + hexPart, secret, false},
		{"truncated", signedBody, good[:len(good)-2], secret, false},
		{"one extra digit", signedBody, good + "0", secret, false},
		{"not hex", signedBody, "sha256=" + strings.Repeat("zz", 32), secret, false},
		{"one digit changed", signedBody, "sha256=" + string(flipped), secret, false},
		{"wrong secret", signedBody, SignSHA256(signedBody, "other"), secret, false},
		{"empty secret never verifies", signedBody, SignSHA256(signedBody, ""), "", false},
		{"body changed by one byte", append([]byte(nil), append(signedBody[:len(signedBody)-1:len(signedBody)-1], ' ')...), good, secret, false},
		{"body re-encoded as utf-8", []byte(strings.Replace(string(signedBody), `\u00e4\u00f6\u00e5`, "äöå", 1)), good, secret, false},
		{"body with slashes unescaped", []byte(strings.Replace(string(signedBody), `\/`, "/", -1)), good, secret, false},
		{"sha1 header value", signedBody, sha1Header(signedBody, secret), secret, false},
		{"empty body", nil, SignSHA256(nil, secret), secret, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySHA256(tt.body, tt.header, tt.secret); got != tt.want {
				t.Errorf("VerifySHA256 = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifySHA1(t *testing.T) {
	good := sha1Header(signedBody, secret)
	tests := []struct {
		name   string
		header string
		want   bool
	}{
		{"valid", good, true},
		{"uppercase", strings.ToUpper(good), true},
		{"missing", "", false},
		{"sha256 value", SignSHA256(signedBody, secret), false},
		{"wrong secret", sha1Header(signedBody, "other"), false},
		{"truncated", good[:len(good)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySHA1(signedBody, tt.header, secret); got != tt.want {
				t.Errorf("VerifySHA1 = %v, want %v", got, tt.want)
			}
		})
	}
	if VerifySHA1(signedBody, sha1Header(signedBody, ""), "") {
		t.Error("empty secret verified")
	}
}

// SignSHA256 produces what Facebook sends: lowercase hex, sha256= prefix.
func TestSignSHA256Format(t *testing.T) {
	// HMAC-SHA256 of "" under key "" is a fixed, published value.
	const want = "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
	if got := SignSHA256(nil, ""); got != want {
		t.Errorf("SignSHA256 = %s, want %s", got, want)
	}
	if got := SignSHA256(signedBody, secret); got != strings.ToLower(got) || len(got) != len("sha256=")+64 {
		t.Errorf("SignSHA256 = %q: want sha256= and 64 lowercase hex digits", got)
	}
}
