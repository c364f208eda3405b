package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxGraphBody caps a Graph request body; real sends are far smaller.
const maxGraphBody = 1 << 20

// params are a Graph request's parameters from every place Meta reads them
// (§8.0): the query string, then a JSON, form-urlencoded or lax-JSON body,
// whose keys win.
type params struct {
	json      map[string]json.RawMessage // from a JSON body
	form      url.Values                 // from the query and a form body
	bodyToken string                     // access_token from the body
}

// parseParams reads r's query and body.
func parseParams(r *http.Request) (*params, error) {
	p := &params{json: map[string]json.RawMessage{}, form: url.Values{}}
	for k, v := range r.URL.Query() {
		p.form[k] = v
	}
	if r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxGraphBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxGraphBody {
		return nil, fmt.Errorf("body over %d bytes", maxGraphBody)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" || (ct != "application/x-www-form-urlencoded" && trimmed[0] == '{') {
		obj, err := decodeObject(trimmed)
		if err != nil {
			return nil, err
		}
		for k, v := range obj {
			p.json[k] = v
			delete(p.form, k)
		}
		if tok, ok := p.str("access_token"); ok {
			p.bodyToken = tok
		}
		return p, nil
	}
	vals, err := url.ParseQuery(string(trimmed))
	if err != nil {
		return nil, fmt.Errorf("parse form body: %w", err)
	}
	for k, v := range vals {
		p.form[k] = v
	}
	p.bodyToken = vals.Get("access_token")
	return p, nil
}

// decodeObject decodes a JSON object, falling back to Meta's lax example
// syntax (bare keys, single quotes).
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err == nil && obj != nil {
		return obj, nil
	}
	strict, err := laxToJSON(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse json body: %w", err)
	}
	if err := json.Unmarshal([]byte(strict), &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("parse json body: not a JSON object")
	}
	return obj, nil
}

// laxToJSON rewrites Meta's documentation-style JSON ({id:700800900},
// {'id':'7'}) into strict JSON: bare words other than true, false and null
// become strings, and single-quoted strings become double-quoted ones.
func laxToJSON(s string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return "", fmt.Errorf("unterminated string")
			}
			out.WriteString(s[i : j+1])
			i = j + 1
		case c == '\'':
			var sb strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '\''; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					if s[j] != '\'' {
						sb.WriteByte('\\')
					}
					sb.WriteByte(s[j])
					continue
				}
				if s[j] == '"' {
					sb.WriteByte('\\')
				}
				sb.WriteByte(s[j])
			}
			if j >= len(s) {
				return "", fmt.Errorf("unterminated string")
			}
			out.WriteByte('"')
			out.WriteString(sb.String())
			out.WriteByte('"')
			i = j + 1
		case isWordStart(c):
			j := i
			for j < len(s) && (isWordStart(s[j]) || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			w := s[i:j]
			if w == "true" || w == "false" || w == "null" {
				out.WriteString(w)
			} else {
				out.WriteString(`"` + w + `"`)
			}
			i = j
		default:
			out.WriteByte(c)
			i++
		}
	}
	return out.String(), nil
}

func isWordStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// str returns key as text: a JSON string unquoted, a number as written.
func (p *params) str(key string) (string, bool) {
	if raw, ok := p.json[key]; ok {
		raw = bytes.TrimSpace(raw)
		if string(raw) == "null" {
			return "", false
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s, true
		}
		return string(raw), true
	}
	if v, ok := p.form[key]; ok && len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// object decodes key, a JSON object or a form value holding (lax) JSON,
// into a generic map whose numbers keep their exact text.
func (p *params) object(key string) (map[string]any, bool, error) {
	var raw []byte
	if r, ok := p.json[key]; ok {
		raw = r
	} else if v, ok := p.form[key]; ok && len(v) > 0 {
		raw = []byte(v[0])
	} else {
		return nil, false, nil
	}
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil, false, nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, true, fmt.Errorf("%s must be an object", key)
	}
	m, err := decodeAny(raw)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", key, err)
	}
	obj, ok := m.(map[string]any)
	if !ok {
		return nil, true, fmt.Errorf("%s must be an object", key)
	}
	return obj, true, nil
}

// decodeAny decodes JSON (or lax JSON) keeping numbers as json.Number.
func decodeAny(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil {
		return v, nil
	}
	strict, err := laxToJSON(string(raw))
	if err != nil {
		return nil, err
	}
	dec = json.NewDecoder(strings.NewReader(strict))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid json: %w", err)
	}
	return v, nil
}

// idText returns an id given as a digit string or a JSON number, as exact
// decimal text (never through a float, §1). "123.0" is accepted as 123.
func idText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return "", false
	}
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '.'); i > 0 && strings.Trim(s[i+1:], "0") == "" {
		s = s[:i]
	}
	if !digitsRE.MatchString(s) {
		return "", false
	}
	return s, true
}

// stringField returns m[key] when it is a string.
func stringField(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}
