// Package static embeds the console's stylesheets, scripts and icons and
// serves them under content-hashed URLs, so browsers may cache each file
// forever and a new build is picked up at once.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// files is the embedded directory (everything but the Go sources, which
// are skipped when the table is built). Embedding needs a package
// variable; it is read-only. "*" rather than "*.js" so that the package
// builds whether or not the console's script exists yet.
//
//go:embed *
var files embed.FS

// asset is one file with its hashed name.
type asset struct {
	name, hashed string
	body         []byte
}

// table maps both names to assets; built once, on first use.
type table struct {
	byName   map[string]*asset
	byHashed map[string]*asset
}

var load = sync.OnceValue(func() *table {
	t := &table{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		ext := path.Ext(e.Name())
		a := &asset{name: e.Name(), hashed: strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:])[:12] + ext, body: b}
		t.byName[a.name] = a
		t.byHashed[a.hashed] = a
	}
	return t
})

// Path returns the URL of an embedded file under its content hash, such as
// "/static/base.3f2a9c1b0d4e.css", or "" when there is no such file, so a
// template can leave out a tag for a file not built yet.
func Path(name string) string {
	if a := load().byName[name]; a != nil {
		return "/static/" + a.hashed
	}
	return ""
}

// Handler serves the hashed URLs under /static/ with year-long immutable
// caching. Unhashed or unknown names are 404: a stale page asking for an
// old hash must not get new content under the old name's cache lifetime.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := load().byHashed[strings.TrimPrefix(r.URL.Path, "/static/")]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(path.Ext(a.name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			return
		}
		w.Write(a.body)
	})
}
