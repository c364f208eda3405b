package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion is what `baton version` prints: the commit and its time as
// the Go toolchain stamped them into the binary, so an operator can tell
// which code a running instance is without trusting a hand-kept number.
type buildVersion struct {
	Module   string // module version, "(devel)" for a build from a checkout
	Revision string // vcs.revision, "" when the build had no VCS information
	Time     string // vcs.time (RFC 3339), "" when unknown
	Modified bool   // vcs.modified: the working tree had uncommitted changes
	Go       string // toolchain that built the binary
}

// readVersion extracts the version from build info; ok is false when the
// binary carries none (possible only for exotic builds).
func readVersion(read func() (*debug.BuildInfo, bool)) (buildVersion, bool) {
	bi, ok := read()
	if !ok || bi == nil {
		return buildVersion{}, false
	}
	v := buildVersion{Module: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v, true
}

// String is one line: "baton <revision>[-dirty] (<time>) <go version>".
func (v buildVersion) String() string {
	rev := v.Revision
	if rev == "" {
		rev = "unknown"
		if v.Module != "" && v.Module != "(devel)" {
			rev = v.Module
		}
	}
	if v.Modified {
		rev += "-dirty"
	}
	t := v.Time
	if t == "" {
		t = "time unknown"
	}
	return fmt.Sprintf("baton %s (%s) %s", rev, t, v.Go)
}

// runVersion prints the build's version; it needs no configuration, so it
// works on a host where Baton is not set up yet.
func runVersion(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: baton version")
		return 2
	}
	v, ok := readVersion(debug.ReadBuildInfo)
	if !ok {
		fmt.Fprintln(stderr, "baton version: the binary carries no build information")
		return 1
	}
	fmt.Fprintln(stdout, v.String())
	return 0
}
