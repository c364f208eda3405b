package emulator

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// People, what they saw, thread owners and the clock survive a restart
// with a state file.
func TestStateFileSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emulator.json")
	e, err := New(Config{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.offset = 3 * time.Hour
	e.users["700800900"] = &user{PSID: "700800900", FirstName: "Peter", LastName: "Chang",
		log: []*chatItem{{Mid: "m_1", FromUser: true, Text: "hi ä 😀", Timestamp: time.UnixMilli(1700000000000)}}}
	e.userList = append(e.userList, "700800900")
	e.threads["700800900"] = &thread{Owner: "1500000001", LastUserAt: time.UnixMilli(1700000000000)}
	e.mu.Unlock()
	e.Close()

	r, err := New(Config{StateFile: path})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	u := r.users["700800900"]
	if u == nil || u.FirstName != "Peter" || len(u.log) != 1 || u.log[0].Text != "hi ä 😀" || !u.log[0].FromUser {
		t.Fatalf("user after restart: %+v", u)
	}
	if th := r.threads["700800900"]; th == nil || th.Owner != "1500000001" {
		t.Fatalf("thread after restart: %+v", th)
	}
	if r.offset != 3*time.Hour || len(r.userList) != 1 {
		t.Fatalf("offset %v, users %v", r.offset, r.userList)
	}
}

// A file that is not a snapshot is refused clearly rather than ignored.
func TestStateFileGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emulator.json")
	if err := writeFile(path, "not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{StateFile: path}); err == nil {
		t.Fatal("garbage state accepted")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
