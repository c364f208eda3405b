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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], envMap(os.Environ()), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
		{"bench", "benchmarks against a real instance (bench ingest)", runBench},
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
