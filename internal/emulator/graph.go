package emulator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/baton-chat/baton/internal/messenger"
)

// versionRE matches the optional /vNN.N prefix of Graph paths (§8.0).
var versionRE = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)?(/|$)`)

// wireError is the Graph error envelope (§9.1).
type wireError struct {
	Error wireErrorBody `json:"error"`
}

type wireErrorBody struct {
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode,omitempty"`
	IsTransient bool   `json:"is_transient,omitempty"`
	FBTraceID   string `json:"fbtrace_id"`
}

// Graph errors that do not depend on the state machine (§9.2).
var (
	errTemporary = &gErr{http.StatusServiceUnavailable, 2, 0, "An unexpected error has occurred. Please retry your request later.", true}
	errBadToken  = &gErr{http.StatusBadRequest, 190, 0, "Invalid OAuth access token - Cannot parse access token", false}
	errMeNoToken = &gErr{http.StatusBadRequest, 2500, 0, "An active access token must be used to query information about the current user.", false}
	errFetch     = &gErr{http.StatusBadRequest, 100, 2018008, "(#100) Failed to fetch the file from the url", false}
	errRateLimit = &gErr{http.StatusBadRequest, 613, 0, "(#613) Calls to this api have exceeded the rate limit.", false}
	errNeedProof = &gErr{http.StatusBadRequest, 100, 0, "(#100) API calls from the server require an appsecret_proof argument", false}
	errBadProof  = &gErr{http.StatusBadRequest, 100, 0, "Invalid appsecret_proof provided in the API argument", false}
	errBothSend  = &gErr{http.StatusBadRequest, 100, messenger.CodeMessageAndAction, "(#100) Cannot send both message and state at the same time.", false}
	errBadID     = &gErr{http.StatusBadRequest, 100, 0, `(#100) Param recipient[id] must be a valid ID string (e.g., "123")`, false}
	errNoProfile = &gErr{http.StatusBadRequest, 100, messenger.CodeNoProfileSub, "(#100) No profile available for this user.", false}
)

// unknownPath is code 2500 for paths the Graph API does not have.
func unknownPath(rest string) *gErr {
	return &gErr{http.StatusBadRequest, 2500, 0, "Unknown path components: " + rest, false}
}

// graphHandler handles one endpoint for an authenticated app. It runs with
// e.mu held and returns the response body or an error.
type graphHandler func(r *http.Request, a *app, p *params) (any, *gErr)

// serveGraph dispatches Graph API requests (§8) after the runtime faults.
func (e *Emulator) serveGraph(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	f := e.faults
	e.mu.Unlock()
	if f.GraphLatencyMS > 0 {
		if err := sleepCtx(r.Context(), time.Duration(f.GraphLatencyMS)*time.Millisecond); err != nil {
			return // the caller gave up; nobody reads an answer
		}
	}
	if f.GraphDown || (f.GraphErrorRate > 0 && mrand.Float64() < f.GraphErrorRate) {
		e.writeGraphError(w, errTemporary)
		return
	}

	path := r.URL.Path
	if m := versionRE.FindString(path); m != "" {
		path = "/" + strings.TrimPrefix(path[len(m):], "/")
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	node := segs[0]
	h, gerr := e.pickGraphHandler(r.Method, node, segs[1:])
	if gerr != nil {
		e.writeGraphError(w, gerr)
		return
	}
	p, err := parseParams(r)
	if err != nil {
		e.writeGraphError(w, invalidParam(err.Error()))
		return
	}
	token := r.URL.Query().Get("access_token")
	if token == "" {
		token = p.bodyToken
	}
	if token == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(v)
		}
	}

	e.mu.Lock()
	var body any
	appID, gerr := e.authorise(node, token, p)
	if gerr == nil {
		body, gerr = h(r, e.apps[appID], p)
	}
	escaping := e.switches.JSONEscaping
	e.mu.Unlock()
	if gerr != nil {
		e.writeGraphError(w, gerr)
		return
	}
	writeJSON(w, http.StatusOK, body, escaping)
}

// authorise finds the app behind token and checks appsecret_proof (§8.0).
// It returns the app id. Callers hold e.mu.
func (e *Emulator) authorise(node, token string, p *params) (string, *gErr) {
	if token == "" {
		if node == "me" {
			return "", errMeNoToken
		}
		return "", errBadToken
	}
	id, ok := e.tokens[token]
	if !ok {
		return "", errBadToken
	}
	proof, hasProof := p.str("appsecret_proof")
	if !hasProof && e.switches.RequireProof {
		return "", errNeedProof
	}
	if hasProof {
		m := hmac.New(sha256.New, []byte(e.apps[id].Secret))
		m.Write([]byte(token))
		want := hex.EncodeToString(m.Sum(nil))
		if !hmac.Equal([]byte(strings.ToLower(proof)), []byte(want)) {
			return "", errBadProof
		}
	}
	return id, nil
}

// pickGraphHandler maps a method and path onto its handler, or 2500.
func (e *Emulator) pickGraphHandler(method, node string, rest []string) (graphHandler, *gErr) {
	restPath := "/" + strings.Join(rest, "/")
	if node == "me" || node == e.cfg.PageID {
		if len(rest) == 0 && method == http.MethodGet {
			return e.graphPage, nil
		}
		if len(rest) != 1 {
			return nil, unknownPath(restPath)
		}
		routing := e.cfg.Mode != ModeClassic
		switch key := method + " " + rest[0]; {
		case key == "POST messages":
			return e.graphSend, nil
		case key == "POST pass_thread_control":
			return e.graphPass, nil
		case key == "POST take_thread_control":
			return e.graphTake, nil
		case key == "POST request_thread_control":
			return e.graphRequest, nil
		case key == "POST release_thread_control" && routing:
			return e.graphRelease, nil
		case key == "POST extend_thread_control" && routing:
			return e.graphExtend, nil
		case key == "GET thread_owner":
			return e.graphThreadOwner, nil
		case key == "GET secondary_receivers":
			return e.graphSecondaryReceivers, nil
		case rest[0] == "subscribed_apps" && (method == "GET" || method == "POST" || method == "DELETE"):
			return e.graphSubscribedApps, nil
		}
		return nil, unknownPath(restPath)
	}
	if digitsRE.MatchString(node) && len(rest) == 0 && method == http.MethodGet {
		return e.graphProfile, nil
	}
	return nil, unknownPath("/" + strings.Join(append([]string{node}, rest...), "/"))
}

// writeGraphError writes the §9.1 envelope with a fresh fbtrace_id.
func (e *Emulator) writeGraphError(w http.ResponseWriter, g *gErr) {
	e.mu.Lock()
	escaping := e.switches.JSONEscaping
	status190 := e.switches.Status190
	e.mu.Unlock()
	body := wireError{Error: wireErrorBody{
		Message:     g.message,
		Type:        "OAuthException",
		Code:        g.code,
		Subcode:     g.subcode,
		IsTransient: g.transient,
		FBTraceID:   newTraceID(),
	}}
	status := g.status
	if g.code == 190 {
		status = status190
	}
	writeJSON(w, status, body, escaping)
}

// writeJSON writes v through the §4.3 serialiser.
func writeJSON(w http.ResponseWriter, status int, v any, escaping string) {
	b, err := serialise(v, escaping)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// recipientPSID reads the recipient of a request: {"id":…} (JSON, form or
// lax JSON) or, for thread_owner, a plain PSID (§8.1, §8.7). It checks that
// the person exists. Callers hold e.mu.
func (e *Emulator) recipientPSID(p *params) (string, *gErr) {
	s, ok := p.str("recipient")
	if !ok || strings.TrimSpace(s) == "" {
		return "", &gErr{http.StatusBadRequest, 100, 0, "(#100) The parameter recipient is required", false}
	}
	var psid string
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		obj, _, err := p.object("recipient")
		if err != nil {
			return "", invalidParam(err.Error())
		}
		for _, k := range []string{"user_ref", "comment_id", "post_id", "notification_messages_token"} {
			if _, ok := obj[k]; ok {
				return "", invalidParam("recipient." + k + " is not supported by the emulator")
			}
		}
		id, ok := idText(obj["id"])
		if !ok {
			return "", errBadID
		}
		psid = id
	} else {
		id, ok := idText(strings.TrimSpace(s))
		if !ok {
			return "", errBadID
		}
		psid = id
	}
	if _, ok := e.users[psid]; !ok {
		return "", errNoUser
	}
	return psid, nil
}

// metadataParam reads an optional metadata string of < 1000 characters.
func metadataParam(p *params) (*string, *gErr) {
	s, ok := p.str("metadata")
	if !ok {
		return nil, nil
	}
	if utf8.RuneCountInString(s) > 1000 {
		return nil, invalidParam("metadata must be at most 1000 characters")
	}
	return &s, nil
}

// sendRequest is a validated Send API message.
type sendRequest struct {
	text         string
	metadata     *string
	attachment   map[string]any
	quickReplies []any
}

// retiredTags answer 100 in the emulator (§8.1).
var retiredTags = map[string]bool{"ACCOUNT_UPDATE": true, "CONFIRMED_EVENT_UPDATE": true, "POST_PURCHASE_UPDATE": true}

// graphSend is POST /me/messages (§8.1, §8.2), checks in §8.1's order.
func (e *Emulator) graphSend(r *http.Request, a *app, p *params) (any, *gErr) {
	action, hasAction := p.str("sender_action")
	msg, hasMsg, err := p.object("message")
	if err != nil {
		return nil, invalidParam(err.Error())
	}
	if hasAction && hasMsg {
		return nil, errBothSend
	}
	if !hasAction && !hasMsg {
		return nil, invalidParam("message or sender_action is required")
	}
	var req sendRequest
	messagingType, _ := p.str("messaging_type")
	tag, _ := p.str("tag")
	if hasMsg {
		switch messagingType {
		case "RESPONSE", "UPDATE":
		case "MESSAGE_TAG":
			if tag == "" {
				return nil, invalidParam("tag is required for messaging_type MESSAGE_TAG")
			}
			if retiredTags[tag] {
				return nil, invalidParam("tag " + tag + " is no longer supported")
			}
			if tag != "HUMAN_AGENT" && tag != "CUSTOMER_FEEDBACK" {
				return nil, invalidParam("unknown tag " + tag)
			}
		case "":
			return nil, invalidParam("messaging_type is required")
		default:
			return nil, invalidParam("unknown messaging_type " + messagingType)
		}
		if g := parseSendMessage(msg, &req); g != nil {
			return nil, g
		}
		if pl, _ := req.attachment["payload"].(map[string]any); e.switches.AttachmentFetch == "fail" && pl["url"] != nil {
			return nil, errFetch
		}
	} else {
		switch action {
		case "typing_on", "typing_off", "mark_seen", "react", "unreact":
		default:
			return nil, invalidParam("unknown sender_action " + action)
		}
	}
	psid, g := e.recipientPSID(p)
	if g != nil {
		return nil, g
	}
	t := e.threadFor(psid)
	if g := e.mayAct(a.ID, t); g != nil {
		return nil, g
	}
	if hasAction {
		if g := e.windowCheck(a, t, "RESPONSE", ""); g != nil {
			return nil, g
		}
		e.senderAction(a.ID, psid, action)
		return map[string]string{"recipient_id": psid}, nil
	}
	if g := e.windowCheck(a, t, messagingType, tag); g != nil {
		return nil, g
	}
	now := e.now()
	typ, _ := stringField(req.attachment, "type")
	if typ == "audio" || typ == "video" {
		if !e.media.allow(now, mediaPerSecond) {
			return nil, errRateLimit
		}
	}
	if !e.sends.allow(now, sendsPerSecond) {
		return nil, errRateLimit
	}
	mid := e.sendPageMessage(a.ID, psid, req)
	return struct {
		RecipientID string `json:"recipient_id"`
		MessageID   string `json:"message_id"`
	}{psid, mid}, nil
}

// Send API rate limits per Page (§10).
const (
	sendsPerSecond = 300
	mediaPerSecond = 10
)

// rateWindow remembers the times of recent calls to enforce a per-second
// limit on the virtual clock.
type rateWindow struct {
	times []time.Time
}

// allow records a call at now and reports whether it stays within limit
// calls in the last second.
func (w *rateWindow) allow(now time.Time, limit int) bool {
	cut := 0
	for cut < len(w.times) && now.Sub(w.times[cut]) >= time.Second {
		cut++
	}
	w.times = w.times[cut:]
	if len(w.times) >= limit {
		return false
	}
	w.times = append(w.times, now)
	return true
}

// parseSendMessage validates message{} of a send (§8.1).
func parseSendMessage(msg map[string]any, req *sendRequest) *gErr {
	if v, ok := msg["text"]; ok {
		s, ok := v.(string)
		if !ok {
			return invalidParam("message.text must be a string")
		}
		if utf8.RuneCountInString(s) > 2000 {
			return invalidParam("message.text must be at most 2000 characters")
		}
		req.text = s
	}
	if v, ok := msg["metadata"]; ok {
		s, ok := v.(string)
		if !ok || utf8.RuneCountInString(s) >= 1000 {
			return invalidParam("message.metadata must be a string under 1000 characters")
		}
		req.metadata = &s
	}
	if v, ok := msg["attachment"]; ok {
		att, ok := v.(map[string]any)
		if !ok {
			return invalidParam("message.attachment must be an object")
		}
		typ, _ := stringField(att, "type")
		switch typ {
		case "image", "audio", "video", "file":
			pl, _ := att["payload"].(map[string]any)
			if u, _ := stringField(pl, "url"); u == "" {
				if _, ok := pl["attachment_id"]; !ok {
					return invalidParam("message.attachment.payload.url is required")
				}
			}
		case "template":
			if _, ok := att["payload"].(map[string]any); !ok {
				return invalidParam("message.attachment.payload is required")
			}
		default:
			return invalidParam("message.attachment.type must be image, audio, video, file or template")
		}
		req.attachment = att
	}
	if req.text == "" && req.attachment == nil {
		return invalidParam("message must have text or attachment")
	}
	if v, ok := msg["quick_replies"]; ok {
		list, ok := v.([]any)
		if !ok || len(list) > 13 {
			return invalidParam("message.quick_replies must be an array of at most 13 items")
		}
		for _, q := range list {
			if _, ok := q.(map[string]any); !ok {
				return invalidParam("message.quick_replies items must be objects")
			}
		}
		req.quickReplies = list
	}
	return nil
}

// graphPass is POST /me/pass_thread_control (§8.3).
func (e *Emulator) graphPass(r *http.Request, a *app, p *params) (any, *gErr) {
	var target string
	if s, ok := p.str("target_app_id"); ok && s != "" {
		id, ok := idText(s)
		if !ok {
			return nil, invalidParam("target_app_id must be an app id")
		}
		target = id
	}
	psid, md, g := e.handoverParams(p)
	if g != nil {
		return nil, g
	}
	if g := e.passThread(a.ID, psid, target, md); g != nil {
		return nil, g
	}
	return success(), nil
}

// handoverParams reads what every handover call carries, metadata first
// (its errors come before the recipient's, as Facebook's do).
func (e *Emulator) handoverParams(p *params) (psid string, md *string, g *gErr) {
	if md, g = metadataParam(p); g != nil {
		return "", nil, g
	}
	if psid, g = e.recipientPSID(p); g != nil {
		return "", nil, g
	}
	return psid, md, nil
}

// graphTake is POST /me/take_thread_control (§8.4).
func (e *Emulator) graphTake(r *http.Request, a *app, p *params) (any, *gErr) {
	psid, md, g := e.handoverParams(p)
	if g != nil {
		return nil, g
	}
	if g := e.takeThread(a.ID, psid, md); g != nil {
		return nil, g
	}
	if e.switches.TakeResponse == "thread_owner" {
		t := e.threadFor(psid)
		type owner struct {
			AppID      string `json:"app_id"`
			Expiration int64  `json:"expiration"`
		}
		return map[string][]any{"data": {map[string]owner{"thread_owner": {AppID: t.Owner, Expiration: t.ExpiresAt.Unix()}}}}, nil
	}
	return success(), nil
}

// graphRequest is POST /me/request_thread_control (§8.5).
func (e *Emulator) graphRequest(r *http.Request, a *app, p *params) (any, *gErr) {
	psid, md, g := e.handoverParams(p)
	if g != nil {
		return nil, g
	}
	if g := e.requestThread(a.ID, psid, md); g != nil {
		return nil, g
	}
	return success(), nil
}

// graphRelease is POST /me/release_thread_control (§8.6).
func (e *Emulator) graphRelease(r *http.Request, a *app, p *params) (any, *gErr) {
	if _, g := metadataParam(p); g != nil {
		return nil, g
	}
	psid, g := e.recipientPSID(p)
	if g != nil {
		return nil, g
	}
	if g := e.releaseThread(a.ID, psid); g != nil {
		return nil, g
	}
	return success(), nil
}

// graphExtend is POST /me/extend_thread_control (§8.6).
func (e *Emulator) graphExtend(r *http.Request, a *app, p *params) (any, *gErr) {
	s, ok := p.str("duration")
	if !ok {
		return nil, invalidParam("duration is required")
	}
	secs, err := strconv.ParseInt(strings.TrimSuffix(s, ".0"), 10, 64)
	if err != nil || secs <= 0 || secs > int64(windowHumanAgent/time.Second) {
		return nil, invalidParam("duration must be between 1 and 604800 seconds")
	}
	psid, g := e.recipientPSID(p)
	if g != nil {
		return nil, g
	}
	if g := e.extendThread(a.ID, psid, time.Duration(secs)*time.Second); g != nil {
		return nil, g
	}
	return success(), nil
}

// graphThreadOwner is GET /me/thread_owner (§8.7) with its visibility rule.
func (e *Emulator) graphThreadOwner(r *http.Request, a *app, p *params) (any, *gErr) {
	psid, g := e.recipientPSID(p)
	if g != nil {
		return nil, g
	}
	if !e.hasRole(a.ID) {
		return nil, errNoRole
	}
	t := e.threadFor(psid)
	if t.Owner == "" {
		return map[string][]any{"data": {}}, nil
	}
	primary := e.primary()
	if a.ID != primary && t.Owner != a.ID && t.Owner != primary {
		return nil, errOwnerHidden
	}
	type owner struct {
		AppID      string `json:"app_id"`
		Expiration int64  `json:"expiration,omitempty"`
	}
	o := owner{AppID: t.Owner}
	if e.cfg.Mode == ModeRoutingCR {
		o.Expiration = t.ExpiresAt.Unix()
	}
	return map[string][]any{"data": {map[string]owner{"thread_owner": o}}}, nil
}

// graphSecondaryReceivers is GET /me/secondary_receivers (§8.8).
func (e *Emulator) graphSecondaryReceivers(r *http.Request, a *app, p *params) (any, *gErr) {
	if !e.hasRole(a.ID) {
		return nil, errNoRole
	}
	if a.ID != e.primary() {
		return nil, &gErr{http.StatusBadRequest, 10, 0, "(#10) Only the Primary Receiver app can list secondary receivers.", false}
	}
	fields, _ := p.str("fields")
	withName := false
	for _, f := range strings.Split(fields, ",") {
		if strings.TrimSpace(f) == "name" {
			withName = true
		}
	}
	type receiver struct {
		ID   string `json:"id"`
		Name string `json:"name,omitempty"`
	}
	data := []receiver{}
	for _, id := range e.appOrder {
		if x := e.apps[id]; e.hasRole(id) && x.Role == messenger.RoleSecondary {
			rc := receiver{ID: id}
			if withName {
				rc.Name = x.Name
			}
			data = append(data, rc)
		}
	}
	return map[string]any{"data": data}, nil
}

// graphSubscribedApps is GET|POST|DELETE /<PAGE_ID>/subscribed_apps (§8.10).
func (e *Emulator) graphSubscribedApps(r *http.Request, a *app, p *params) (any, *gErr) {
	switch r.Method {
	case http.MethodPost:
		fields := map[string]bool{}
		if s, ok := p.str("subscribed_fields"); ok {
			s = strings.Trim(strings.TrimSpace(s), "[]")
			for _, f := range strings.Split(s, ",") {
				if f = canonicalField(strings.Trim(strings.TrimSpace(f), `"'`)); f != "" {
					fields[f] = true
				}
			}
		}
		if len(fields) == 0 {
			return nil, invalidParam("subscribed_fields is required")
		}
		a.Fields = fields
		a.Subscribed = true
		return success(), nil
	case http.MethodDelete:
		a.Subscribed = false
		a.queue, a.batch = nil, nil
		return success(), nil
	}
	type sub struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Fields []string `json:"subscribed_fields"`
	}
	data := []sub{}
	for _, id := range e.appOrder {
		x := e.apps[id]
		if x.pseudo || !x.Subscribed {
			continue
		}
		data = append(data, sub{ID: id, Name: x.Name, Fields: sortedFields(x.Fields)})
	}
	return map[string]any{"data": data}, nil
}

// profileFields are the User Profile fields the emulator knows (§8.9).
var profileFields = map[string]bool{"id": true, "name": true, "first_name": true, "last_name": true, "profile_pic": true, "locale": true, "timezone": true, "gender": true}

// graphPage is GET /me or /<PAGE_ID>: the Page a token belongs to, which
// clients read to check a Page access token.
func (e *Emulator) graphPage(r *http.Request, a *app, p *params) (any, *gErr) {
	return struct {
		Name string `json:"name"`
		ID   string `json:"id"`
	}{e.cfg.PageName, e.cfg.PageID}, nil
}

// graphProfile is GET /<PSID>?fields=… (§8.9).
func (e *Emulator) graphProfile(r *http.Request, a *app, p *params) (any, *gErr) {
	psid := strings.Trim(r.URL.Path[strings.LastIndexByte(strings.TrimRight(r.URL.Path, "/"), '/')+1:], "/")
	u, ok := e.users[psid]
	if !ok {
		return nil, errNoUser
	}
	if !e.hasRole(a.ID) {
		return nil, errNoRole
	}
	fields := "first_name,last_name,profile_pic"
	if s, ok := p.str("fields"); ok && s != "" {
		fields = s
	}
	out := map[string]any{}
	for _, f := range strings.Split(fields, ",") {
		f = strings.TrimSpace(f)
		if !profileFields[f] {
			return nil, &gErr{http.StatusBadRequest, 100, 0, fmt.Sprintf("(#100) Tried accessing nonexisting field (%s) on node type (User)", f), false}
		}
	}
	if u.NoProfile {
		return nil, errNoProfile
	}
	for _, f := range strings.Split(fields, ",") {
		switch f = strings.TrimSpace(f); f {
		case "name":
			out[f] = strings.TrimSpace(u.FirstName + " " + u.LastName)
		case "first_name":
			out[f] = u.FirstName
		case "last_name":
			out[f] = u.LastName
		case "profile_pic":
			out[f] = e.profilePic(r, u)
		case "locale":
			out[f] = "en_US"
		case "timezone":
			out[f] = 0
		case "gender":
			out[f] = "neutral"
		}
	}
	out["id"] = psid
	return out, nil
}

// profilePic returns the person's picture URL, hosted by the emulator
// unless the person was created with one; it carries an ext expiry (§8.9).
func (e *Emulator) profilePic(r *http.Request, u *user) string {
	if u.ProfilePic != "" {
		return u.ProfilePic
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/pic/%s.svg?ext=%d", scheme, r.Host, u.PSID, e.now().Add(72*time.Hour).Unix())
}

func success() map[string]bool { return map[string]bool{"success": true} }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep: %w", ctx.Err())
	}
}
