package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// CSRF protection is two independent checks on every state-changing
// request of a console route: the request comes from the console's own
// origin (Origin and Sec-Fetch-Site, which browsers set and pages cannot
// forge), and it carries the session's secret token (form field
// csrf_token or header X-CSRF-Token), which another site cannot read.

// csrfHeader is the header fetch calls send the token in; app.js reads the
// token from <meta name="csrf-token">.
const csrfHeader = "X-CSRF-Token"

// csrfField is the hidden form field carrying the token.
const csrfField = "csrf_token"

func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfToken returns the session's CSRF token, creating it on first use
// (the sign-in form needs one before anyone is signed in).
func (s *Server) csrfToken(r *http.Request) string {
	ctx := r.Context()
	t := s.sessions.GetString(ctx, sessCSRF)
	if t == "" {
		t = newToken()
		s.sessions.Put(ctx, sessCSRF, t)
	}
	return t
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// requireCSRF refuses a state-changing request from another origin or
// without the session's token, with 403 and a page that says what to do.
func (s *Server) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !unsafeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if !s.sameOrigin(r) {
			s.log.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			s.refuse(w, r, http.StatusForbidden, "csrf", "Request refused",
				"This request came from another site, so Baton did not act on it.")
			return
		}
		want := s.sessions.GetString(r.Context(), sessCSRF)
		got := r.Header.Get(csrfHeader)
		if got == "" {
			got = r.PostFormValue(csrfField)
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			s.log.WarnContext(r.Context(), "csrf token refused", "method", r.Method, "path", r.URL.Path, "present", got != "")
			s.refuse(w, r, http.StatusForbidden, "csrf", "Form expired",
				"This form is out of date or was not sent by Baton. Go back, reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin accepts a request whose Origin is the console's own host or
// an allowed origin. Without Origin, it trusts Sec-Fetch-Site when present;
// with neither (not a modern browser) the token alone decides.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return s.originAllowed(r, o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

// checkOrigin reports whether a websocket upgrade may proceed: browsers
// always send Origin on one, and a page on another site must not open a
// socket with the agent's cookie. A client without Origin is not a browser
// (no ambient cookie to abuse) and is let through to the session check.
func (s *Server) checkOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	return s.originAllowed(r, o)
}

func (s *Server) originAllowed(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes "null" (sandboxed frames, file:)
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(a, "/"), u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}
