package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/baton-chat/baton/internal/account"
	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/postgres"
	"github.com/baton-chat/baton/web"
)

const userUsage = `Usage:
  baton user add EMAIL [--name NAME] [--role agent|supervisor|admin]
  baton user list
  baton user disable EMAIL
  baton user enable EMAIL
  baton user set-password EMAIL
  baton user set-role EMAIL ROLE

Passwords are read from BATON_USER_PASSWORD, or else from the first line
of standard input, never from the command line (it shows in ps).
Disabling a user and setting a password end the user's sessions.
`

// runUser manages console users from the command line, through the same
// account rules as the admin page.
func runUser(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, userUsage)
		return 0
	}
	verb := args[0]
	pos, flags, err := splitArgs(args[1:], "name", "role")
	if err != nil {
		fmt.Fprintf(stderr, "baton user: %v\n\n%s", err, userUsage)
		return 2
	}
	want := map[string]int{"add": 1, "list": 0, "disable": 1, "enable": 1, "set-password": 1, "set-role": 2}
	n, ok := want[verb]
	if !ok || len(pos) != n {
		fmt.Fprintf(stderr, "baton user: unknown command or wrong arguments\n\n%s", userUsage)
		return 2
	}
	c, err := loadConfig(env, false)
	if err != nil {
		fmt.Fprintf(stderr, "baton user: configuration:\n%v\n", err)
		return 2
	}
	db, closeDB, err := openDatabase(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "baton user: %v\n", err)
		return 1
	}
	defer closeDB()
	if err := prepareSchema(ctx, db, c.Migrate); err != nil {
		fmt.Fprintf(stderr, "baton user: %v\n", err)
		return 1
	}
	hasher, err := account.NewHasher(c.PasswordCost)
	if err != nil {
		fmt.Fprintf(stderr, "baton user: %v\n", err)
		return 1
	}
	svc := account.New(account.Config{Users: db, Audit: db, Hasher: hasher})
	if err := userCommand(ctx, svc, db, verb, pos, flags, env, stdout); err != nil {
		fmt.Fprintf(stderr, "baton user %s: %s\n", verb, userMessage(err))
		if baton.ErrorCode(err) == baton.EINTERNAL {
			return 1
		}
		return 2
	}
	return 0
}

// userMessage is what a person at the terminal sees: the domain message,
// or the error itself for an internal failure (an operator's terminal may
// show details a web page must not).
func userMessage(err error) string {
	if baton.ErrorCode(err) == baton.EINTERNAL {
		return err.Error()
	}
	return baton.ErrorMessage(err)
}

func userCommand(ctx context.Context, svc *account.Service, db *postgres.DB, verb string, pos []string, flags map[string]string, env Env, stdout io.Writer) error {
	if verb == "list" {
		us, err := db.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATUS\tLAST SIGN-IN")
		for _, u := range us {
			status, last := "active", "never"
			if u.Disabled {
				status = "disabled"
			}
			if u.LastLoginAt != nil {
				last = u.LastLoginAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Role, status, last)
		}
		return tw.Flush()
	}
	if verb == "add" {
		role := baton.RoleAgent
		if r, ok := flags["role"]; ok {
			var err error
			if role, err = baton.ParseRole(r); err != nil {
				return err
			}
		}
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		u, err := svc.CreateUser(ctx, nil, account.NewUser{Email: pos[0], Name: flags["name"], Role: role, Password: pw})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (%s), id %d\n", u.Email, u.Role, u.ID)
		return nil
	}
	u, err := db.UserByEmail(ctx, pos[0])
	if err != nil {
		return err
	}
	switch verb {
	case "disable", "enable":
		if _, err := svc.SetDisabled(ctx, nil, u.ID, verb == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%sd %s\n", verb, u.Email)
	case "set-password":
		pw, err := readPassword(env)
		if err != nil {
			return err
		}
		if _, err := svc.SetPassword(ctx, nil, u.ID, pw); err != nil {
			return err
		}
		n, err := svc.EndSessions(ctx, nil, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "set the password of %s and ended %d sessions\n", u.Email, n)
	case "set-role":
		role, err := baton.ParseRole(pos[1])
		if err != nil {
			return err
		}
		if _, err := svc.SetRole(ctx, nil, u.ID, role); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s is now %s\n", u.Email, role)
	}
	return nil
}

// readPassword takes the password from BATON_USER_PASSWORD or the first
// line of standard input.
func readPassword(env Env) (string, error) {
	if pw, ok := env["BATON_USER_PASSWORD"]; ok {
		return pw, nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", baton.Errorf(baton.EINVALID, "No password: set BATON_USER_PASSWORD or pipe it on standard input.")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// splitArgs separates positional arguments from --name value and
// --name=value flags, in any order.
func splitArgs(args []string, known ...string) (pos []string, flags map[string]string, err error) {
	flags = map[string]string{}
	isKnown := func(n string) bool {
		for _, k := range known {
			if k == n {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !isKnown(name) {
			return nil, nil, fmt.Errorf("unknown flag %s", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	return pos, flags, nil
}

// accounts is the account wiring of a running instance.
type accounts struct {
	service  *account.Service
	sessions *postgres.SessionStore
	settings *postgres.Settings
	origins  []string
}

// setUpAccounts seeds the Page settings from the environment, creates the
// bootstrap admin, builds the account services, and prunes old sessions
// and sign-in attempts hourly until ctx ends.
func setUpAccounts(ctx context.Context, c Config, db *postgres.DB, log *slog.Logger) (*accounts, error) {
	if err := db.SeedPageSettings(ctx, baton.PageSettings{
		PageID: c.PageID, PageToken: c.PageToken, AppSecret: c.AppSecret, VerifyToken: c.VerifyToken,
		BatonAppID: c.AppID, PrimaryAppID: c.PrimaryAppID, HumanAgent: c.HumanAgent,
	}); err != nil {
		return nil, err
	}
	settings := db.Settings(c.PageID)
	if _, err := settings.PageSettings(ctx); err != nil {
		return nil, fmt.Errorf("load page settings: %w", err)
	}
	hasher, err := account.NewHasher(c.PasswordCost)
	if err != nil {
		return nil, err
	}
	if hasher.Cost() < account.DefaultCost {
		log.Warn("BATON_PASSWORD_COST is below 12: passwords are hashed insecurely; use this only in tests", "cost", hasher.Cost())
	}
	// Made in the background: start-up stays quick, and by the time anyone
	// signs in, unknown emails cost what known ones do.
	go hasher.Warm()
	svc := account.New(account.Config{Users: db, Audit: db, Hasher: hasher, Logger: log.With("component", "account")})
	if c.AdminEmail != "" {
		created, err := svc.EnsureAdmin(ctx, c.AdminEmail, c.AdminPassword)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created the bootstrap admin", "email", strings.ToLower(c.AdminEmail))
		}
	}
	a := &accounts{service: svc, sessions: db.SessionStore(web.SessionOwner), settings: settings, origins: c.AllowedOrigins}
	if u, err := url.Parse(c.PublicURL); err == nil && u.Host != "" {
		a.origins = append(a.origins, u.Scheme+"://"+u.Host)
	}
	prune := func() {
		if err := db.PruneAccounts(ctx, 90*24*time.Hour); err != nil && ctx.Err() == nil {
			log.Warn("prune sessions and sign-in attempts", "err", err)
		}
	}
	prune()
	go func() {
		// Hourly: expired sessions cost a row each, nothing more.
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				prune()
			}
		}
	}()
	return a, nil
}
