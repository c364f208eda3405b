package emulator

import (
	"embed"
	"fmt"
	"hash/fnv"
	"html"
	"net/http"
	"strings"
)

// webFS holds the person's chat page: HTML, CSS and a little vanilla JS,
// embedded so that the emulator is one binary with no CDN.
//
//go:embed web/index.html web/chat.css web/chat.js
var webFS embed.FS

// routeChat registers "/" (the chat page), its assets and the avatars.
func (e *Emulator) routeChat(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", serveAsset("web/index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /_chat/chat.css", serveAsset("web/chat.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /_chat/chat.js", serveAsset("web/chat.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /pic/{file}", e.serveAvatar)
}

// serveAsset serves one embedded file with a strict content security policy:
// the page needs no inline script and no foreign origin.
func serveAsset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := webFS.ReadFile(name)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src * data:; style-src 'self'")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}

// avatarColors are the background colours avatars pick from by PSID.
var avatarColors = []string{"#1877f2", "#e4405f", "#42b72a", "#f7b928", "#8a3ab9", "#00a3a3", "#f5533d"}

// serveAvatar is GET /pic/<psid>.svg: a simple initials avatar, the
// profile_pic the User Profile API points to.
func (e *Emulator) serveAvatar(w http.ResponseWriter, r *http.Request) {
	psid, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		psid, _ = strings.CutSuffix(r.PathValue("file"), ".jpg")
	}
	e.mu.Lock()
	u, found := e.users[psid]
	initials := "?"
	if found {
		initials = initialsOf(u.FirstName, u.LastName)
	}
	e.mu.Unlock()
	if !found {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(psid))
	color := avatarColors[int(h.Sum32())%len(avatarColors)]
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=3600")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">`+
		`<circle cx="64" cy="64" r="64" fill="%s"/>`+
		`<text x="64" y="80" font-family="sans-serif" font-size="48" fill="#fff" text-anchor="middle">%s</text></svg>`,
		color, html.EscapeString(initials))
}

// initialsOf returns up to two initials.
func initialsOf(first, last string) string {
	var b strings.Builder
	for _, s := range []string{first, last} {
		for _, r := range s {
			b.WriteRune(r)
			break
		}
	}
	if b.Len() == 0 {
		return "?"
	}
	return strings.ToUpper(b.String())
}
