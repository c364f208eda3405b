package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// snapshot is what Config.StateFile keeps: the people, what each sees,
// the threads and the clock's offset. Apps are not kept: they register
// anew on start (their webhooks must be verified again anyway).
type snapshot struct {
	Version int                `json:"version"`
	Offset  time.Duration      `json:"offset"`
	Users   []snapshotUser     `json:"users"`
	Threads map[string]*thread `json:"threads"`
}

type snapshotUser struct {
	PSID       string      `json:"psid"`
	FirstName  string      `json:"first_name"`
	LastName   string      `json:"last_name"`
	ProfilePic string      `json:"profile_pic"`
	NoProfile  bool        `json:"no_profile"`
	Log        []*chatItem `json:"log"`
}

// saveState writes the snapshot atomically (temp file, then rename).
func (e *Emulator) saveState(path string) error {
	e.mu.Lock()
	snap := snapshot{Version: 1, Offset: e.offset, Threads: e.threads}
	for _, psid := range e.userList {
		u := e.users[psid]
		snap.Users = append(snap.Users, snapshotUser{PSID: u.PSID, FirstName: u.FirstName, LastName: u.LastName,
			ProfilePic: u.ProfilePic, NoProfile: u.NoProfile, Log: u.log})
	}
	b, err := json.Marshal(snap)
	e.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, path)
}

// loadState restores a snapshot; a missing file is a first run.
func (e *Emulator) loadState(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("state file %s is not a snapshot (%v): move it away to start afresh", path, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offset = snap.Offset
	for _, su := range snap.Users {
		if su.PSID == "" || e.users[su.PSID] != nil {
			continue
		}
		e.users[su.PSID] = &user{PSID: su.PSID, FirstName: su.FirstName, LastName: su.LastName,
			ProfilePic: su.ProfilePic, NoProfile: su.NoProfile, log: su.Log}
		e.userList = append(e.userList, su.PSID)
	}
	for psid, t := range snap.Threads {
		if t != nil && e.users[psid] != nil {
			e.threads[psid] = t
		}
	}
	return nil
}
