package messenger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
)

// FuzzParse feeds Parse arbitrary bodies, seeded with every fixture. Parse
// must not panic; what it returns must be internally consistent: each
// event points at an entry and array element that exist and hold its raw
// bytes, and each dedupe key fits a btree index (≤ 200 bytes, or "h:" and
// a SHA-256).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed fixtures: %v", err)
	}
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"object":"page","entry":[{"id":"1","messaging":[null,1,"x",[],{}],"standby":[{"app_roles":{}}]}]}`))
	f.Add([]byte(`{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":1e2},"postback":{"payload":"` + strings.Repeat("p", 300) + `"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			if d != nil {
				t.Fatalf("Parse returned a delivery with error %v", err)
			}
			return
		}
		if CheckStorable(body) != nil {
			t.Fatal("Parse accepted a body CheckStorable refuses")
		}
		for i := range d.Events {
			ev := &d.Events[i]
			if ev.Entry < 0 || ev.Entry >= len(d.PageIDs) {
				t.Fatalf("event %d: entry %d of %d", i, ev.Entry, len(d.PageIDs))
			}
			if ev.PageID != d.PageIDs[ev.Entry] {
				t.Fatalf("event %d: page %q, its entry's is %q", i, ev.PageID, d.PageIDs[ev.Entry])
			}
			checkRawLocates(t, body, ev)
			k := ev.DedupeKey
			switch {
			case k == "":
				t.Fatalf("event %d: empty dedupe key", i)
			case len(k) > 200:
				t.Fatalf("event %d: dedupe key of %d bytes", i, len(k))
			case strings.HasPrefix(k, "h:") && len(k) != 2+64:
				t.Fatalf("event %d: hashed key %q", i, k)
			}
			checkKindShape(t, ev)
		}
		again, err := Parse(body)
		if err != nil || len(again.Events) != len(d.Events) {
			t.Fatalf("second Parse differs: %v", err)
		}
		for i := range d.Events {
			if again.Events[i].DedupeKey != d.Events[i].DedupeKey {
				t.Fatalf("event %d: dedupe key not deterministic: %q, %q", i, d.Events[i].DedupeKey, again.Events[i].DedupeKey)
			}
		}
	})
}

// checkKindShape asserts the part every consumer dereferences for a kind is
// present, so that the ingest rules cannot hit a nil pointer.
func checkKindShape(t *testing.T, ev *baton.Event) {
	t.Helper()
	var ok bool
	switch ev.Kind {
	case baton.KindMessage, baton.KindEcho:
		ok = ev.Message != nil && ev.Message.IsEcho == (ev.Kind == baton.KindEcho)
	case baton.KindPostback:
		ok = ev.Postback != nil
	case baton.KindRead, baton.KindDelivery:
		ok = ev.Receipt != nil
	case baton.KindReaction:
		ok = ev.Reaction != nil
	case baton.KindPass, baton.KindTake, baton.KindRequest:
		ok = ev.Handover != nil
	case baton.KindAppRoles:
		ok = ev.AppRoles != nil && ev.PSID == ""
	case baton.KindReferral, baton.KindOptin, baton.KindUnknown:
		ok = true
	}
	if !ok {
		t.Fatalf("event of kind %q lacks its part: %+v", ev.Kind, ev)
	}
}
