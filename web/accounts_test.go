package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/internal/realtime"
	"github.com/baton-chat/baton/web"
	"golang.org/x/crypto/bcrypt"
)

// testPassword is every seeded user's password; no log may contain it.
const testPassword = "tr0ub4dor&3-horse-staple"

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// site is a console on a real database, with one user per role.
type site struct {
	t     *testing.T
	db    *postgres.DB
	srv   *httptest.Server
	web   *web.Server
	acct  *account.Service
	users map[baton.Role]*baton.User
	// victim is a spare agent that admin actions in the matrix may change.
	victim *baton.User
	logs   *syncBuffer
	clock  *testClock

	mu     sync.Mutex
	killed []int64
}

// testClock is the real clock moved forward by Add, so tests can jump past
// the rate limiter's window while sign-in times stay comparable with the
// database's own.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

type siteOpts struct {
	secure bool
	hub    *realtime.Hub
}

func newSite(t *testing.T, o siteOpts) *site {
	t.Helper()
	db := pgtest.DB(t)
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hasher, err := account.NewHasher(bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	acct := account.New(account.Config{Users: db, Audit: db, Hasher: hasher, Now: clock.Now, Logger: log})
	if err := db.SeedPageSettings(ctx, baton.PageSettings{PageID: "100200300", PageToken: "EAAtokenPAGE7777",
		AppSecret: "appsecretABCD9876", VerifyToken: "verifyWXYZ5432", BatonAppID: "2500000002", HumanAgent: true}); err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, db: db, acct: acct, users: map[baton.Role]*baton.User{}, logs: logs, clock: clock}
	for _, r := range baton.Roles {
		u, err := acct.CreateUser(ctx, nil, account.NewUser{Email: string(r) + "@example.com", Name: "The " + string(r), Role: r, Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		s.users[r] = u
	}
	s.victim, err = acct.CreateUser(ctx, nil, account.NewUser{Email: "victim@example.com", Name: "Vic", Role: baton.RoleAgent, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	cfg := web.Config{
		Logger: log, Users: db, Accounts: acct, Sessions: db.SessionStore(web.SessionOwner),
		Settings: db.Settings("100200300"), Audit: db, SecureCookies: o.secure,
		AllowedOrigins: []string{"https://console.example.com"},
		OnUserSessionsEnded: func(id int64) {
			s.mu.Lock()
			s.killed = append(s.killed, id)
			s.mu.Unlock()
		},
		Now: clock.Now,
	}
	cfg.Console.Hub = o.hub
	s.web = web.New(cfg)
	s.srv = httptest.NewServer(s.web)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *site) wasKilled(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.killed {
		if k == id {
			return true
		}
	}
	return false
}

// browser is one cookie jar talking to the site, not following redirects.
type browser struct {
	t    *testing.T
	site *site
	c    *http.Client
	csrf string
}

func (s *site) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, site: s, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) resp {
	b.t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html")
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	if m := csrfInput.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp{r.StatusCode, r.Header, string(body)}
}

func (b *browser) get(path string) resp {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.site.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser would (Origin, token).
func (b *browser) post(path string, form url.Values) resp {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.site.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.site.srv.URL)
	return b.do(req)
}

func (b *browser) login(email, password string) resp {
	b.t.Helper()
	if r := b.get("/login"); r.status != http.StatusOK {
		b.t.Fatalf("GET /login: %d", r.status)
	}
	return b.post("/login", url.Values{"email": {email}, "password": {password}})
}

func (s *site) signedIn(r baton.Role) *browser {
	s.t.Helper()
	b := s.browser()
	if res := b.login(s.users[r].Email, testPassword); res.status != http.StatusSeeOther {
		s.t.Fatalf("sign in as %s: %d %s", r, res.status, res.body)
	}
	b.get("/admin/users") // picks up the session's token for forms
	if b.csrf == "" {
		// Agents cannot open admin pages; the error page carries no form.
		b.csrf = b.tokenFromPage()
	}
	return b
}

var metaToken = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)"`)

// tokenFromPage reads the token from the layout's meta tag on the sign-in
// page redirect target or any page that renders the layout.
func (b *browser) tokenFromPage() string {
	b.t.Helper()
	r := b.get("/login")
	req, _ := http.NewRequest(http.MethodGet, b.site.srv.URL+"/admin/page", nil)
	r = b.do(req)
	if m := metaToken.FindStringSubmatch(r.body); m != nil && m[1] != "" {
		return m[1]
	}
	b.t.Fatalf("no CSRF token found for this session")
	return ""
}

func (b *browser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.site.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == web.SessionCookieName(false) {
			return c
		}
	}
	return nil
}

// refusal markers: the data-testid of the page a wrapper answers with.
const (
	markRole    = `data-testid="role-denied"`
	markCSRF    = `data-testid="csrf"`
	markSignOut = `data-testid="signed-out"`
)

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// concrete turns a route pattern's path into a request path.
func concrete(p string, id int64) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return wildcard.ReplaceAllString(p, fmt.Sprint(id))
}

func TestRoutesAreAllProtected(t *testing.T) {
	s := newSite(t, siteOpts{})
	routes := s.web.Routes()
	want := map[string]baton.Role{
		"GET /login": "", "POST /login": "", "POST /logout": baton.RoleAgent, "POST /logout/everywhere": baton.RoleAgent,
		"GET /admin/users": baton.RoleAdmin, "POST /admin/users": baton.RoleAdmin, "POST /admin/users/{id}/role": baton.RoleAdmin,
		"POST /admin/users/{id}/disable": baton.RoleAdmin, "POST /admin/users/{id}/enable": baton.RoleAdmin,
		"GET /admin/page": baton.RoleAdmin, "POST /admin/page": baton.RoleAdmin,
	}
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.Pattern] = true
		if min, ok := want[r.Pattern]; ok && (r.Min != min || !r.Session) {
			t.Errorf("%s: min %q session %v, want min %q with session", r.Pattern, r.Min, r.Session, min)
		}
		// Only the webhook may change state without a session and CSRF:
		// it is signed by Facebook instead; the API needs a bearer token.
		if !r.Session && r.Method != http.MethodGet && r.Pattern != "POST /webhook" && !strings.HasPrefix(r.Path, "/api/v1/") {
			t.Errorf("%s changes state without session or CSRF protection", r.Pattern)
		}
		if r.Method == "" {
			t.Errorf("%s matches every method: give it one so CSRF applies", r.Pattern)
		}
		if r.Session && r.Min == "" && r.Pattern != "GET /login" && r.Pattern != "POST /login" {
			t.Errorf("%s is public: every console route needs a role", r.Pattern)
		}
	}
	for p := range want {
		if !seen[p] {
			t.Errorf("route %s not registered", p)
		}
	}
}

// TestRoleMatrix walks every route registered through handle, for a
// signed-out visitor and each role: a role below the route's minimum gets
// the 403 page, the others get past the role check.
func TestRoleMatrix(t *testing.T) {
	s := newSite(t, siteOpts{})
	// Sign in once per role; /logout routes get a fresh session below.
	clients := map[baton.Role]*browser{}
	for _, r := range baton.Roles {
		clients[r] = s.signedIn(r)
	}
	roles := append([]baton.Role{""}, baton.Roles...)
	for _, rt := range s.web.Routes() {
		if !rt.Session {
			continue
		}
		for _, role := range roles {
			name := rt.Pattern + " as " + string(role)
			if role == "" {
				name = rt.Pattern + " signed out"
			}
			t.Run(name, func(t *testing.T) {
				var b *browser
				switch {
				case role == "":
					b = s.browser()
					b.get("/login")
				case strings.HasPrefix(rt.Path, "/logout"):
					b = s.signedIn(role)
				default:
					b = clients[role]
				}
				path := concrete(rt.Path, s.victim.ID)
				var res resp
				if rt.Method == http.MethodGet {
					res = b.get(path)
				} else {
					req, _ := http.NewRequest(rt.Method, s.srv.URL+path, strings.NewReader(url.Values{"csrf_token": {b.csrf}}.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Origin", s.srv.URL)
					res = b.do(req)
				}
				if strings.HasPrefix(rt.Path, "/logout") && role != "" {
					// Signing out everywhere ended the shared session too.
					clients[role] = s.signedIn(role)
				}
				allowed := role.AtLeast(rt.Min)
				switch {
				case strings.Contains(res.body, markCSRF):
					t.Fatalf("refused as CSRF with a valid token: %d", res.status)
				case rt.Min != "" && role == "":
					if rt.Method == http.MethodGet {
						if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
							t.Fatalf("signed out: %d to %q, want 303 to /login?next=", res.status, loc)
						}
					} else if res.status != http.StatusUnauthorized || !strings.Contains(res.body, markSignOut) {
						t.Fatalf("signed out: %d, want 401", res.status)
					}
				case !allowed:
					if res.status != http.StatusForbidden || !strings.Contains(res.body, markRole) {
						t.Fatalf("%s on a %s route: %d, want the 403 page", role, rt.Min, res.status)
					}
					if !strings.Contains(res.body, "Not allowed") {
						t.Fatal("the 403 page does not say what happened")
					}
				default:
					if strings.Contains(res.body, markRole) || strings.Contains(res.body, markSignOut) {
						t.Fatalf("allowed role refused: %d", res.status)
					}
				}
			})
		}
	}
	// The matrix's admin actions on the victim really ran.
	if v, _ := s.db.UserByID(context.Background(), s.victim.ID); v == nil {
		t.Fatal("victim vanished")
	}
}

// TestCSRFOnEveryStateChange sends each state-changing console route a
// request with the token missing, forged, and from another origin: each
// is refused with 403 and changes nothing.
func TestCSRFOnEveryStateChange(t *testing.T) {
	s := newSite(t, siteOpts{})
	admin := s.signedIn(baton.RoleAdmin)
	variants := []struct {
		name  string
		token string
		hdr   map[string]string
	}{
		{"missing token", "", map[string]string{"Origin": s.srv.URL}},
		{"forged token", "forged-" + strings.Repeat("x", 36), map[string]string{"Origin": s.srv.URL}},
		{"another session's token", s.signedIn(baton.RoleAdmin).csrf, map[string]string{"Origin": s.srv.URL}},
		{"cross-origin with the right token", admin.csrf, map[string]string{"Origin": "https://evil.example"}},
		{"null origin", admin.csrf, map[string]string{"Origin": "null"}},
		{"cross-site fetch metadata", admin.csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site sibling", admin.csrf, map[string]string{"Sec-Fetch-Site": "same-site"}},
	}
	n := 0
	for _, rt := range s.web.Routes() {
		if !rt.Session || rt.Method == http.MethodGet || rt.Method == http.MethodHead {
			continue
		}
		n++
		for _, v := range variants {
			t.Run(rt.Pattern+" "+v.name, func(t *testing.T) {
				form := url.Values{"csrf_token": {v.token}, "email": {"new@example.com"}, "role": {"admin"},
					"password": {testPassword}, "app_secret": {"stolen-secret"}, "baton_app_id": {"1"}}
				req, _ := http.NewRequest(rt.Method, s.srv.URL+concrete(rt.Path, s.victim.ID), strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, val := range v.hdr {
					req.Header.Set(k, val)
				}
				res := admin.do(req)
				if res.status != http.StatusForbidden || !strings.Contains(res.body, markCSRF) {
					t.Fatalf("status %d, want 403 CSRF refusal", res.status)
				}
			})
		}
		// The same refusal for a script's fetch, answered in JSON.
		req, _ := http.NewRequest(rt.Method, s.srv.URL+concrete(rt.Path, s.victim.ID), strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("X-CSRF-Token", "wrong")
		if res := admin.do(req); res.status != http.StatusForbidden || !strings.Contains(res.body, `"code":"csrf"`) {
			t.Errorf("%s fetch with a wrong header token: %d %s", rt.Pattern, res.status, res.body)
		}
	}
	if n < 8 {
		t.Fatalf("only %d state-changing routes found", n)
	}
	// Nothing happened: the admin is still signed in, nobody was added,
	// the victim is untouched, the secret unchanged.
	if res := admin.get("/admin/users"); res.status != http.StatusOK {
		t.Fatalf("admin signed out by a refused request: %d", res.status)
	}
	ctx := context.Background()
	if _, err := s.db.UserByEmail(ctx, "new@example.com"); baton.ErrorCode(err) != baton.ENOTFOUND {
		t.Fatal("a refused request created a user")
	}
	if v, _ := s.db.UserByID(ctx, s.victim.ID); v.Disabled || v.Role != baton.RoleAgent {
		t.Fatalf("a refused request changed the victim: %+v", v)
	}
	if ps, _ := s.db.Settings("100200300").PageSettings(ctx); ps.AppSecret != "appsecretABCD9876" {
		t.Fatal("a refused request changed the app secret")
	}
	// The token in a header works for fetch calls, from an allowed origin.
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/admin/users/"+fmt.Sprint(s.victim.ID)+"/role", strings.NewReader("role=supervisor"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", admin.csrf)
	req.Header.Set("Origin", "https://console.example.com")
	if res := admin.do(req); res.status != http.StatusSeeOther {
		t.Fatalf("header token from an allowed origin: %d %s", res.status, res.body)
	}
	if v, _ := s.db.UserByID(ctx, s.victim.ID); v.Role != baton.RoleSupervisor {
		t.Fatalf("role not changed: %s", v.Role)
	}
}

func TestWebhookNeedsNoSessionOrCSRF(t *testing.T) {
	s := newSite(t, siteOpts{})
	// No Ingest is wired: reaching the handler at all is the point, so a
	// refusal by the CSRF or session wrappers would show here instead.
	for _, rt := range s.web.Routes() {
		if rt.Path != "/webhook" {
			continue
		}
		if rt.Session {
			t.Fatalf("%s runs with sessions", rt.Pattern)
		}
	}
	res, err := http.Get(s.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(res.Header.Values("Set-Cookie")) != 0 {
		t.Fatal("a machine route set a cookie")
	}
}

func TestSessionFixation(t *testing.T) {
	s := newSite(t, siteOpts{})
	b := s.browser()
	b.get("/login")
	before := b.sessionCookie()
	if before == nil {
		t.Fatal("no session before sign-in (the form's CSRF token needs one)")
	}
	if res := b.post("/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}}); res.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.status)
	}
	after := b.sessionCookie()
	if after == nil || after.Value == before.Value {
		t.Fatal("the session token did not change at sign-in")
	}
	// An attacker who planted the old token gets nothing.
	planted := s.browser()
	u, _ := url.Parse(s.srv.URL)
	planted.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookieName(false), Value: before.Value}})
	if res := planted.get("/admin/users"); res.status != http.StatusSeeOther {
		t.Fatalf("the pre-login token is signed in: %d", res.status)
	}
	// Sign-out ends the session server-side: replaying the token fails.
	b.get("/admin/users") // the form token changed at sign-in too
	old := b.sessionCookie().Value
	if res := b.post("/logout", nil); res.status != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Fatalf("sign out: %d %q", res.status, res.header.Get("Location"))
	}
	replay := s.browser()
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: web.SessionCookieName(false), Value: old}})
	if res := replay.get("/admin/users"); res.status != http.StatusSeeOther {
		t.Fatalf("a signed-out token still works: %d", res.status)
	}
}

func TestSignOutEverywhereLeavesNoSession(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := context.Background()
	admin := s.users[baton.RoleAdmin]
	laptop, phone := s.signedIn(baton.RoleAdmin), s.signedIn(baton.RoleAdmin)
	other := s.signedIn(baton.RoleAgent)
	if n, _ := s.db.CountUserSessions(ctx, admin.ID); n != 2 {
		t.Fatalf("%d sessions before, want 2", n)
	}
	if res := laptop.post("/logout/everywhere", nil); res.status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d %s", res.status, res.body)
	}
	if n, _ := s.db.CountUserSessions(ctx, admin.ID); n != 0 {
		t.Fatalf("%d sessions left, want 0", n)
	}
	if !s.wasKilled(admin.ID) {
		t.Fatal("websockets were not told to close")
	}
	for name, b := range map[string]*browser{"laptop": laptop, "phone": phone} {
		if res := b.get("/admin/users"); res.status != http.StatusSeeOther {
			t.Fatalf("%s still signed in: %d", name, res.status)
		}
	}
	if res := other.get("/login"); res.status != http.StatusSeeOther {
		t.Fatal("another user's session ended too")
	}
	// And signing in again works.
	s.signedIn(baton.RoleAdmin)
}

func TestDisableEndsSessions(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := context.Background()
	admin := s.signedIn(baton.RoleAdmin)
	v1, v2 := s.browser(), s.browser()
	for _, b := range []*browser{v1, v2} {
		if res := b.login("victim@example.com", testPassword); res.status != http.StatusSeeOther {
			t.Fatalf("victim sign in: %d", res.status)
		}
	}
	if n, _ := s.db.CountUserSessions(ctx, s.victim.ID); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	res := admin.post(fmt.Sprintf("/admin/users/%d/disable", s.victim.ID), nil)
	if res.status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", res.status, res.body)
	}
	if n, _ := s.db.CountUserSessions(ctx, s.victim.ID); n != 0 {
		t.Fatalf("%d sessions left after disable", n)
	}
	if !s.wasKilled(s.victim.ID) {
		t.Fatal("websockets were not told to close")
	}
	if res := v1.get("/"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/login") {
		t.Fatalf("disabled user still in: %d", res.status)
	}
	// A disabled user gets the same answer as a wrong password.
	res = v2.login("victim@example.com", testPassword)
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "Wrong email or password.") {
		t.Fatalf("disabled sign in: %d", res.status)
	}
	page := admin.get("/admin/users")
	if !strings.Contains(page.body, "is disabled and signed out everywhere") {
		t.Fatal("no confirmation shown")
	}
	if res := admin.post(fmt.Sprintf("/admin/users/%d/enable", s.victim.ID), nil); res.status != http.StatusSeeOther {
		t.Fatalf("enable: %d", res.status)
	}
	if res := v2.login("victim@example.com", testPassword); res.status != http.StatusSeeOther {
		t.Fatalf("re-enabled sign in: %d", res.status)
	}
}

func TestLoginErrorsAreGeneric(t *testing.T) {
	s := newSite(t, siteOpts{})
	b := s.browser()
	wrong := b.login("agent@example.com", "not the password")
	unknown := b.login("nobody@example.com", "not the password")
	for name, r := range map[string]resp{"wrong password": wrong, "unknown email": unknown} {
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong email or password.") {
			t.Fatalf("%s: %d", name, r.status)
		}
		if strings.Contains(r.body, "not the password") {
			t.Fatalf("%s: the password was echoed back", name)
		}
	}
	var attempts int
	s.db.GetContext(context.Background(), &attempts, `select count(*) from login_attempts`)
	if attempts != 2 {
		t.Fatalf("%d attempts logged, want 2", attempts)
	}
}

func TestNextStaysLocal(t *testing.T) {
	s := newSite(t, siteOpts{})
	tests := []struct{ next, want string }{
		{"/conversations/5?x=1", "/conversations/5?x=1"},
		{"/admin/users", "/admin/users"},
		{"//evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"", "/"},
	}
	for _, tt := range tests {
		b := s.browser()
		b.get("/login?next=" + url.QueryEscape(tt.next))
		res := b.post("/login", url.Values{"email": {"admin@example.com"}, "password": {testPassword}, "next": {tt.next}})
		if got := res.header.Get("Location"); res.status != http.StatusSeeOther || got != tt.want {
			t.Errorf("next=%q: %d to %q, want %q", tt.next, res.status, got, tt.want)
		}
	}
	// A signed-out visit remembers where it was going.
	res := s.browser().get("/admin/page")
	if loc := res.header.Get("Location"); loc != "/login?next=%2Fadmin%2Fpage" {
		t.Fatalf("redirect to %q", loc)
	}
}

func TestLoginRateLimit(t *testing.T) {
	s := newSite(t, siteOpts{})
	b := s.browser()
	for i := 0; i < account.DefaultLimits.PerEmail; i++ {
		if res := b.login("agent@example.com", "guess number "+fmt.Sprint(i)); res.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, res.status)
		}
	}
	res := b.login("agent@example.com", testPassword)
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", account.DefaultLimits.PerEmail, res.status)
	}
	if !strings.Contains(res.body, "Too many failed sign-in attempts. Wait 15 minutes and try again.") {
		t.Fatal("429 without a clear message")
	}
	if res.header.Get("Retry-After") != "900" {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	// Once the window has passed, the right password works again.
	s.clock.Add(account.DefaultLimits.Window + time.Second)
	if res := b.login("agent@example.com", testPassword); res.status != http.StatusSeeOther {
		t.Fatalf("after the window: %d", res.status)
	}
}

func TestCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			s := newSite(t, siteOpts{secure: secure})
			res, err := http.Get(s.srv.URL + "/login")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var c *http.Cookie
			for _, k := range res.Cookies() {
				if k.Name == web.SessionCookieName(secure) {
					c = k
				}
			}
			if c == nil {
				t.Fatalf("no session cookie in %v", res.Header.Values("Set-Cookie"))
			}
			raw := strings.Join(res.Header.Values("Set-Cookie"), "; ")
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Fatalf("cookie %s", raw)
			}
			if c.Secure != secure {
				t.Fatalf("Secure=%v, want %v: %s", c.Secure, secure, raw)
			}
			if secure && !strings.HasPrefix(c.Name, "__Host-") {
				t.Fatalf("secure cookie without __Host- prefix: %s", c.Name)
			}
			if secure != (res.Header.Get("Strict-Transport-Security") != "") {
				t.Fatal("HSTS must go with secure cookies")
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := newSite(t, siteOpts{})
	for _, path := range []string{"/login", "/healthz", "/admin/users"} {
		res, err := http.Get(s.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline script: %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") == "" ||
			res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
	}
	// The pages themselves carry no inline script.
	b := s.browser()
	if res := b.get("/login"); strings.Contains(res.body, "<script>") || strings.Contains(res.body, "onclick=") {
		t.Fatal("inline script in the sign-in page")
	}
}

func TestWebsocketOrigin(t *testing.T) {
	s := newSite(t, siteOpts{hub: realtime.NewHub()})
	agent := s.signedIn(baton.RoleAgent)
	for _, tt := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"http://" + strings.TrimPrefix(s.srv.URL, "http://") + ".evil.example", http.StatusForbidden},
		{s.srv.URL, http.StatusSwitchingProtocols},
		{"https://console.example.com", http.StatusSwitchingProtocols},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/ws", nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		ctx, cancel := context.WithCancel(context.Background())
		res, err := agent.c.Do(req.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if res.StatusCode != tt.want {
			t.Errorf("Origin %s: %d, want %d", tt.origin, res.StatusCode, tt.want)
		}
		res.Body.Close()
		cancel()
	}
}

func TestNoPasswordInLogs(t *testing.T) {
	s := newSite(t, siteOpts{})
	b := s.browser()
	b.login("admin@example.com", "wrong-"+testPassword)
	b.login("nobody@example.com", testPassword)
	admin := s.signedIn(baton.RoleAdmin)
	admin.post("/admin/users", url.Values{"email": {"new@example.com"}, "name": {"New"}, "role": {"agent"}, "password": {"new-" + testPassword}})
	admin.post("/admin/users", url.Values{"email": {"bad"}, "role": {"agent"}, "password": {"short"}})
	admin.post("/admin/page", url.Values{"app_secret": {"brand-new-secret-4321"}, "baton_app_id": {"2500000002"}})
	logs := s.logs.String()
	if !strings.Contains(logs, "sign-in attempt") {
		t.Fatal("sign-in attempts were not logged")
	}
	for _, secret := range []string{testPassword, "short", "brand-new-secret-4321", "$2a$"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q", secret)
		}
	}
	var audit string
	s.db.GetContext(context.Background(), &audit, `select string_agg(detail::text, ' ') from audit_log`)
	if strings.Contains(audit, "brand-new-secret") || strings.Contains(audit, testPassword) {
		t.Fatal("the audit log holds a secret")
	}
}

func TestAdminUsersPage(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := context.Background()
	admin := s.signedIn(baton.RoleAdmin)
	res := admin.post("/admin/users", url.Values{"email": {"Zoe@Example.com"}, "name": {"Zoe <b>"}, "role": {"supervisor"}, "password": {testPassword}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", res.status, res.body)
	}
	page := admin.get("/admin/users")
	if !strings.Contains(page.body, "Added zoe@example.com as supervisor.") || !strings.Contains(page.body, "Zoe &lt;b&gt;") {
		t.Fatal("the new user is not listed (escaped)")
	}
	if strings.Contains(page.body, "$2a$") {
		t.Fatal("a password hash reached the page")
	}
	// Refusals come back on the form with a reason and the right status.
	res = admin.post("/admin/users", url.Values{"email": {"zoe@example.com"}, "role": {"agent"}, "password": {testPassword}})
	if res.status != http.StatusConflict || !strings.Contains(res.body, "already exists") {
		t.Fatalf("duplicate: %d", res.status)
	}
	res = admin.post("/admin/users", url.Values{"email": {"x@example.com"}, "role": {"agent"}, "password": {"short"}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "at least 10 characters") || !strings.Contains(res.body, `value="x@example.com"`) {
		t.Fatalf("short password: %d", res.status)
	}
	zoe, _ := s.db.UserByEmail(ctx, "zoe@example.com")
	admin.post(fmt.Sprintf("/admin/users/%d/role", zoe.ID), url.Values{"role": {"admin"}})
	if z, _ := s.db.UserByID(ctx, zoe.ID); z.Role != baton.RoleAdmin {
		t.Fatalf("role %s", z.Role)
	}
	// The last admin is kept: demote zoe, then try to disable the admin.
	admin.post(fmt.Sprintf("/admin/users/%d/role", zoe.ID), url.Values{"role": {"agent"}})
	res = admin.post(fmt.Sprintf("/admin/users/%d/disable", s.users[baton.RoleAdmin].ID), nil)
	if res.status != http.StatusSeeOther {
		t.Fatalf("disable last admin: %d", res.status)
	}
	if page := admin.get("/admin/users"); !strings.Contains(page.body, "at least one enabled admin") {
		t.Fatal("refusal not shown")
	}
	if res := admin.post("/admin/users/999999/disable", nil); res.status != http.StatusNotFound {
		t.Fatalf("unknown user: %d", res.status)
	}
	// Signing a user out from the admin page ends their sessions.
	agent := s.signedIn(baton.RoleAgent)
	admin.post(fmt.Sprintf("/admin/users/%d/signout", s.users[baton.RoleAgent].ID), nil)
	if res := agent.get("/"); res.status != http.StatusSeeOther {
		t.Fatalf("signed-out agent still in: %d", res.status)
	}
}

func TestAdminPageSettings(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := context.Background()
	admin := s.signedIn(baton.RoleAdmin)
	page := admin.get("/admin/page")
	if page.status != http.StatusOK {
		t.Fatalf("GET: %d", page.status)
	}
	for _, full := range []string{"EAAtokenPAGE7777", "appsecretABCD9876", "verifyWXYZ5432"} {
		if strings.Contains(page.body, full) {
			t.Fatalf("secret %q rendered in full", full)
		}
	}
	for _, tail := range []string{"7777", "9876", "5432"} {
		if !strings.Contains(page.body, "••••"+tail) {
			t.Fatalf("masked secret ending %s not shown", tail)
		}
	}
	res := admin.post("/admin/page", url.Values{"app_secret": {"rotated-secret-1111"}, "baton_app_id": {"2500000002"}, "primary_app_id": {"1500000001"}, "human_agent": {"on"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.status, res.body)
	}
	ps, _ := s.db.Settings("100200300").PageSettings(ctx)
	if ps.AppSecret != "rotated-secret-1111" || ps.PageToken != "EAAtokenPAGE7777" || ps.PrimaryAppID != "1500000001" || !ps.HumanAgent {
		t.Fatalf("saved %+v", ps)
	}
	if page := admin.get("/admin/page"); !strings.Contains(page.body, "Settings saved.") || !strings.Contains(page.body, "••••1111") {
		t.Fatal("save not confirmed")
	}
	res = admin.post("/admin/page", url.Values{"baton_app_id": {"not-a-number"}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "must be a numeric id") {
		t.Fatalf("bad id: %d", res.status)
	}
}
