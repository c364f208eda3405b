package postgres

import (
	"context"
	"fmt"

	"github.com/baton-chat/baton/internal/baton"
)

// EnsurePage registers a connected Page with what configuration knows of
// it. Learned values (the Primary from app_roles or handovers) are kept
// unless configuration names one, which then stays (pinned).
func (db *DB) EnsurePage(ctx context.Context, p baton.Page) error {
	_, err := db.ExecContext(ctx, `
		insert into pages (page_id, baton_app_id, primary_app_id, primary_pinned)
		values ($1, $2, $3, $3 <> '')
		on conflict (page_id) do update set
			baton_app_id = excluded.baton_app_id,
			primary_app_id = case when excluded.primary_app_id <> '' then excluded.primary_app_id else pages.primary_app_id end,
			primary_pinned = pages.primary_pinned or excluded.primary_pinned,
			updated_at = now()`, p.PageID, p.BatonAppID, p.PrimaryAppID)
	if err != nil {
		return mapError(fmt.Errorf("ensure page: %w", err))
	}
	return nil
}

// Page returns a connected Page.
func (db *DB) Page(ctx context.Context, pageID string) (*baton.Page, error) {
	var r pageRow
	err := db.GetContext(ctx, &r, `
		select `+pageColumns+`
		from pages
		where page_id = $1`, pageID)
	if err != nil {
		return nil, notFound(err, "Page not found.")
	}
	return r.domain(), nil
}
