// Package migrations embeds the forward-only SQL migrations. A file is
// never edited once merged; a change is a new file.
package migrations

import "embed"

// FS holds the NNNN_name.sql files, applied in name order.
//
//go:embed *.sql
var FS embed.FS
