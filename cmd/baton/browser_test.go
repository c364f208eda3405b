package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/browsertest"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The journeys of journey_test.go again, this time as people live them:
// the agent in the console in headless Chromium, and (where it matters)
// the person on the emulator's Messenger page in a second tab. Elements
// are found by the accessible names SPEC.md fixes, else by data-testid.

const adminPassword = "correct horse battery"

// jsq quotes s as a JavaScript string literal.
func jsq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitJS polls a JavaScript predicate in the tab until it is truthy; it
// survives navigations (an evaluation during one just counts as false).
// The deadline only stops a broken run from hanging; it says nothing
// about speed.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// evalJS evaluates expr in the tab.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// do runs browser steps, failing the test with what they were for.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, step := range steps {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := chromedp.Do(sctx, step)
		cancel()
		if err != nil {
			t.Fatalf("%s (step %d): %v", what, i+1, err)
		}
	}
}

// clickButton clicks the button named name, trying again when a live
// update replaced it between finding and clicking (as a person would).
func clickButton(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Do(sctx, chromedp.Click(name, browsertest.ByRole("button", name)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("click %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signIn signs in through /login with the accessible names of SPEC.md
// and waits for the console.
func signIn(t *testing.T, ctx context.Context, s *testStack, email, password string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(s.ConsoleURL+"/login"),
		chromedp.WaitVisible("Email", browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Email", email, browsertest.ByRole("textbox", "Email")),
		chromedp.SendKeys("Password", password, browsertest.ByRole("textbox", "Password")),
		chromedp.Click("Sign in", browsertest.ByRole("button", "Sign in")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="console"]`)),
	)
}

// markPage tags the current document; stillSamePage proves that what
// appeared since came by live update, not by a reload or a navigation.
func markPage(t *testing.T, ctx context.Context) {
	t.Helper()
	evalJS[chromedp.Void](t, ctx, `window.__batonNoReload = true`)
}

func stillSamePage(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if !evalJS[bool](t, ctx, `window.__batonNoReload === true`) {
		t.Fatalf("%s: the page was reloaded; want a live update", what)
	}
}

// listItemJS is a JavaScript expression for the list item of name.
func listItemJS(name string) string {
	return `Array.from(document.querySelectorAll('[data-testid="conversation-item"]')).find(function (li) {
		var n = li.querySelector('[data-testid="conversation-name"]'); return n && n.textContent.trim() === ` + jsq(name) + `; })`
}

// threadHasJS: a message bubble in the open conversation with text.
func threadHasJS(author, text string) string {
	return `Array.from(document.querySelectorAll('#thread [data-testid="message"][data-author="` + author + `"] [data-testid="message-text"]')).some(function (p) { return p.textContent.indexOf(` + jsq(text) + `) >= 0; })`
}

// chatShowsJS: the person's Messenger page shows a page message with text.
func chatShowsJS(text string) string {
	return `Array.from(document.querySelectorAll('#log li.page .bubble')).some(function (b) { return b.textContent.indexOf(` + jsq(text) + `) >= 0; })`
}

// openConversation clicks name in the list and waits for its pane, the
// whole document parsed: the page arrives in chunks, and its header (with
// the title) can be in the DOM before the thread below it is.
func openConversation(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	waitJS(t, ctx, name+" in the list", listItemJS(name))
	evalJS[chromedp.Void](t, ctx, listItemJS(name)+`.querySelector('a').click()`)
	waitJS(t, ctx, "the conversation with "+name,
		`(function () { var h = document.querySelector('[data-testid="conversation-title"]');
			return document.readyState !== "loading" && !!h && h.textContent.trim() === `+jsq(name)+`; })()`)
}

// personTab opens the emulator's Messenger page in a second tab and
// creates the person there, as a bot developer would; it returns the tab
// and the person's PSID.
func personTab(t *testing.T, ctx context.Context, s *testStack, first, last string) (context.Context, string) {
	t.Helper()
	pctx, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	// The tab lives as long as the context of its first action: open it
	// on pctx itself, not on do's per-step timeouts.
	if err := chromedp.Do(pctx); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}
	do(t, pctx, "open the Messenger page",
		chromedp.Navigate(s.emu0()+"/"),
		chromedp.Click(chromedp.CSS(`details.new-person summary`)),
		chromedp.SendKeys("First name", first, browsertest.ByRole("textbox", "First name")),
		chromedp.SendKeys("Last name", last, browsertest.ByRole("textbox", "Last name")),
		chromedp.Click("Create person", browsertest.ByRole("button", "Create person")),
	)
	full := first + " " + last
	waitJS(t, pctx, "the new person picked", `(function () { var p = document.getElementById('person'); return p.value && p.selectedOptions[0].textContent === `+jsq(full)+`; })()`)
	psid := evalJS[string](t, pctx, `document.getElementById('person').value`)
	return pctx, psid
}

// personWrites sends text from the Messenger page.
func personWrites(t *testing.T, pctx context.Context, text string) {
	t.Helper()
	do(t, pctx, "the person writes "+text,
		chromedp.SendKeys("Message", text, browsertest.ByRole("textbox", "Message")),
		chromedp.Click("Send", browsertest.ByRole("button", "Send")),
	)
	waitJS(t, pctx, "the person's message in the chat", `Array.from(document.querySelectorAll('#log li.user .bubble')).some(function (b) { return b.textContent === `+jsq(text)+`; })`)
}

// handedOver has the person ask for a human through the control API and
// waits until Baton owns the thread.
func handedOver(t *testing.T, s *testStack, first, last string) string {
	t.Helper()
	psid := s.newPerson(first, last)
	s.say(psid, "I need a human please")
	waitFor(t, "the handover", func() bool { c := s.conversationOf(psid); return c != nil && c.Status == baton.StatusOpen })
	return psid
}

// screenshot saves the viewport as a PNG under $BATON_SCREENSHOTS (the
// docs' screenshots are made this way); without it, nothing is written.
func screenshot(t *testing.T, ctx context.Context, name string, width, height int64) {
	t.Helper()
	dir := os.Getenv("BATON_SCREENSHOTS")
	if dir == "" {
		return
	}
	opts := []chromedp.EmulateViewportOption{}
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	// Let the layout settle on the new width: the thread scrolls to its end.
	evalJS[chromedp.Void](t, ctx, `(function () { var th = document.getElementById('thread'); if (th) th.scrollTop = th.scrollHeight; })()`)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
}

// The whole loop in the browser: the person writes on Messenger, the bot
// answers and hands over; the agent sees it arrive live, reads the bot's
// history and reason, replies (Send and Enter), sees the person's answer
// live, and hands back with Done; the bot reacts on Messenger.
func TestBrowserHandoverJourney(t *testing.T) {
	s := bootStack(t, nil)
	// Two conversations already waiting, so the inbox is not empty.
	handedOver(t, s, "Lee", "Park")
	handedOver(t, s, "Aiko", "Tanaka")
	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	waitJS(t, ctx, "the waiting conversations", listItemJS("Aiko Tanaka"))
	markPage(t, ctx)

	pctx, psid := personTab(t, ctx, s, "Maria", "Garcia")
	personWrites(t, pctx, "hi")
	waitJS(t, pctx, "the bot's greeting", chatShowsJS("Hi Maria"))
	personWrites(t, pctx, "I was charged twice for my order, talk to a human please")

	// The agent sees the handover arrive, without reloading.
	waitJS(t, ctx, "Maria in the Inbox", listItemJS("Maria Garcia"))
	stillSamePage(t, ctx, "the new conversation in the list")
	last := evalJS[string](t, ctx, listItemJS("Maria Garcia")+`.querySelector('[data-testid="conversation-last"]').textContent`)
	if last == "" {
		t.Error("the list item shows no last message")
	}

	openConversation(t, ctx, "Maria Garcia")
	sections := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#thread .section')).map(function (e) { return e.textContent.trim(); })`)
	if len(sections) == 0 || sections[0] != "Before handover — with the bot" {
		t.Errorf("sections = %q, want the bot's history marked first", sections)
	}
	if !evalJS[bool](t, ctx, threadHasJS("bot", "Hi Maria")) {
		t.Error("the bot's greeting is not in the history")
	}
	reason := evalJS[string](t, ctx, `document.querySelector('[data-testid="handover-reason"]').textContent`)
	if !strings.Contains(reason, "billing") {
		t.Errorf("handover reason shows %q, want the bot's metadata (team billing)", reason)
	}
	if !evalJS[bool](t, ctx, `!!document.querySelector('[data-testid="handover-divider"]')`) {
		t.Error("no handover divider in the thread")
	}
	screenshot(t, ctx, "conversation-desktop", 1280, 860)
	screenshot(t, ctx, "conversation-phone", 390, 844)

	// A reply with the Send button, another with Enter.
	markPage(t, ctx)
	do(t, ctx, "reply with Send",
		chromedp.SendKeys("Message", "Hi Maria, Ana here — refunding the double charge now.", browsertest.ByRole("textbox", "Message")),
		chromedp.Click("Send", browsertest.ByRole("button", "Send")),
	)
	waitJS(t, pctx, "the agent's reply on Messenger", chatShowsJS("refunding the double charge"))
	waitJS(t, ctx, "the reply in the thread", threadHasJS("agent", "refunding the double charge"))
	do(t, ctx, "reply with Enter",
		chromedp.SendKeys("Message", "It should show within 3 days.", browsertest.ByRole("textbox", "Message")),
		chromedp.SendKeys("Message", kb.Enter, browsertest.ByRole("textbox", "Message")),
	)
	waitJS(t, pctx, "the second reply on Messenger", chatShowsJS("within 3 days"))
	if v := evalJS[string](t, ctx, `document.getElementById('message').value`); v != "" {
		t.Errorf("the reply box still holds %q after sending", v)
	}

	// The person answers; the agent sees it live.
	personWrites(t, pctx, "thank you!")
	waitJS(t, ctx, "the person's answer in the thread", threadHasJS("user", "thank you!"))
	stillSamePage(t, ctx, "the person's answer")

	// Done: pick an outcome, see the metadata the bot will get, confirm.
	clickButton(t, ctx, "Done")
	do(t, ctx, "open Done",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="done-dialog"]`)),
		chromedp.Click(chromedp.CSS(`#done-dialog input[name="outcome"][value="resolved"]`)),
		chromedp.SendKeys("Note", "Refunded the duplicate", browsertest.ByRole("textbox", "Note for the bot (optional)")),
	)
	// A message arriving while the form is open re-renders the header
	// around it: the dialog stays open with what was typed, still focused.
	personWrites(t, pctx, "is it done?")
	waitJS(t, ctx, "the message under the open dialog", threadHasJS("user", "is it done?"))
	if !evalJS[bool](t, ctx, `(function () { var d = document.getElementById('done-dialog'); return d.matches(':modal') && document.activeElement === document.getElementById('done-note'); })()`) {
		t.Fatal("a live update closed the Done dialog or took the focus")
	}
	do(t, ctx, "finish the note", chromedp.KeyEvent(" charge"))
	if v := evalJS[string](t, ctx, `document.getElementById('done-note').value`); v != "Refunded the duplicate charge" {
		t.Fatalf("note = %q after a live update", v)
	}
	waitJS(t, ctx, "the preview with the note", `document.querySelector('[data-testid="done-preview"]').textContent.indexOf("Refunded the duplicate charge") >= 0`)
	var preview struct {
		V       int    `json:"v"`
		Outcome string `json:"outcome"`
		Note    string `json:"note"`
		Agent   struct {
			Name string `json:"name"`
		} `json:"agent"`
	}
	raw := evalJS[string](t, ctx, `document.querySelector('[data-testid="done-preview"]').textContent`)
	if err := json.Unmarshal([]byte(raw), &preview); err != nil || preview.V != 1 || preview.Outcome != "resolved" || preview.Agent.Name == "" {
		t.Errorf("preview = %s (%v)", raw, err)
	}
	clickButton(t, ctx, "Hand back")
	waitJS(t, ctx, "the conversation shown as handed back",
		`(function () { var d = Array.from(document.querySelectorAll('[data-testid="handover-divider"]')); return d.some(function (e) { return e.textContent.indexOf("handed back") >= 0; }); })()`)
	stillSamePage(t, ctx, "the hand-back")
	if evalJS[bool](t, ctx, `!!document.querySelector('[data-testid="composer"]')`) {
		t.Error("the composer is still offered after Done")
	}
	waitJS(t, pctx, "the bot reacting on Messenger", chatShowsJS("Glad that's sorted"))
	if c := s.conversationOf(psid); c.Status != baton.StatusClosed {
		t.Errorf("after Done the conversation is %s", c.Status)
	}
	if os.Getenv("BATON_SCREENSHOTS") != "" {
		do(t, ctx, "the inbox", chromedp.Navigate(s.ConsoleURL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="conversation-list"]`)))
		screenshot(t, ctx, "inbox-desktop", 1280, 860)
		screenshot(t, ctx, "inbox-phone", 390, 844)
	}
}

// A supervisor opens a thread the bot owns (folder Bot), requests control
// with a reason, and gets the composer without reloading.
func TestBrowserRequestControl(t *testing.T) {
	s := bootStack(t, nil)
	_, err := s.inst.acct.service.CreateUser(context.Background(), s.admin, account.NewUser{
		Email: "sam@example.test", Name: "Sam Supervisor", Role: baton.RoleSupervisor, Password: "supervisor password",
	})
	if err != nil {
		t.Fatal(err)
	}
	psid := s.newPerson("James", "Wilson")
	s.say(psid, "what are your opening hours?")
	waitFor(t, "the standby history", func() bool {
		c := s.conversationOf(psid)
		return c != nil && c.Status == baton.StatusBot && strings.Contains(c.LastMessageText, "Monday")
	})

	ctx := browsertest.New(t)
	signIn(t, ctx, s, "sam@example.test", "supervisor password")
	do(t, ctx, "the Bot folder",
		chromedp.Click("Bot", browsertest.ByRole("link", "Bot")),
	)
	waitJS(t, ctx, "the Bot folder current", `(function () { var a = document.querySelector('.folders [aria-current="page"]'); return a && a.textContent.trim() === "Bot"; })()`)
	openConversation(t, ctx, "James Wilson")
	if evalJS[bool](t, ctx, `!!document.querySelector('[data-testid="composer"]')`) {
		t.Fatal("a composer is offered on a thread the bot owns")
	}
	markPage(t, ctx)
	clickButton(t, ctx, "Request control")
	do(t, ctx, "request control",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="request-dialog"]`)),
		chromedp.SendKeys("Reason", "VIP customer", browsertest.ByRole("textbox", "Reason (the bot receives it)")),
		chromedp.Click("Send request", browsertest.ByRole("button", "Send request")),
	)
	do(t, ctx, "the composer", chromedp.WaitVisible("Message", browsertest.ByRole("textbox", "Message")))
	stillSamePage(t, ctx, "control arriving")
	if b := evalJS[string](t, ctx, `document.querySelector('[data-testid="owner-badge"]').textContent.trim()`); b != "Baton" {
		t.Errorf("owner badge = %q, want Baton", b)
	}
	do(t, ctx, "reply",
		chromedp.SendKeys("Message", "Hello James, a person here."+kb.Enter, browsertest.ByRole("textbox", "Message")),
	)
	waitFor(t, "the reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "a person here") })
}

// The live watch in the browser: a supervisor keeps /watch open; a
// person's exchange with the bot appears and grows without a reload, and
// "Request control" with a reason hands the thread to Baton (the demo bot
// honours requests), after which it leaves the watch.
func TestBrowserWatchLive(t *testing.T) {
	s := bootStack(t, nil)
	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	do(t, ctx, "open the live watch", chromedp.Navigate(s.ConsoleURL+"/watch"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="watch-list-area"]`)))
	markPage(t, ctx)

	psid := s.newPerson("Wendy", "Watts")
	s.say(psid, "what are your opening hours?")
	item := `Array.from(document.querySelectorAll('[data-testid="watch-item"]')).find(function (li) {
		return li.querySelector('[data-testid="watch-name"]').textContent.trim() === "Wendy Watts"; })`
	waitJS(t, ctx, "Wendy on the watch with the bot's answer", `(function () { var li = `+item+`;
		return !!li && li.querySelector('[data-testid="watch-stream"]').textContent.indexOf("Monday") >= 0; })()`)
	s.say(psid, "and is the shop open on holidays?")
	waitJS(t, ctx, "her next line, live", `(function () { var li = `+item+`;
		return !!li && li.querySelector('[data-testid="watch-stream"]').textContent.indexOf("open on holidays") >= 0; })()`)
	stillSamePage(t, ctx, "the watch updating")

	do(t, ctx, "request control with a reason",
		chromedp.SendKeys(chromedp.CSS(`[data-testid="watch-reason"]`), "Asked twice about hours"),
		chromedp.Click(chromedp.CSS(`[data-testid="watch-request"]`)),
	)
	waitFor(t, "control handed to Baton", func() bool { c := s.conversationOf(psid); return c != nil && c.Status == baton.StatusOpen })
	waitJS(t, ctx, "Wendy gone from the watch", `!(`+item+`)`)
	stillSamePage(t, ctx, "the request")
}

// Markup in a message is text: the list and the thread show it literally
// and no element is created from it.
func TestBrowserScriptIsText(t *testing.T) {
	s := bootStack(t, nil)
	const evil = `<script>alert(1)</script><b>x</b>`
	psid := handedOver(t, s, "Eve", "Mallory")
	s.say(psid, evil)
	waitFor(t, "the message stored", func() bool { c := s.conversationOf(psid); return c.LastMessageText == evil })

	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	waitJS(t, ctx, "Eve in the Inbox", listItemJS("Eve Mallory"))
	last := evalJS[string](t, ctx, listItemJS("Eve Mallory")+`.querySelector('[data-testid="conversation-last"]').textContent`)
	if last != evil {
		t.Errorf("list shows %q, want the text as written", last)
	}
	openConversation(t, ctx, "Eve Mallory")
	texts := evalJS[[]string](t, ctx, `Array.from(document.querySelectorAll('#thread [data-author="user"] [data-testid="message-text"]')).map(function (p) { return p.textContent; })`)
	if len(texts) == 0 || texts[len(texts)-1] != evil {
		t.Errorf("thread shows %q, want the text as written last", texts)
	}
	for _, sel := range []string{`#conversation-list b`, `#conversation-list script`, `#thread b`, `#thread script`} {
		if evalJS[bool](t, ctx, `!!document.querySelector(`+jsq(sel)+`)`) {
			t.Errorf("an element %s was made from the message", sel)
		}
	}
}

// With the Graph API down the reply fails for good after the retries,
// shows why and offers Retry; after recovery Retry sends it.
func TestBrowserFailedThenRetry(t *testing.T) {
	s := bootStack(t, nil)
	psid := handedOver(t, s, "Lee", "Park")
	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	openConversation(t, ctx, "Lee Park")

	s.faults(map[string]any{"graph_down": true})
	do(t, ctx, "reply",
		chromedp.SendKeys("Message", "Your parcel is on its way.", browsertest.ByRole("textbox", "Message")),
		chromedp.Click("Send", browsertest.ByRole("button", "Send")),
	)
	waitJS(t, ctx, "the reply pending in the thread", `(function () { var o = document.querySelector('[data-testid="outbox-item"]'); return o && o.textContent.indexOf("parcel") >= 0; })()`)
	waitFor(t, "a failed attempt", func() bool {
		var n int
		s.inst.db.QueryRowContext(context.Background(), `select attempts from outbox where status = 'pending' order by id desc limit 1`).Scan(&n)
		return n >= 1
	})
	s.advance(16 * time.Minute)
	waitJS(t, ctx, "the reply shown failed", `(function () { var o = document.querySelector('[data-testid="outbox-item"]'); return o && o.classList.contains("msg--failed"); })()`)
	if e := evalJS[string](t, ctx, `(document.querySelector('[data-testid="outbox-error"]') || {}).textContent || ""`); e == "" {
		t.Error("failed without a reason shown")
	}
	if s.pageSays(psid, demoBatonAppID, "parcel") {
		t.Fatal("sent while the Graph API was down")
	}

	s.faults(map[string]any{"graph_down": false})
	clickButton(t, ctx, "Retry")
	waitJS(t, ctx, "the reply sent", threadHasJS("agent", "parcel is on its way")+` && !document.querySelector('[data-testid="outbox-item"]')`)
	waitFor(t, "the retried reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "parcel is on its way") })
}

// The composer tells the agent which mode the next message uses: past
// 24 h the HUMAN_AGENT tag; past 7 days a refusal in plain words. The
// emulator runs in classic mode, where threads never go idle: in routing
// mode an unworked thread expires after 24 h (PROTOCOL.md §2) and Baton
// closes it as expired, which would race the agent's reply at 25 h.
func TestBrowserWindowHumanAgent(t *testing.T) {
	s := bootStack(t, Env{"EMULATOR_MODE": "classic"})
	psid := handedOver(t, s, "Aiko", "Tanaka")
	s.advance(25 * time.Hour)
	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	openConversation(t, ctx, "Aiko Tanaka")
	w := evalJS[string](t, ctx, `document.querySelector('[data-testid="window-text"]').textContent`)
	if !strings.Contains(w, "HUMAN_AGENT") {
		t.Errorf("composer says %q, want the HUMAN_AGENT tag named", w)
	}
	do(t, ctx, "reply",
		chromedp.SendKeys("Message", "Sorry for the wait, here is your answer.", browsertest.ByRole("textbox", "Message")),
		chromedp.Click("Send", browsertest.ByRole("button", "Send")),
	)
	waitFor(t, "the tagged reply on Messenger", func() bool { return s.pageSays(psid, demoBatonAppID, "Sorry for the wait") })

	s.advance(7 * 24 * time.Hour)
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-testid="composer-blocked"]`)))
	why := evalJS[string](t, ctx, `document.querySelector('[data-testid="composer-blocked"]').textContent.trim()`)
	if !strings.Contains(why, "window closed") {
		t.Errorf("in place of the composer: %q, want the closed window in plain words", why)
	}
	if evalJS[bool](t, ctx, `!!document.getElementById('message')`) {
		t.Error("the reply box is still offered after 8 days")
	}
}

// TestBrowserClaimAssignNote: a supervisor claims a waiting conversation,
// reassigns it to an agent, writes a note that @mentions her, inserts a
// canned reply with "/", and tags the conversation — each shown live,
// without reloading.
func TestBrowserClaimAssignNote(t *testing.T) {
	s := bootStack(t, nil)
	ctx0 := context.Background()
	ana := addAgent(t, s, "ana@example.test", "Ana Alves")
	if err := s.inst.db.SaveCannedReply(ctx0, &baton.CannedReply{Shortcut: "greet", Body: "Hi {{first_name}}, {{agent_name}} here.", CreatedBy: &s.admin.ID}); err != nil {
		t.Fatal(err)
	}
	handedOver(t, s, "Nina", "Novak")
	ctx := browsertest.New(t)
	signIn(t, ctx, s, s.admin.Email, adminPassword)
	waitJS(t, ctx, "the unassigned count", `document.querySelector('[data-testid="count-unassigned"]').getAttribute("data-count") === "1"`)
	openConversation(t, ctx, "Nina Novak")
	markPage(t, ctx)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-testid="assignee-name"]').textContent.trim()`); got != "Unassigned" {
		t.Fatalf("assignee shows %q, want Unassigned", got)
	}

	clickButton(t, ctx, "Claim")
	waitJS(t, ctx, "claimed by the admin", `document.querySelector('[data-testid="assignee-name"]').textContent.trim() === `+jsq(s.admin.Name))
	waitJS(t, ctx, "the unassigned count back to 0", `document.querySelector('[data-testid="count-unassigned"]').getAttribute("data-count") === "0"`)

	// Choosing and submitting happen in one step: a live update (the
	// claim, a presence heartbeat) may redraw the header between two
	// separate actions and reset the choice. Submitting again until the
	// header shows Ana is harmless: assigning is idempotent.
	waitJS(t, ctx, "assigned to Ana", `(() => {
		if (document.querySelector('[data-testid="assignee-name"]').textContent.trim() === "Ana Alves") return true;
		const sel = document.querySelector('#assign-to');
		if (sel && !window.__assignSent) { sel.value = `+jsq(strconv.FormatInt(ana.ID, 10))+`; window.__assignSent = true; sel.form.requestSubmit(); setTimeout(() => { window.__assignSent = false }, 1500); }
		return false;
	})()`)
	waitJS(t, ctx, "Ana on the list item", listItemJS("Nina Novak")+`.querySelector('[data-testid="assignee"]').textContent.trim() === "Ana Alves"`)

	// Ana has the console open in her own browser: the mention reaches her
	// there, live.
	actx := browsertest.New(t)
	signIn(t, actx, s, "ana@example.test", "correct horse battery")
	waitJS(t, actx, "Ana's inbox", `!!document.querySelector('[data-testid="count-inbox"]')`)

	do(t, ctx, "write a note",
		chromedp.Click(chromedp.CSS(`#note-compose summary`)),
		chromedp.SendKeys("Note", "@ana please follow up on the refund", browsertest.ByRole("textbox", "Note")),
	)
	clickButton(t, ctx, "Add note")
	waitJS(t, ctx, "the note in the thread", `Array.from(document.querySelectorAll('#thread [data-testid="note"]')).some(function (n) {
		var m = n.querySelector('mark.mention'); return m && m.textContent === "@ana" && n.textContent.indexOf("follow up on the refund") >= 0; })`)
	counts, _, err := s.inst.db.CountConversations(ctx0, ana.ID)
	if err != nil || counts[baton.FolderMentions] != 1 {
		t.Errorf("Ana's mentions = %v (%v), want 1", counts[baton.FolderMentions], err)
	}
	waitJS(t, actx, "Ana told of the mention", `(() => {
		const n = document.querySelector('[data-testid="mention-toast"]');
		return !!n && !n.hidden && n.textContent.indexOf("mentioned you") >= 0 &&
			document.querySelector('[data-testid="count-mentions"]').getAttribute("data-count") === "1" &&
			document.title.indexOf("(1) ") === 0; })()`)
	screenshot(t, actx, "mention-notice", 1280, 800)

	do(t, ctx, "type / in the composer", chromedp.SendKeys("Message", "/gr", browsertest.ByRole("textbox", "Message")))
	waitJS(t, ctx, "the canned picker", `!document.querySelector('[data-testid="canned-picker"]').hidden`)
	do(t, ctx, "take the first canned reply", chromedp.SendKeys("Message", kb.Enter, browsertest.ByRole("textbox", "Message")))
	if v := evalJS[string](t, ctx, `document.getElementById('message').value`); v != "Hi Nina, "+s.admin.Name+" here." {
		t.Errorf("composer holds %q after picking the canned reply", v)
	}

	do(t, ctx, "tag it", chromedp.SendKeys(chromedp.CSS(`#tag-new`), "Refund"+kb.Enter))
	waitJS(t, ctx, "the tag shown", `Array.from(document.querySelectorAll('[data-testid="tag"]')).some(function (e) { return e.textContent === "refund"; })`)
	stillSamePage(t, ctx, "claim, assign, note and tag")
	screenshot(t, ctx, "teamwork-desktop", 1280, 860)

	if c := s.conversationOf(s.psidOf(t, "Nina")); c.AssignedUserID == nil || *c.AssignedUserID != ana.ID {
		t.Errorf("stored assignee = %v, want Ana", c.AssignedUserID)
	}
	if !strings.Contains(evalJS[string](t, ctx, `document.querySelector('[data-testid="contact-panel"]').textContent`), "Nina Novak") {
		t.Error("the contact panel does not name the person")
	}
}

// psidOf finds the PSID of the conversation with the person named first.
func (s *testStack) psidOf(t *testing.T, first string) string {
	t.Helper()
	var psid string
	if err := s.inst.db.Get(&psid, `select psid from conversations where first_name = $1`, first); err != nil {
		t.Fatal(err)
	}
	return psid
}
