package baton

import (
	"context"
	"time"
)

// PageSettings is what Baton needs to talk to Messenger for its Page:
// editable by admins, seeded from the environment at start.
type PageSettings struct {
	PageID string
	// PageToken is the Page access token Baton calls the Graph API with.
	PageToken string
	// AppSecret signs webhook deliveries (X-Hub-Signature-256).
	AppSecret string
	// VerifyToken answers Facebook's subscription challenge.
	VerifyToken string
	BatonAppID  string
	// PrimaryAppID is the Primary Receiver (the bot); learned from
	// app_roles when not configured.
	PrimaryAppID string
	// HumanAgent: the app has the Human Agent permission (7-day tag).
	HumanAgent bool
	UpdatedAt  time.Time
}

// Mask shows only the last four characters of a secret, so an admin can
// tell which one is set without the page ever holding it in full.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	r := []rune(secret)
	if len(r) <= 4 {
		return "••••"
	}
	return "••••" + string(r[len(r)-4:])
}

// SettingsService stores the Page settings. Called by the admin page, the
// start-up seeding and the webhook's secret look-up. Errors: ENOTFOUND
// when no Page is configured, EINVALID for bad values.
type SettingsService interface {
	// PageSettings returns the current settings.
	PageSettings(ctx context.Context) (*PageSettings, error)
	// SavePageSettings replaces the settings; empty secrets in s keep the
	// stored ones (forms never echo secrets back).
	SavePageSettings(ctx context.Context, s PageSettings) error
}
