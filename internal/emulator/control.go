package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/messenger"
)

// maxControlBody caps control-API request bodies.
const maxControlBody = 1 << 20

// routeControl registers the /_emulator control API (SPEC.md).
func (e *Emulator) routeControl(mux *http.ServeMux) {
	mux.HandleFunc("GET /_emulator/state", e.showState)
	mux.HandleFunc("POST /_emulator/apps", e.upsertApp)
	mux.HandleFunc("POST /_emulator/users", e.createUser)
	mux.HandleFunc("POST /_emulator/users/{psid}/messages", e.postUserMessage)
	mux.HandleFunc("POST /_emulator/users/{psid}/postbacks", e.postUserPostback)
	mux.HandleFunc("POST /_emulator/users/{psid}/read", e.postUserRead)
	mux.HandleFunc("POST /_emulator/users/{psid}/reactions", e.postUserReaction)
	mux.HandleFunc("POST /_emulator/users/{psid}/referrals", e.postUserReferral)
	mux.HandleFunc("GET /_emulator/users/{psid}/conversation", e.showConversation)
	mux.HandleFunc("POST /_emulator/page-inbox/{psid}/done", e.postInboxDone)
	mux.HandleFunc("POST /_emulator/page-inbox/{psid}/request", e.postInboxRequest)
	mux.HandleFunc("POST /_emulator/page-inbox/{psid}/messages", e.postInboxMessage)
	mux.HandleFunc("POST /_emulator/clock", e.advanceClock)
	mux.HandleFunc("GET /_emulator/faults", e.showFaults)
	mux.HandleFunc("PUT /_emulator/faults", e.putFaults)
	mux.HandleFunc("GET /_emulator/switches", e.showSwitches)
	mux.HandleFunc("PUT /_emulator/switches", e.putSwitches)
	mux.HandleFunc("GET /_emulator/deliveries", e.showDeliveries)
	mux.HandleFunc("/_emulator/", func(w http.ResponseWriter, r *http.Request) {
		ctlError(w, http.StatusNotFound, "no such control route: "+r.Method+" "+r.URL.Path)
	})
}

// ctlError writes the control API's error shape {"error":{"message"}}.
func ctlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]map[string]string{"error": {"message": msg}}, "plain")
}

// ctlJSON writes a control-API answer.
func ctlJSON(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v, "plain") }

// decodeBody decodes a JSON control request; an empty body is {}.
func decodeBody(r *http.Request, dst any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxControlBody {
		return errors.New("body too large")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("invalid json: %w", err)
	}
	return nil
}

func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ms(t)
}

func strOrNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func roleName(r string) string {
	if r == "" {
		return "none"
	}
	return r
}

// showState is GET /_emulator/state.
func (e *Emulator) showState(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	type stateApp struct {
		ID         string   `json:"id"`
		Name       string   `json:"name"`
		Role       string   `json:"role"`
		WebhookURL string   `json:"webhook_url"`
		HumanAgent bool     `json:"human_agent"`
		Subscribed bool     `json:"subscribed"`
		Failing    bool     `json:"failing"`
		Fields     []string `json:"subscribed_fields"`
		Queued     int      `json:"queued"`
	}
	type stateUser struct {
		PSID      string `json:"psid"`
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	}
	type stateThread struct {
		PSID       string `json:"psid"`
		Owner      any    `json:"owner_app_id"`
		LastUserAt any    `json:"last_user_message_at"`
		ExpiresAt  any    `json:"expires_at"`
	}
	apps := []stateApp{}
	for _, id := range e.appOrder {
		a := e.apps[id]
		role := a.Role
		if a.pseudo && !e.switches.PageInbox {
			role = ""
		}
		failing := a.batch != nil && !a.batch.firstFail.IsZero() && now.Sub(a.batch.firstFail) >= failingAfter
		q := len(a.queue)
		if a.batch != nil {
			q++
		}
		apps = append(apps, stateApp{ID: id, Name: a.Name, Role: roleName(role), WebhookURL: a.WebhookURL,
			HumanAgent: a.HumanAgent, Subscribed: a.Subscribed, Failing: failing, Fields: sortedFields(a.Fields), Queued: q})
	}
	users := []stateUser{}
	threads := []stateThread{}
	for _, psid := range e.userList {
		u := e.users[psid]
		users = append(users, stateUser{PSID: psid, FirstName: u.FirstName, LastName: u.LastName})
		t := e.threadFor(psid)
		st := stateThread{PSID: psid, Owner: strOrNull(t.Owner), LastUserAt: msOrNull(t.LastUserAt)}
		if t.Owner != "" && e.cfg.Mode != ModeClassic {
			st.ExpiresAt = ms(t.ExpiresAt)
		}
		threads = append(threads, st)
	}
	ctlJSON(w, map[string]any{
		"page":    map[string]string{"id": e.cfg.PageID, "name": e.cfg.PageName},
		"mode":    e.cfg.Mode,
		"clock":   ms(now),
		"apps":    apps,
		"users":   users,
		"threads": threads,
		"faults":  e.faults,
	})
}

// appRequest is the body of POST /_emulator/apps; pointers tell omitted
// fields (kept on update) from empty ones.
type appRequest struct {
	ID          *string `json:"id"`
	Name        *string `json:"name"`
	Secret      *string `json:"secret"`
	VerifyToken *string `json:"verify_token"`
	WebhookURL  *string `json:"webhook_url"`
	Role        *string `json:"role"`
	HumanAgent  *bool   `json:"human_agent"`
}

// upsertApp is POST /_emulator/apps: create or update an app, verify its
// webhook (§3), keep at most one Primary and send app_roles (§5.8).
func (e *Emulator) upsertApp(w http.ResponseWriter, r *http.Request) {
	var req appRequest
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	id := ""
	if req.ID != nil {
		id = strings.TrimSpace(*req.ID)
		if !digitsRE.MatchString(id) {
			ctlError(w, http.StatusBadRequest, "id must be a digit string")
			return
		}
		if id == messenger.PageInboxAppID || id == e.cfg.PageID {
			ctlError(w, http.StatusBadRequest, "id "+id+" is reserved")
			return
		}
	}
	var role *string
	if req.Role != nil {
		switch *req.Role {
		case messenger.RolePrimary, messenger.RoleSecondary:
			role = req.Role
		case "none", "":
			none := ""
			role = &none
		default:
			ctlError(w, http.StatusBadRequest, "role must be primary_receiver, secondary_receiver or none")
			return
		}
	}

	e.mu.Lock()
	existing := e.apps[id]
	url, vt := "", ""
	verified := false
	if existing != nil {
		url, vt, verified = existing.WebhookURL, existing.VerifyToken, existing.Verified
	}
	if req.WebhookURL != nil {
		url = strings.TrimSpace(*req.WebhookURL)
	}
	if req.VerifyToken != nil {
		vt = *req.VerifyToken
	}
	needVerify := url != "" && (existing == nil || !verified || url != existing.WebhookURL || vt != existing.VerifyToken)
	e.mu.Unlock()

	if needVerify {
		if err := e.verifyWebhook(r.Context(), url, vt); err != nil {
			ctlError(w, http.StatusBadRequest, err.Error())
			return
		}
	}

	e.mu.Lock()
	a := e.apps[id]
	if a == nil {
		if id == "" {
			for id == "" || e.apps[id] != nil {
				id = randomDigits(15)
			}
		}
		a = &app{ID: id, Name: "App " + id, Subscribed: true, Fields: map[string]bool{}, Token: newToken()}
		for _, f := range messenger.SubscribedFields {
			a.Fields[f] = true
		}
		e.apps[id] = a
		e.appOrder = append(e.appOrder, id)
		e.tokens[a.Token] = id
	}
	if req.Name != nil {
		a.Name = *req.Name
	}
	if req.Secret != nil {
		a.Secret = *req.Secret
	}
	if req.HumanAgent != nil {
		a.HumanAgent = *req.HumanAgent
	}
	a.VerifyToken = vt
	if url != a.WebhookURL {
		a.queue, a.batch = nil, nil
	}
	a.WebhookURL = url
	a.Verified = url != "" && (needVerify || verified)
	if a.Verified {
		e.startWorker(a)
	}
	var changed []string
	if role != nil && *role != a.Role {
		changed = append(changed, id)
		a.Role = *role
		if a.Role == messenger.RolePrimary {
			for _, other := range e.appOrder {
				if o := e.apps[other]; other != id && o.Role == messenger.RolePrimary {
					o.Role = ""
					e.onRoleLost(other)
					changed = append(changed, other)
				}
			}
		}
		if a.Role == "" {
			e.onRoleLost(id)
		}
		for _, c := range changed {
			e.sendAppRoles(c)
		}
	}
	e.log.Info("app registered", "app", id, "role", roleName(a.Role), "webhook", a.WebhookURL)
	token := a.Token
	e.mu.Unlock()
	if len(changed) > 0 {
		// Answer after the app_roles POSTs, so that the caller's next
		// events cannot overtake them.
		e.kickWorkers(r.Context(), changed...)
	}
	ctlJSON(w, map[string]string{"id": id, "page_access_token": token})
}

// createUser is POST /_emulator/users.
func (e *Emulator) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PSID       string `json:"psid"`
		FirstName  string `json:"first_name"`
		LastName   string `json:"last_name"`
		ProfilePic string `json:"profile_pic"`
		NoProfile  bool   `json:"no_profile"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.PSID != "" && !digitsRE.MatchString(req.PSID) {
		ctlError(w, http.StatusBadRequest, "psid must be a digit string")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	psid := req.PSID
	if psid != "" && e.users[psid] != nil {
		ctlError(w, http.StatusConflict, "psid "+psid+" exists")
		return
	}
	for psid == "" || e.users[psid] != nil || e.apps[psid] != nil || psid == e.cfg.PageID {
		psid = randomDigits(16)
	}
	if req.FirstName == "" && req.LastName == "" {
		req.FirstName = "Person"
		req.LastName = psid[len(psid)-4:]
	}
	e.users[psid] = &user{PSID: psid, FirstName: req.FirstName, LastName: req.LastName, ProfilePic: req.ProfilePic, NoProfile: req.NoProfile}
	e.userList = append(e.userList, psid)
	e.threadFor(psid)
	ctlJSON(w, map[string]string{"psid": psid})
}

// lookupUser returns the person in the path, or writes 404. Callers hold e.mu.
func (e *Emulator) lookupUser(w http.ResponseWriter, r *http.Request) (*user, bool) {
	u, ok := e.users[r.PathValue("psid")]
	if !ok {
		ctlError(w, http.StatusNotFound, "no person with psid "+r.PathValue("psid"))
		return nil, false
	}
	return u, true
}

// postUserMessage is POST /_emulator/users/{psid}/messages.
func (e *Emulator) postUserMessage(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text              string           `json:"text"`
		Attachments       []chatAttachment `json:"attachments"`
		QuickReplyPayload string           `json:"quick_reply_payload"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Text == "" && len(req.Attachments) == 0 {
		ctlError(w, http.StatusBadRequest, "a message needs text or attachments")
		return
	}
	for i := range req.Attachments {
		a := &req.Attachments[i]
		if a.Type == "" {
			a.Type = "image"
		}
		switch a.Type {
		case "image", "video", "audio", "file", "fallback":
		default:
			ctlError(w, http.StatusBadRequest, "attachment type must be image, video, audio, file or fallback")
			return
		}
		if a.URL == "" {
			ctlError(w, http.StatusBadRequest, "attachment url is required")
			return
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	ctlJSON(w, map[string]string{"mid": e.userMessage(u.PSID, req.Text, req.Attachments, req.QuickReplyPayload)})
}

// postUserPostback is POST /_emulator/users/{psid}/postbacks.
func (e *Emulator) postUserPostback(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Title   string `json:"title"`
		Payload string `json:"payload"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	ctlJSON(w, map[string]string{"mid": e.userPostback(u.PSID, req.Title, req.Payload)})
}

// postUserRead is POST /_emulator/users/{psid}/read.
func (e *Emulator) postUserRead(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	ctlJSON(w, map[string]int64{"watermark": e.userRead(u.PSID)})
}

// postUserReaction is POST /_emulator/users/{psid}/reactions
// {"mid","reaction","action"}; action defaults to "react".
func (e *Emulator) postUserReaction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Mid      string `json:"mid"`
		Reaction string `json:"reaction"`
		Action   string `json:"action"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Action == "" {
		req.Action = "react"
	}
	if req.Action != "react" && req.Action != "unreact" {
		ctlError(w, http.StatusBadRequest, "action must be react or unreact")
		return
	}
	if _, ok := reactionEmoji[req.Reaction]; req.Action == "react" && !ok && req.Reaction != "other" {
		ctlError(w, http.StatusBadRequest, "reaction must be smile, angry, sad, wow, love, like, dislike or other")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	found := false
	for _, it := range u.log {
		found = found || (it.Mid == req.Mid && !it.FromUser)
	}
	if !found {
		ctlError(w, http.StatusNotFound, "no page message "+req.Mid+" in this conversation")
		return
	}
	e.userReaction(u.PSID, req.Mid, req.Reaction, req.Action)
	ctlJSON(w, success())
}

// postUserReferral is POST /_emulator/users/{psid}/referrals {"ref","source"};
// source defaults to SHORTLINK.
func (e *Emulator) postUserReferral(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Ref    string `json:"ref"`
		Source string `json:"source"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Source == "" {
		req.Source = "SHORTLINK"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	e.userReferral(u.PSID, req.Ref, req.Source)
	ctlJSON(w, success())
}

// showConversation is GET /_emulator/users/{psid}/conversation.
func (e *Emulator) showConversation(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	type item struct {
		Mid          string           `json:"mid"`
		From         string           `json:"from"`
		AppID        any              `json:"app_id"`
		AppName      string           `json:"app_name,omitempty"`
		AppRole      string           `json:"app_role,omitempty"`
		Text         string           `json:"text"`
		Attachments  []chatAttachment `json:"attachments"`
		QuickReplies []chatQuickReply `json:"quick_replies,omitempty"`
		Buttons      []chatButton     `json:"buttons,omitempty"`
		Timestamp    int64            `json:"timestamp"`
		Seen         bool             `json:"seen"`
	}
	items := []item{}
	for _, it := range u.log {
		x := item{Mid: it.Mid, From: "user", AppID: nil, Text: it.Text, Attachments: it.Attachments,
			QuickReplies: it.QuickReplies, Buttons: it.Buttons, Timestamp: ms(it.Timestamp), Seen: it.Seen}
		if x.Attachments == nil {
			x.Attachments = []chatAttachment{}
		}
		if !it.FromUser {
			x.From, x.AppID = "page", it.AppID
			if a, ok := e.apps[it.AppID]; ok {
				x.AppName, x.AppRole = a.Name, roleName(a.Role)
			}
		}
		items = append(items, x)
	}
	typing := u.typingApp != "" && e.now().Before(u.typingTill)
	t := e.threadFor(u.PSID)
	ctlJSON(w, map[string]any{
		"psid":          u.PSID,
		"first_name":    u.FirstName,
		"last_name":     u.LastName,
		"page_name":     e.cfg.PageName,
		"owner_app_id":  strOrNull(t.Owner),
		"typing":        typing,
		"typing_app_id": strOrNull(map[bool]string{true: u.typingApp}[typing]),
		"messages":      items,
	})
}

// inboxAction runs a Page Inbox action for the person in the path.
func (e *Emulator) inboxAction(w http.ResponseWriter, r *http.Request, act func(psid string) *gErr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	if !e.hasRole(messenger.PageInboxAppID) {
		ctlError(w, http.StatusConflict, "the Page Inbox is disabled")
		return
	}
	if g := act(u.PSID); g != nil {
		ctlError(w, http.StatusConflict, g.message)
		return
	}
	ctlJSON(w, success())
}

// postInboxDone is POST /_emulator/page-inbox/{psid}/done.
func (e *Emulator) postInboxDone(w http.ResponseWriter, r *http.Request) {
	e.inboxAction(w, r, e.inboxDone)
}

// postInboxRequest is POST /_emulator/page-inbox/{psid}/request.
func (e *Emulator) postInboxRequest(w http.ResponseWriter, r *http.Request) {
	e.inboxAction(w, r, e.inboxRequest)
}

// postInboxMessage is POST /_emulator/page-inbox/{psid}/messages {"text"}:
// a reply typed in the Page Inbox.
func (e *Emulator) postInboxMessage(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
	}
	if err := decodeBody(r, &req); err != nil || req.Text == "" {
		ctlError(w, http.StatusBadRequest, "a reply needs text")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.lookupUser(w, r)
	if !ok {
		return
	}
	mid, g := e.inboxReply(u.PSID, req.Text)
	if g != nil {
		ctlError(w, http.StatusConflict, g.message)
		return
	}
	ctlJSON(w, map[string]string{"mid": mid})
}

// advanceClock is POST /_emulator/clock {"advance_seconds":N}. Advances add
// up; the attempts they make due run before the answer.
func (e *Emulator) advanceClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AdvanceSeconds *float64 `json:"advance_seconds"`
	}
	if err := decodeBody(r, &req); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.AdvanceSeconds == nil || *req.AdvanceSeconds < 0 {
		ctlError(w, http.StatusBadRequest, "advance_seconds must be a number ≥ 0")
		return
	}
	e.mu.Lock()
	e.offset += time.Duration(*req.AdvanceSeconds * float64(time.Second))
	e.mu.Unlock()
	e.kickWorkers(r.Context())
	e.mu.Lock()
	now, offset := e.now(), e.offset
	e.mu.Unlock()
	ctlJSON(w, map[string]int64{"clock": ms(now), "offset_ms": offset.Milliseconds()})
}

// showFaults is GET /_emulator/faults.
func (e *Emulator) showFaults(w http.ResponseWriter, r *http.Request) {
	showSetting(e, w, &e.faults)
}

// putFaults is PUT /_emulator/faults; omitted fields keep their value.
func (e *Emulator) putFaults(w http.ResponseWriter, r *http.Request) {
	putSetting(e, w, r, &e.faults, Faults.validate, nil)
}

// validate checks fault values.
func (f Faults) validate() error {
	for _, rate := range []float64{f.GraphErrorRate, f.WebhookDropRate, f.WebhookDuplicateRate} {
		if rate < 0 || rate > 1 {
			return errors.New("rates must be between 0 and 1")
		}
	}
	if f.GraphLatencyMS < 0 || f.GraphLatencyMS > 600000 {
		return errors.New("graph_latency_ms must be between 0 and 600000")
	}
	return nil
}

// showSwitches is GET /_emulator/switches.
func (e *Emulator) showSwitches(w http.ResponseWriter, r *http.Request) {
	showSetting(e, w, &e.switches)
}

// putSwitches is PUT /_emulator/switches (§14); omitted fields keep their value.
func (e *Emulator) putSwitches(w http.ResponseWriter, r *http.Request) {
	putSetting(e, w, r, &e.switches, Switches.validate, func(old, s Switches) {
		if old.PageInbox && !s.PageInbox {
			e.onRoleLost(messenger.PageInboxAppID)
		}
	})
}

// showSetting answers a settings struct guarded by e.mu.
func showSetting[T any](e *Emulator, w http.ResponseWriter, v *T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctlJSON(w, *v)
}

// putSetting decodes a PUT onto the current value of a settings struct
// guarded by e.mu (so omitted fields keep their value), validates it and
// stores it; changed, when set, runs under the lock with the old and new
// values.
func putSetting[T any](e *Emulator, w http.ResponseWriter, r *http.Request, v *T, validate func(T) error, changed func(old, new T)) {
	e.mu.Lock()
	next := *v
	e.mu.Unlock()
	if err := decodeBody(r, &next); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := validate(next); err != nil {
		ctlError(w, http.StatusBadRequest, err.Error())
		return
	}
	e.mu.Lock()
	old := *v
	*v = next
	if changed != nil {
		changed(old, next)
	}
	e.mu.Unlock()
	ctlJSON(w, next)
}

// validate checks switch values against §14.
func (s Switches) validate() error {
	check := func(name, v string, allowed ...string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%s must be one of %s", name, strings.Join(allowed, ", "))
	}
	if err := check("app_id_json", s.AppIDJSON, "number", "string", "random"); err != nil {
		return err
	}
	if err := check("signature_headers", s.SignatureHeaders, "both", "sha256", "sha1", "none", "wrong"); err != nil {
		return err
	}
	if err := check("json_escaping", s.JSONEscaping, "meta", "plain"); err != nil {
		return err
	}
	if err := check("success_status", s.SuccessStatus, "200", "2xx"); err != nil {
		return err
	}
	if err := check("disable_after", s.DisableAfter, "1h", "8h", "never"); err != nil {
		return err
	}
	if err := check("take_response", s.TakeResponse, "success", "thread_owner"); err != nil {
		return err
	}
	if err := check("app_roles_scope", s.AppRolesScope, "self", "all"); err != nil {
		return err
	}
	if err := check("attachment_fetch", s.AttachmentFetch, "skip", "fail"); err != nil {
		return err
	}
	if s.BatchMax < 1 || s.BatchMax > batchMax {
		return fmt.Errorf("batch_max must be between 1 and %d", batchMax)
	}
	if s.Status190 != 400 && s.Status190 != 401 {
		return errors.New("status_190 must be 400 or 401")
	}
	return nil
}

// showDeliveries is GET /_emulator/deliveries?app=ID.
func (e *Emulator) showDeliveries(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get("app")
	e.mu.Lock()
	defer e.mu.Unlock()
	if filter != "" && e.apps[filter] == nil {
		ctlError(w, http.StatusNotFound, "no app with id "+filter)
		return
	}
	out := []deliveryRecord{}
	for _, id := range e.appOrder {
		if filter == "" || filter == id {
			out = append(out, e.apps[id].log...)
		}
	}
	if filter == "" {
		sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	}
	ctlJSON(w, map[string]any{"deliveries": out})
}
