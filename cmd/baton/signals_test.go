package main

import (
	"io"
	"os"
	"syscall"
	"testing"
)

// TestSignals: the first signal cancels (graceful stop) without exiting,
// the second exits at once with 128+signal.
func TestSignals(t *testing.T) {
	tests := []struct {
		name       string
		send       []os.Signal
		close      bool
		wantCancel bool
		wantExit   int // -1: no exit
	}{
		{"one SIGTERM stops gracefully", []os.Signal{syscall.SIGTERM}, true, true, -1},
		{"second SIGTERM forces", []os.Signal{syscall.SIGTERM, syscall.SIGTERM}, false, true, 128 + 15},
		{"SIGINT then SIGTERM forces", []os.Signal{os.Interrupt, syscall.SIGTERM}, false, true, 128 + 15},
		{"two SIGINTs force", []os.Signal{os.Interrupt, os.Interrupt}, false, true, 128 + 2},
		{"no signal, channel closed", nil, true, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sigs := make(chan os.Signal, len(tt.send))
			for _, s := range tt.send {
				sigs <- s
			}
			if tt.close {
				close(sigs)
			}
			cancelled, exitCode := false, -1
			watchSignals(sigs, func() { cancelled = true }, io.Discard, func(c int) { exitCode = c })
			if cancelled != tt.wantCancel || exitCode != tt.wantExit {
				t.Fatalf("cancelled=%v exit=%d, want %v %d", cancelled, exitCode, tt.wantCancel, tt.wantExit)
			}
		})
	}
}
