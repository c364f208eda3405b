package main

import (
	"context"
	"fmt"
	"io"
)

func notYet(name string) func(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	return func(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
		fmt.Fprintf(stderr, "baton %s: not built yet\n", name)
		return 1
	}
}

var (
	runDemo     = notYet("demo")
	runEmulator = notYet("emulator")
	runUser     = notYet("user")
	runBench    = notYet("bench")
)
