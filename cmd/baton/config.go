package main

import (
	"errors"
	"fmt"
	"github.com/baton-chat/baton/web"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting Baton reads from the environment, validated at
// start and passed down; nothing reads the environment after this.
type Config struct {
	DatabaseURL string // empty: run the private PostgreSQL under Data
	Data        string // BATON_DATA
	Addr        string // BATON_ADDR
	PublicURL   string // BATON_PUBLIC_URL: the console's URL as browsers see it
	// AllowedOrigins are the origins allowed to open websockets and post
	// forms, besides the console's own (BATON_ALLOWED_ORIGINS, comma-separated).
	AllowedOrigins []string
	GraphAPIURL    string
	AppID          string
	AppSecret      string
	VerifyToken    string
	PageID         string
	PageToken      string
	PrimaryAppID   string
	AdminEmail     string
	AdminPassword  string
	// HumanAgent: the app has Messenger's Human Agent permission, so the
	// HUMAN_AGENT tag may be used up to 7 days.
	HumanAgent bool
	// Migrate: apply migrations on start; when off, refuse a stale schema.
	Migrate    bool
	AcceptSHA1 bool
	// SecureCookies: mark session cookies Secure (serve over HTTPS).
	SecureCookies bool
	SessionIdle   time.Duration
	SessionMax    time.Duration
	// PasswordCost is the bcrypt cost (BATON_PASSWORD_COST, default 12).
	// Below 12 is insecure and only for test suites, where a cost-12 hash
	// takes seconds under the race detector; Baton warns when it is set.
	PasswordCost int
	IdleReturn   time.Duration // hand idle conversations back to the bot; 0 = never
	// AgentsMayRequest lets agents, not only supervisors, request control.
	AgentsMayRequest bool
	// RequestTimeout: a request for control unanswered this long is shown
	// as ignored.
	RequestTimeout time.Duration
	// AgentCap is the default per-agent cap of auto-assign
	// (BATON_AGENT_CAP, default 5); users may have their own.
	AgentCap int
	// UnassignOnDone clears the assignee at Done (BATON_UNASSIGN_ON_DONE,
	// default true).
	UnassignOnDone bool
	LogLevel       slog.Level
	LogFormat      string // json | text
	// Now is the clock of the window and retry rules; tests move it with
	// the emulator's clock. Never set from the environment.
	Now func() time.Time
}

// clock returns c.Now, or the real clock.
func (c Config) clock() func() time.Time {
	if c.Now != nil {
		return c.Now
	}
	return time.Now
}

// DefaultGraphAPIURL is Facebook's Graph API with the version PROTOCOL.md
// §8.0 names.
const DefaultGraphAPIURL = "https://graph.facebook.com/v25.0"

// loadConfig reads and validates the environment. needMessenger: the
// subcommand talks to Messenger (serve), so its settings are required.
func loadConfig(env Env, needMessenger bool) (Config, error) {
	c := Config{
		DatabaseURL:   env["DATABASE_URL"],
		Data:          or(env["BATON_DATA"], ".baton"),
		Addr:          or(env["BATON_ADDR"], ":8080"),
		PublicURL:     strings.TrimRight(env["BATON_PUBLIC_URL"], "/"),
		GraphAPIURL:   strings.TrimRight(or(env["GRAPH_API_URL"], DefaultGraphAPIURL), "/"),
		AppID:         strings.TrimSpace(env["MESSENGER_APP_ID"]),
		AppSecret:     env["MESSENGER_APP_SECRET"],
		VerifyToken:   env["MESSENGER_VERIFY_TOKEN"],
		PageID:        strings.TrimSpace(env["MESSENGER_PAGE_ID"]),
		PageToken:     env["MESSENGER_PAGE_TOKEN"],
		PrimaryAppID:  strings.TrimSpace(env["MESSENGER_PRIMARY_APP_ID"]),
		AdminEmail:    strings.TrimSpace(env["BATON_ADMIN_EMAIL"]),
		AdminPassword: env["BATON_ADMIN_PASSWORD"],
		LogFormat:     or(env["BATON_LOG_FORMAT"], "json"),
	}
	var errs []error
	boolVar := func(name string, def bool) bool {
		v, ok := env[name]
		if !ok || v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s must be true or false, got %q", name, v))
		}
		return b
	}
	durVar := func(name string, def time.Duration) time.Duration {
		v := env[name]
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s must be a duration such as 30m, got %q", name, v))
		}
		return d
	}
	c.HumanAgent = boolVar("MESSENGER_HUMAN_AGENT", true)
	c.Migrate = boolVar("BATON_MIGRATE", true)
	c.AcceptSHA1 = boolVar("BATON_ACCEPT_SHA1", false)
	c.SecureCookies = boolVar("BATON_SECURE_COOKIES", strings.HasPrefix(c.PublicURL, "https://"))
	c.SessionIdle = durVar("BATON_SESSION_IDLE", 60*time.Minute)
	c.SessionMax = durVar("BATON_SESSION_MAX", 12*time.Hour)
	c.IdleReturn = durVar("BATON_IDLE_RETURN", 0)
	c.PasswordCost = 12
	if v := env["BATON_PASSWORD_COST"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 || n > 31 {
			errs = append(errs, fmt.Errorf("BATON_PASSWORD_COST must be a bcrypt cost from 4 to 31 (default 12), got %q", v))
		}
		c.PasswordCost = n
	}
	c.AgentsMayRequest = boolVar("BATON_AGENTS_MAY_REQUEST", false)
	c.RequestTimeout = durVar("BATON_REQUEST_TIMEOUT", 5*time.Minute)
	c.UnassignOnDone = boolVar("BATON_UNASSIGN_ON_DONE", true)
	c.AgentCap = 5
	if v := env["BATON_AGENT_CAP"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			errs = append(errs, fmt.Errorf("BATON_AGENT_CAP must be a number of conversations from 0 to 1000 (default 5), got %q", v))
		}
		c.AgentCap = n
	}
	if o := env["BATON_ALLOWED_ORIGINS"]; o != "" {
		for _, s := range strings.Split(o, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, s)
			}
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(env["BATON_LOG_LEVEL"], "info"))); err != nil {
		errs = append(errs, fmt.Errorf("BATON_LOG_LEVEL must be debug, info, warn or error"))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("BATON_LOG_FORMAT must be json or text"))
	}
	if u, err := url.Parse(c.GraphAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("GRAPH_API_URL must be an http(s) URL, got %q", c.GraphAPIURL))
	}
	for name, v := range map[string]string{"MESSENGER_APP_ID": c.AppID, "MESSENGER_PAGE_ID": c.PageID, "MESSENGER_PRIMARY_APP_ID": c.PrimaryAppID} {
		if v != "" && !digits(v) {
			errs = append(errs, fmt.Errorf("%s must be a numeric id, got %q", name, v))
		}
	}
	if needMessenger {
		for _, req := range []struct{ name, v string }{
			{"MESSENGER_APP_ID", c.AppID}, {"MESSENGER_APP_SECRET", c.AppSecret},
			{"MESSENGER_VERIFY_TOKEN", c.VerifyToken}, {"MESSENGER_PAGE_ID", c.PageID},
			{"MESSENGER_PAGE_TOKEN", c.PageToken},
		} {
			if req.v == "" {
				errs = append(errs, fmt.Errorf("%s is required (see README.md, Configuration)", req.name))
			}
		}
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		errs = append(errs, errors.New("set both BATON_ADMIN_EMAIL and BATON_ADMIN_PASSWORD, or neither"))
	}
	return c, errors.Join(errs...)
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// newLogger builds the structured logger every part writes to.
// Every line logged with a request's context carries its request id.
func newLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(web.LogHandler(h))
}
