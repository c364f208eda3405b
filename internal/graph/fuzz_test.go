package graph

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// fuzzSeeds are the PROTOCOL.md §9.2 rows with the status §9.1 says the
// emulator answers them under, plus the §9.1 variants Baton must accept
// (any status, string error, no envelope at all).
var fuzzSeeds = []struct {
	status        int
	code, subcode int
	msg           string
}{
	{400, 10, 2018278, "(#10) This message is sent outside of allowed window. Learn more about the new policy here: https://developers.facebook.com/docs/messenger-platform/policy-overview"},
	{400, 10, 2018300, "(#10) Message failed to send because another app is controlling this thread now."},
	{400, 10, 2018108, "(#10) They can't receive your messages right now."},
	{400, 10, 1893063, "(#10) You are temporarily restricted from sending messages."},
	{400, 10, 2018171, "(#10) Only available to Primary and Secondary Receivers."},
	{400, 10, 0, "(#10) Application does not have permission for this action"},
	{400, 100, 2018001, "(#100) No matching user found"},
	{400, 100, 0, `(#100) Param recipient[id] must be a valid ID string (e.g., "123")`},
	{400, 100, 2018014, "(#100) Cannot send both message and state at the same time."},
	{400, 100, 2018008, "(#100) Failed to fetch the file from the url"},
	{400, 100, 2018109, "(#100) Attachment size exceeds allowable limit"},
	{400, 100, 2534037, "(#100) The action is invalid since it's not the thread owner."},
	{400, 100, 2018234, "(#100) The thread owner is hidden"},
	{400, 100, 2018218, "(#100) No profile available for that user."},
	{400, 100, 0, "(#100) Invalid parameter: message.text exceeds 2000 characters"},
	{400, 100, 0, "Invalid appsecret_proof provided in the API argument"},
	{400, 2500, 0, "Unknown path components: /me/nothing"},
	{400, 2500, 0, "An active access token must be used to query information about the current user."},
	{400, 551, 1545041, "(#551) This person isn't available right now."},
	{403, 200, 0, "(#200) Permissions error"},
	{403, 230, 0, "(#230) Permissions disallow message to user"},
	{400, 190, 0, "Invalid OAuth access token - Cannot parse access token"},
	{401, 190, 463, "Error validating access token: Session has expired on Tuesday, 24-Nov-26 06:00:00 PST."},
	{400, 613, 0, "(#613) Calls to this api have exceeded the rate limit."},
	{400, 613, 2018338, "(#613) Calls to this api have exceeded the rate limit."},
	{400, 4, 0, "(#4) Application request limit reached"},
	{400, 17, 0, "(#17) User request limit reached"},
	{400, 341, 0, "(#341) Application limit reached"},
	{400, 32, 0, "(#32) Page request limit reached"},
	{503, 2, 0, "An unexpected error has occurred. Please retry your request later."},
	{500, 1, 0, "An unknown error occurred."},
}

// FuzzDecodeError feeds the Graph error decoder (Client.envelope, then
// Client.statusError for a body without the envelope, as Client.call does)
// arbitrary statuses and bodies. It must not panic, never let the Page
// token or its proof through, classify a timeout never (an answer is never
// indeterminate), honour is_transient and 5xx, always give an agent a
// sentence, and decode its own canonical re-encoding to the same value.
func FuzzDecodeError(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.status, []byte(envelope(s.code, s.subcode, s.msg, "")))
	}
	f.Add(503, []byte(envelope(2, 0, "An unexpected error has occurred. Please retry your request later.", `,"is_transient":true`)))
	f.Add(400, []byte(envelope(10, 2018300, "(#10) Message failed to send.", `,"error_user_title":"Not sent","error_user_msg":"Try later"`)))
	f.Add(200, []byte(envelope(10, 2018300, "(#10) an envelope under 200", "")))
	f.Add(400, []byte(`{"error":{"message":"(#100) id too big","type":"GraphMethodException","code":"100","error_subcode":99999999999999999999}}`))
	f.Add(400, []byte(`{"error":"invalid_token `+testToken+`"}`))
	f.Add(400, []byte(`{"error":{"message":"token EAAtoken%2B%2F%3D leaked","code":190}}`))
	f.Add(200, []byte(`{"error":{}}`))
	f.Add(200, []byte(`{"error":null,"recipient_id":"1"}`))
	f.Add(502, []byte("<html><body>Bad Gateway</body></html>"))
	f.Add(429, []byte("slow down"))
	f.Add(500, []byte(""))
	f.Add(400, []byte(`{"error":{"code":1e3,"error_subcode":-5,"is_transient":"yes"}}`))
	f.Add(0, []byte(`{"error":[1,2]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		c := &Client{PageToken: testToken, AppSecret: testSecret}
		ge := c.envelope(status, body)
		fromEnvelope := ge != nil
		if ge == nil {
			if status >= 200 && status <= 299 {
				return // a success: Client.call decodes it as one
			}
			ge = c.statusError(&http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status)}, body)
		}
		if ge.HTTPStatus != status {
			t.Fatalf("HTTPStatus %d, answered %d", ge.HTTPStatus, status)
		}
		for _, s := range []string{ge.Error(), ge.Message, ge.UserTitle, ge.UserMsg, PlainReason(ge)} {
			if strings.Contains(s, testToken) || strings.Contains(s, c.proof()) {
				t.Fatalf("secret leaked in %q", s)
			}
		}
		if ge.Error() == "" || PlainReason(ge) == "" {
			t.Fatalf("empty text for %+v", ge)
		}
		if IsTimeout(ge) {
			t.Fatalf("an answer classified as indeterminate: %+v", ge)
		}
		if status >= 500 && status <= 599 && !IsTransient(ge) {
			t.Fatalf("5xx not transient: %+v", ge)
		}
		if saysTransient(body) && fromEnvelope && !IsTransient(ge) {
			t.Fatalf("is_transient:true not honoured: %+v", ge)
		}
		if !fromEnvelope {
			return
		}
		again := c.envelope(status, canonical(t, ge))
		if again == nil || *again != *ge {
			t.Fatalf("re-decoding differs:\n first %+v\nsecond %+v", ge, again)
		}
	})
}

// saysTransient reports an envelope with "is_transient": true, read
// independently of the decoder under test.
func saysTransient(body []byte) bool {
	var env struct {
		Error struct {
			IsTransient bool `json:"is_transient"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &env) == nil && env.Error.IsTransient
}

// canonical re-encodes a decoded error as the §9.1 envelope.
func canonical(t *testing.T, ge *Error) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"error": map[string]any{
		"message": ge.Message, "type": ge.Type, "code": ge.Code, "error_subcode": ge.Subcode,
		"error_user_title": ge.UserTitle, "error_user_msg": ge.UserMsg, "fbtrace_id": ge.FBTraceID,
		"is_transient": ge.Transient,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
