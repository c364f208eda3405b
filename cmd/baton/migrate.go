package main

import (
	"context"
	"fmt"
	"io"
)

// runMigrate applies pending migrations and exits.
func runMigrate(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	c, err := loadConfig(env, false)
	if err != nil {
		fmt.Fprintf(stderr, "baton migrate: configuration:\n%v\n", err)
		return 2
	}
	db, closeDB, err := openDatabase(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "baton migrate: %v\n", err)
		return 1
	}
	defer closeDB()
	applied, err := db.Migrate(ctx)
	for _, name := range applied {
		fmt.Fprintf(stdout, "applied %s\n", name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton migrate: %v\n", err)
		return 1
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "schema is up to date")
	}
	return 0
}
