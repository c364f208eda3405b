// Command baton is the live-agent console for Messenger's handover protocol,
// its local Messenger Platform emulator and the tools around them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go watchSignals(sigs, cancel, os.Stderr, os.Exit)
	code := run(ctx, os.Args[1:], envMap(os.Environ()), os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	os.Exit(code)
}

// watchSignals turns the first SIGINT/SIGTERM into a graceful stop (cancel:
// stop accepting, finish what is in flight) and a second one into an
// immediate exit, so an operator whose shutdown hangs on a stuck peer is
// never left with kill -9 as the only way out. The exit code is 128 plus
// the signal number, as shells report a process killed by it.
func watchSignals(sigs <-chan os.Signal, cancel func(), stderr io.Writer, exit func(int)) {
	if _, ok := <-sigs; !ok {
		return
	}
	fmt.Fprintln(stderr, "baton: stopping; send the signal again to force")
	cancel()
	s, ok := <-sigs
	if !ok {
		return
	}
	fmt.Fprintf(stderr, "baton: %v again: exiting without finishing\n", s)
	code := 1
	if n, isSys := s.(syscall.Signal); isSys {
		code = 128 + int(n)
	}
	exit(code)
}

// Env is the process environment as a map, so that tests can boot the
// program with a private environment.
type Env map[string]string

func envMap(kv []string) Env {
	env := Env{}
	for _, s := range kv {
		for i := 0; i < len(s); i++ {
			if s[i] == '=' {
				env[s[:i]] = s[i+1:]
				break
			}
		}
	}
	return env
}

// subcommand is one verb of the baton binary.
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int
}

func subcommands() []subcommand {
	return []subcommand{
		{"serve", "run the console and webhook receiver", runServe},
		{"demo", "run everything locally: PostgreSQL, emulator, demo bot and console", runDemo},
		{"emulator", "run the Messenger Platform emulator on its own", runEmulator},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"user", "manage console users (add, list, disable, set-password, set-role)", runUser},
		{"bench", "benchmarks against real instances (bench ingest | ws | soak)", runBench},
		{"version", "print the commit and Go version this binary was built from", runVersion},
		{"help", "list the subcommands", nil},
	}
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range subcommands() {
		if c.name == args[0] && c.run != nil {
			return c.run(ctx, args[1:], env, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "baton: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: baton <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Configuration comes from the environment; see README.md.")
}
