package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/baton-chat/baton/internal/emulator"
	"github.com/baton-chat/baton/internal/emulator/demobot"
)

// runEmulator serves the Messenger Platform emulator, with the demo bot as
// the Page's Primary Receiver, until ctx ends.
func runEmulator(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	emu, err := startEmulator(ctx, env, or(env["EMULATOR_ADDR"], ":8090"), env["EMULATOR_DEMO_BOT"] != "false", env["EMULATOR_STATE"], log)
	if err != nil {
		fmt.Fprintf(stderr, "baton emulator: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Messenger Platform emulator on %s (page %s, mode %s)\n", emu.URL, emu.emu.PageID(), or(env["EMULATOR_MODE"], emulator.ModeRouting))
	fmt.Fprintf(stdout, "  chat as a person:  %s/\n  control API:       %s/_emulator/state\n", emu.URL, emu.URL)
	if emu.bot != nil {
		fmt.Fprintf(stdout, "  demo bot:          app %s (Primary Receiver)\n", demoBotAppID)
	}
	<-ctx.Done()
	emu.Close()
	return 0
}

// demoBotAppID is the demo bot's app id (PROTOCOL.md's example bot id).
const demoBotAppID = "1500000001"

// runningEmulator is the emulator and its demo bot serving on one port.
type runningEmulator struct {
	URL string
	emu *emulator.Emulator
	bot *demobot.Bot
	srv *http.Server
}

// startEmulator listens on addr, serves the emulator (and the demo bot's
// webhook under /_demo-bot/), and registers the bot as Primary. A
// stateFile keeps the people and threads across runs.
func startEmulator(ctx context.Context, env Env, addr string, withBot bool, stateFile string, log *slog.Logger) (*runningEmulator, error) {
	emu, err := emulator.New(emulator.Config{
		PageID:    env["EMULATOR_PAGE_ID"],
		PageName:  env["EMULATOR_PAGE_NAME"],
		Mode:      env["EMULATOR_MODE"],
		StateFile: stateFile,
		Logger:    log.With("component", "emulator"),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		emu.Close()
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	r := &runningEmulator{URL: "http://" + loopbackURLHost(ln.Addr()), emu: emu}
	mux := http.NewServeMux()
	mux.Handle("/", emu.Handler())
	if withBot {
		r.bot = demobot.New(demobot.Config{
			EmulatorURL: r.URL, AppID: demoBotAppID, Name: "Northwind Bot",
			TakeBackAfter: durationEnv(env, "DEMO_BOT_TAKE_BACK_AFTER", 0),
			Logger:        log.With("component", "demo-bot"),
		})
		mux.Handle("/_demo-bot/", http.StripPrefix("/_demo-bot", r.bot))
	}
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	if r.bot != nil {
		if err := r.bot.Register(ctx, r.URL+"/_demo-bot/webhook"); err != nil {
			r.Close()
			return nil, fmt.Errorf("register the demo bot: %w", err)
		}
	}
	return r, nil
}

// Close stops the bot, the server and the emulator's delivery workers.
func (r *runningEmulator) Close() {
	if r.bot != nil {
		r.bot.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.srv.Close()
	}
	r.emu.Close()
}

// loopbackURLHost turns a listener address such as [::]:8090 into a host
// a local client can dial (127.0.0.1:8090).
func loopbackURLHost(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if host == "" || host == "::" || host == "0.0.0.0" || strings.HasPrefix(host, "[::") {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func durationEnv(env Env, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env[name]); err == nil {
		return d
	}
	return def
}
