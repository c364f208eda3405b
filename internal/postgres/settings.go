package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

type settingsRow struct {
	PageID       string    `db:"page_id"`
	PageToken    string    `db:"page_token"`
	AppSecret    string    `db:"app_secret"`
	VerifyToken  string    `db:"verify_token"`
	BatonAppID   string    `db:"baton_app_id"`
	PrimaryAppID string    `db:"primary_app_id"`
	HumanAgent   bool      `db:"human_agent"`
	UpdatedAt    time.Time `db:"updated_at"`
}

// SeedPageSettings registers the Page named by the environment and fills
// every setting still empty from s. Values an admin saved are kept across
// restarts: the environment seeds, the admin page decides.
func (db *DB) SeedPageSettings(ctx context.Context, s baton.PageSettings) error {
	if s.PageID == "" {
		return baton.Errorf(baton.EINVALID, "A Page id is required.")
	}
	_, err := db.ExecContext(ctx, `
		insert into pages (page_id, baton_app_id, primary_app_id, primary_pinned, page_token, app_secret, verify_token, human_agent, updated_at)
		values ($1, $2, $3, $3 <> '', $4, $5, $6, $7, $8)
		on conflict (page_id) do update set
			baton_app_id = case when pages.baton_app_id = '' then excluded.baton_app_id else pages.baton_app_id end,
			-- A configured Primary beats a learnt one (§13.3); one an admin
			-- saved (pinned) is kept.
			primary_app_id = case when pages.primary_pinned or excluded.primary_app_id = '' then pages.primary_app_id else excluded.primary_app_id end,
			primary_pinned = pages.primary_pinned or excluded.primary_pinned,
			page_token = case when pages.page_token = '' then excluded.page_token else pages.page_token end,
			app_secret = case when pages.app_secret = '' then excluded.app_secret else pages.app_secret end,
			verify_token = case when pages.verify_token = '' then excluded.verify_token else pages.verify_token end`,
		s.PageID, s.BatonAppID, s.PrimaryAppID, s.PageToken, s.AppSecret, s.VerifyToken, s.HumanAgent, db.Now())
	if err != nil {
		return mapError(fmt.Errorf("seed page settings: %w", err))
	}
	return nil
}

func (db *DB) pageSettings(ctx context.Context, pageID string) (*baton.PageSettings, error) {
	var r settingsRow
	err := db.GetContext(ctx, &r, `
		select
			page_id,
			page_token,
			app_secret,
			verify_token,
			baton_app_id,
			primary_app_id,
			human_agent,
			updated_at
		from pages
		where page_id = $1`, pageID)
	if err != nil {
		return nil, notFound(err, "No Page is configured.")
	}
	return &baton.PageSettings{
		PageID: r.PageID, PageToken: r.PageToken, AppSecret: r.AppSecret, VerifyToken: r.VerifyToken,
		BatonAppID: r.BatonAppID, PrimaryAppID: r.PrimaryAppID, HumanAgent: r.HumanAgent, UpdatedAt: r.UpdatedAt,
	}, nil
}

// Settings is the settings service for one Page with an in-memory copy of
// the webhook secrets: the webhook checks every delivery's signature and
// must not pay a query for it. Saves on this instance apply at once; saves
// on another instance within TTL.
type Settings struct {
	db     *DB
	pageID string
	// TTL is how stale the cached secrets may get before a background
	// refresh (other instances' saves).
	TTL        time.Duration
	cur        atomic.Pointer[cachedSettings]
	refreshing atomic.Bool
}

type cachedSettings struct {
	s  baton.PageSettings
	at time.Time
}

// Settings returns the settings service for pageID.
func (db *DB) Settings(pageID string) *Settings {
	return &Settings{db: db, pageID: pageID, TTL: 30 * time.Second}
}

// PageSettings implements baton.SettingsService (fresh from the database).
func (c *Settings) PageSettings(ctx context.Context) (*baton.PageSettings, error) {
	s, err := c.db.pageSettings(ctx, c.pageID)
	if err != nil {
		return nil, err
	}
	c.cur.Store(&cachedSettings{s: *s, at: c.db.Now()})
	return s, nil
}

// SavePageSettings implements baton.SettingsService. Empty secrets keep
// the stored ones; ids must be numeric.
func (c *Settings) SavePageSettings(ctx context.Context, s baton.PageSettings) error {
	for _, f := range []struct{ name, v string }{{"Baton's app id", s.BatonAppID}, {"The Primary's app id", s.PrimaryAppID}} {
		if f.v != "" && strings.Trim(f.v, "0123456789") != "" {
			return baton.Errorf(baton.EINVALID, "%s must be a numeric id.", f.name)
		}
	}
	if s.BatonAppID == "" {
		return baton.Errorf(baton.EINVALID, "Baton's app id is required.")
	}
	res, err := c.db.ExecContext(ctx, `
		update pages set
			page_token = case when $2 = '' then page_token else $2 end,
			app_secret = case when $3 = '' then app_secret else $3 end,
			verify_token = case when $4 = '' then verify_token else $4 end,
			baton_app_id = $5,
			primary_app_id = $6,
			-- Saving the value Baton learnt keeps learning; a new one pins it.
			primary_pinned = case when $6 = '' then false when $6 <> primary_app_id then true else primary_pinned end,
			human_agent = $7,
			updated_at = $8
		where page_id = $1`,
		c.pageID, s.PageToken, s.AppSecret, s.VerifyToken, s.BatonAppID, s.PrimaryAppID, s.HumanAgent, c.db.Now())
	if err != nil {
		return mapError(fmt.Errorf("save page settings: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "No Page is configured.")
	}
	_, err = c.PageSettings(ctx)
	return err
}

// Secrets returns the app secret and verify token for the webhook, from
// memory; a stale copy triggers one background refresh. Before the first
// load it returns empty strings (callers fall back to configuration).
func (c *Settings) Secrets() (appSecret, verifyToken string) {
	cur := c.cur.Load()
	if cur == nil {
		return "", ""
	}
	if c.db.Now().Sub(cur.at) > c.TTL && c.refreshing.CompareAndSwap(false, true) {
		go func() {
			defer c.refreshing.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c.PageSettings(ctx)
		}()
	}
	return cur.s.AppSecret, cur.s.VerifyToken
}
