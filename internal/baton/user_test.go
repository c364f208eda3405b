package baton

import "testing"

func TestRoleAtLeast(t *testing.T) {
	tests := []struct {
		r, min Role
		want   bool
	}{
		{RoleAgent, RoleAgent, true},
		{RoleAgent, RoleSupervisor, false},
		{RoleAgent, RoleAdmin, false},
		{RoleSupervisor, RoleAgent, true},
		{RoleSupervisor, RoleSupervisor, true},
		{RoleSupervisor, RoleAdmin, false},
		{RoleAdmin, RoleAgent, true},
		{RoleAdmin, RoleSupervisor, true},
		{RoleAdmin, RoleAdmin, true},
		{"", "", true},                   // public route, signed out
		{RoleAgent, "", true},            // public route
		{"", RoleAgent, false},           // signed out
		{"root", RoleAgent, false},       // unknown role grants nothing
		{RoleAdmin, "owner", false},      // unknown minimum admits nobody
		{"Admin", RoleSupervisor, false}, // roles are exact
	}
	for _, tt := range tests {
		if got := tt.r.AtLeast(tt.min); got != tt.want {
			t.Errorf("Role(%q).AtLeast(%q) = %v, want %v", tt.r, tt.min, got, tt.want)
		}
	}
}

func TestParseRole(t *testing.T) {
	tests := []struct {
		in      string
		want    Role
		wantErr bool
	}{
		{"agent", RoleAgent, false},
		{" Supervisor ", RoleSupervisor, false},
		{"ADMIN", RoleAdmin, false},
		{"", "", true},
		{"superuser", "", true},
	}
	for _, tt := range tests {
		got, err := ParseRole(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRole(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("ParseRole(%q) error code = %q, want invalid", tt.in, ErrorCode(err))
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "••••"},
		{"abcd", "••••"},
		{"EAAGm0PX4ZCpsBA1234", "••••1234"},
		{"sécret-ünï", "••••-ünï"}, // runes, not bytes
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
