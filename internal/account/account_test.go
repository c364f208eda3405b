package account

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"golang.org/x/crypto/bcrypt"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"one short", strings.Repeat("a", MinPasswordLength-1), false},
		{"minimum", strings.Repeat("a", MinPasswordLength), true},
		{"counts characters not bytes", strings.Repeat("é", MinPasswordLength), true},
		{"long passphrase beyond bcrypt's 72 bytes", strings.Repeat("correct horse ", 20), true},
		{"maximum", strings.Repeat("a", MaxPasswordLength), true},
		{"over maximum", strings.Repeat("a", MaxPasswordLength+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword(tt.pw)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckPassword = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && baton.ErrorCode(err) != baton.EINVALID {
				t.Fatalf("code %q, want invalid", baton.ErrorCode(err))
			}
		})
	}
}

func TestDefaultHasherCostAtLeast12(t *testing.T) {
	h, err := NewHasher(0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Cost() < 12 || DefaultCost < 12 {
		t.Fatalf("default bcrypt cost %d, want at least 12", h.Cost())
	}
	// Hashes carry the hasher's cost (checked at a low cost: a cost-12
	// hash takes seconds under the race detector).
	low := testHasher(t)
	hash, err := low.Hash("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != low.Cost() {
		t.Fatalf("hash cost %d (%v), want %d", cost, err, low.Cost())
	}
	if strings.Contains(hash, "a long enough password") {
		t.Fatal("hash contains the password")
	}
	if _, err := NewHasher(3); err == nil {
		t.Fatal("NewHasher(3) accepted a cost below bcrypt's minimum")
	}
}

func TestHashVerify(t *testing.T) {
	h := testHasher(t)
	long1 := strings.Repeat("x", 80) + "one"
	long2 := strings.Repeat("x", 80) + "two"
	hash, err := h.Hash(long1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"right password", hash, long1, true},
		{"same first 72 bytes", hash, long2, false},
		{"empty password", hash, "", false},
		{"empty hash", "", long1, false},
		{"corrupt hash", "$2a$04$notahash", long1, false},
	}
	for _, tt := range tests {
		if got := h.Verify(tt.hash, tt.pw); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := h.Hash("short"); baton.ErrorCode(err) != baton.EINVALID {
		t.Errorf("Hash(short) = %v, want invalid", err)
	}
}

func TestLimitsBlocked(t *testing.T) {
	l := Limits{PerEmail: 10, PerIP: 30, Window: 15 * time.Minute}
	tests := []struct {
		byEmail, byIP int
		want          bool
	}{
		{0, 0, false},
		{9, 29, false},
		{10, 0, true},
		{0, 30, true},
		{11, 31, true},
	}
	for _, tt := range tests {
		if got := l.Blocked(tt.byEmail, tt.byIP); got != tt.want {
			t.Errorf("Blocked(%d, %d) = %v, want %v", tt.byEmail, tt.byIP, got, tt.want)
		}
	}
	if (Limits{}).Blocked(100, 100) {
		t.Error("zero limits block")
	}
}

// fakeUsers is an in-memory baton.UserService.
type fakeUsers struct {
	mu       sync.Mutex
	users    map[int64]*baton.User
	attempts []baton.LoginAttempt
	sessions map[int64]int
	nextID   int64
}

func newFakeUsers() *fakeUsers {
	return &fakeUsers{users: map[int64]*baton.User{}, sessions: map[int64]int{}}
}

func (f *fakeUsers) CreateUser(ctx context.Context, u *baton.User) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.users {
		if o.Email == u.Email {
			return baton.Errorf(baton.ECONFLICT, "taken")
		}
	}
	f.nextID++
	u.ID = f.nextID
	c := *u
	f.users[u.ID] = &c
	return nil
}

func (f *fakeUsers) UserByID(ctx context.Context, id int64) (*baton.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[id]; ok {
		c := *u
		return &c, nil
	}
	return nil, baton.Errorf(baton.ENOTFOUND, "User not found.")
}

func (f *fakeUsers) UserByEmail(ctx context.Context, email string) (*baton.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.Email == strings.ToLower(email) {
			c := *u
			return &c, nil
		}
	}
	return nil, baton.Errorf(baton.ENOTFOUND, "User not found.")
}

func (f *fakeUsers) Users(ctx context.Context) ([]*baton.User, error) { return nil, nil }

func (f *fakeUsers) UpdateUser(ctx context.Context, id int64, upd baton.UserUpdate) (*baton.User, error) {
	f.mu.Lock()
	u, ok := f.users[id]
	if !ok {
		f.mu.Unlock()
		return nil, baton.Errorf(baton.ENOTFOUND, "User not found.")
	}
	if upd.Role != nil {
		u.Role = *upd.Role
	}
	if upd.Disabled != nil {
		u.Disabled = *upd.Disabled
		if u.Disabled {
			f.sessions[id] = 0
		}
	}
	if upd.PasswordHash != nil {
		u.PasswordHash = *upd.PasswordHash
	}
	f.mu.Unlock()
	return f.UserByID(ctx, id)
}

func (f *fakeUsers) CountActiveAdmins(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, u := range f.users {
		if u.Role == baton.RoleAdmin && !u.Disabled {
			n++
		}
	}
	return n, nil
}

func (f *fakeUsers) RecordLoginAttempt(ctx context.Context, a baton.LoginAttempt) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, a)
	return nil
}

func (f *fakeUsers) LoginFailures(ctx context.Context, email, ip string, since time.Time) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e, i int
	for _, a := range f.attempts {
		if a.Success || a.Reason == "rate_limited" || a.At.Before(since) {
			continue
		}
		if a.Email == email {
			e++
		}
		if a.IP == ip {
			i++
		}
	}
	return e, i, nil
}

func (f *fakeUsers) DeleteUserSessions(ctx context.Context, id int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.sessions[id]
	f.sessions[id] = 0
	return n, nil
}

func testHasher(t *testing.T) *Hasher {
	t.Helper()
	h, err := NewHasher(bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *fakeUsers, *clock) {
	t.Helper()
	users := newFakeUsers()
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	s := New(Config{Users: users, Hasher: testHasher(t), Now: c.now})
	return s, users, c
}

const pw = "correct horse battery"

func TestLogin(t *testing.T) {
	s, users, _ := newService(t)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, nil, NewUser{Email: " Ann@Example.com ", Name: "Ann", Role: baton.RoleAgent, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ann@example.com" {
		t.Fatalf("email stored as %q", u.Email)
	}
	off, err := s.CreateUser(ctx, nil, NewUser{Email: "off@example.com", Role: baton.RoleAgent, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, nil, off.ID, true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, email, pw, reason string
		ok                      bool
	}{
		{"right password", "ann@example.com", pw, "", true},
		{"email in another case", "ANN@example.com", pw, "", true},
		{"wrong password", "ann@example.com", pw + "x", "bad_password", false},
		{"unknown email", "nobody@example.com", pw, "unknown_email", false},
		{"disabled user with the right password", "off@example.com", pw, "disabled", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(users.attempts)
			got, err := s.Login(ctx, tt.email, tt.pw, "192.0.2.1")
			if tt.ok {
				if err != nil || got == nil || got.ID != u.ID {
					t.Fatalf("Login = %v, %v; want user %d", got, err, u.ID)
				}
			} else if err != ErrBadCredentials {
				// One message for every failure: no user enumeration.
				t.Fatalf("Login error = %v, want ErrBadCredentials", err)
			}
			if len(users.attempts) != before+1 {
				t.Fatalf("attempts recorded: %d, want 1", len(users.attempts)-before)
			}
			a := users.attempts[len(users.attempts)-1]
			if a.Success != tt.ok || a.Reason != tt.reason || a.IP != "192.0.2.1" {
				t.Fatalf("attempt = %+v", a)
			}
		})
	}
}

func TestLoginRateLimit(t *testing.T) {
	s, users, c := newService(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, nil, NewUser{Email: "ann@example.com", Role: baton.RoleAgent, Password: pw}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < DefaultLimits.PerEmail; i++ {
		if _, err := s.Login(ctx, "ann@example.com", "wrong password!", "192.0.2.1"); err != ErrBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
		c.t = c.t.Add(time.Second)
	}
	// The limit is reached: even the right password is refused, and the
	// refusal does not say whether it was right.
	if _, err := s.Login(ctx, "ann@example.com", pw, "192.0.2.1"); err != ErrRateLimited {
		t.Fatalf("after %d failures: %v, want ErrRateLimited", DefaultLimits.PerEmail, err)
	}
	if baton.ErrorCode(ErrRateLimited) != baton.ERATELIMITED {
		t.Fatal("rate limit error has the wrong code")
	}
	// Another address is not blocked for another account.
	if _, err := s.Login(ctx, "bob@example.com", "whatever123", "192.0.2.2"); err != ErrBadCredentials {
		t.Fatalf("other account: %v", err)
	}
	// Refused attempts are recorded but do not extend the lock-out.
	last := users.attempts[len(users.attempts)-2]
	if last.Reason != "rate_limited" {
		t.Fatalf("refused attempt recorded as %+v", last)
	}
	c.t = c.t.Add(DefaultLimits.Window)
	if _, err := s.Login(ctx, "ann@example.com", pw, "192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestLoginRateLimitPerIP(t *testing.T) {
	s, _, _ := newService(t)
	s.cfg.Limits = Limits{PerEmail: 100, PerIP: 5, Window: time.Minute}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		s.Login(ctx, "user"+string(rune('a'+i))+"@example.com", "wrong password", "198.51.100.7")
	}
	if _, err := s.Login(ctx, "new@example.com", "wrong password", "198.51.100.7"); err != ErrRateLimited {
		t.Fatalf("spraying from one address: %v, want ErrRateLimited", err)
	}
}

func TestCreateUserRules(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name string
		n    NewUser
		code string
	}{
		{"ok", NewUser{Email: "a@example.com", Role: baton.RoleAgent, Password: pw}, ""},
		{"duplicate", NewUser{Email: "A@example.com", Role: baton.RoleAdmin, Password: pw}, baton.ECONFLICT},
		{"bad email", NewUser{Email: "not an email", Role: baton.RoleAgent, Password: pw}, baton.EINVALID},
		{"display name in email", NewUser{Email: "Ann <ann@example.com>", Role: baton.RoleAgent, Password: pw}, baton.EINVALID},
		{"bad role", NewUser{Email: "b@example.com", Role: "root", Password: pw}, baton.EINVALID},
		{"short password", NewUser{Email: "c@example.com", Role: baton.RoleAgent, Password: "short"}, baton.EINVALID},
	}
	for _, tt := range tests {
		_, err := s.CreateUser(ctx, nil, tt.n)
		if got := baton.ErrorCode(err); got != tt.code {
			t.Errorf("%s: code %q (%v), want %q", tt.name, got, err, tt.code)
		}
	}
}

func TestLastAdminIsKept(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	a, _ := s.CreateUser(ctx, nil, NewUser{Email: "a@example.com", Role: baton.RoleAdmin, Password: pw})
	if _, err := s.SetDisabled(ctx, nil, a.ID, true); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("disable last admin: %v", err)
	}
	if _, err := s.SetRole(ctx, nil, a.ID, baton.RoleAgent); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("demote last admin: %v", err)
	}
	b, _ := s.CreateUser(ctx, nil, NewUser{Email: "b@example.com", Role: baton.RoleAdmin, Password: pw})
	if _, err := s.SetRole(ctx, nil, a.ID, baton.RoleSupervisor); err != nil {
		t.Fatalf("demote with another admin: %v", err)
	}
	if _, err := s.SetDisabled(ctx, nil, b.ID, true); baton.ErrorCode(err) != baton.ECONFLICT {
		t.Fatalf("disable the new last admin: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	s, _, _ := newService(t)
	ctx := context.Background()
	created, err := s.EnsureAdmin(ctx, "Boss@example.com", pw)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	created, err = s.EnsureAdmin(ctx, "boss@example.com", "another password")
	if err != nil || created {
		t.Fatalf("second: %v %v", created, err)
	}
	if _, err := s.Login(ctx, "boss@example.com", pw, "192.0.2.1"); err != nil {
		t.Fatalf("the first password must still work: %v", err)
	}
}
