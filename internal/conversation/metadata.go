package conversation

import (
	"strconv"
	"strings"
)

// OutboxMetadataPrefix starts the message.metadata Baton sets on every send
// ("baton:<outbox id>", PROTOCOL.md §13.4), so that the echo can be matched
// to the outbox entry even when the Send API response was lost.
const OutboxMetadataPrefix = "baton:"

// OutboxMetadata is the message.metadata for outbox entry id.
func OutboxMetadata(id int64) string { return OutboxMetadataPrefix + strconv.FormatInt(id, 10) }

// OutboxIDFromMetadata parses OutboxMetadata.
func OutboxIDFromMetadata(s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, OutboxMetadataPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id > 0
}
