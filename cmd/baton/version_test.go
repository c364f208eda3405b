package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionString(t *testing.T) {
	tests := []struct {
		name     string
		settings []debug.BuildSetting
		module   string
		want     string
	}{
		{"clean checkout", []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-24T06:00:00Z"}, {Key: "vcs.modified", Value: "false"},
		}, "(devel)", "baton 0123abcd (2026-11-24T06:00:00Z) go1.26"},
		{"dirty tree", []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-24T06:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}, "(devel)", "baton 0123abcd-dirty (2026-11-24T06:00:00Z) go1.26"},
		{"no vcs, devel", nil, "(devel)", "baton unknown (time unknown) go1.26"},
		{"no vcs, tagged module", nil, "v1.2.3", "baton v1.2.3 (time unknown) go1.26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func() (*debug.BuildInfo, bool) {
				return &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: tt.module}, Settings: tt.settings}, true
			}
			v, ok := readVersion(read)
			if !ok {
				t.Fatal("no version")
			}
			if got := v.String(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, ok := readVersion(func() (*debug.BuildInfo, bool) { return nil, false }); ok {
		t.Fatal("readVersion reported a version without build info")
	}
}

// TestVersionCommand runs the subcommand through run, as main does.
func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, Env{}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "baton ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("output %q lacks the name or %s", out.String(), runtime.Version())
	}
	if code := run(context.Background(), []string{"version", "extra"}, Env{}, &out, &errOut); code != 2 {
		t.Fatalf("extra argument: exit %d, want 2", code)
	}
}

// TestVersionOfBuiltBinary builds the static binary the Dockerfile builds
// and checks it reports the checkout's commit: the test binary itself has
// no VCS stamp, so only a real build proves ReadBuildInfo is read right.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "baton")
	// -buildvcs=true because GOFLAGS may turn the stamp off; the
	// Dockerfile's -trimpath is left out so the build cache is reused.
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("baton version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), strings.TrimSpace(string(rev))) {
		t.Fatalf("baton version said %q, want commit %s", out, rev)
	}
}
