package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/baton-chat/baton/internal/baton"
)

// searchConfig is the text search configuration of the messages_text_fts
// index (migrations/0004): a query must use the same one to use the index.
const searchConfig = "english"

// messageMatch is a subquery of the ids of conversations with a message
// matching the web-search query in parameter p, answered from the GIN
// index.
func messageMatch(p string) string {
	return `select conversation_id from messages
		where to_tsvector('` + searchConfig + `', text) @@ websearch_to_tsquery('` + searchConfig + `', ` + p + `)`
}

// headlineOptions shape the snippets: a few words around the matches,
// marked with baton.SnippetStart/Stop rather than HTML.
var headlineOptions = "StartSel=" + baton.SnippetStart + ", StopSel=" + baton.SnippetStop +
	", MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter=\" … \""

// SearchMessages implements baton.Searcher. Ranks are computed for every
// match, headlines only for the page returned.
func (db *DB) SearchMessages(ctx context.Context, q string, o baton.SearchOptions) ([]*baton.SearchHit, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, baton.Errorf(baton.EINVALID, "Type something to search for.")
	}
	limit := o.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var rows []struct {
		ID             int64   `db:"id"`
		ConversationID int64   `db:"conversation_id"`
		FirstName      string  `db:"first_name"`
		LastName       string  `db:"last_name"`
		PSID           string  `db:"psid"`
		Status         string  `db:"status"`
		TimestampMS    int64   `db:"timestamp_ms"`
		Rank           float64 `db:"rank"`
		Snippet        string  `db:"snippet"`
	}
	err := db.SelectContext(ctx, &rows, `
		with query as (
			select websearch_to_tsquery('`+searchConfig+`', $1) as q
		),
		hits as (
			select
				m.id,
				m.conversation_id,
				m.text,
				m.timestamp_ms,
				ts_rank(to_tsvector('`+searchConfig+`', m.text), query.q) as rank
			from messages m
			join conversations c on c.id = m.conversation_id
			cross join query
			where to_tsvector('`+searchConfig+`', m.text) @@ query.q
				and ($2 or c.status <> 'bot')
			order by rank desc, m.timestamp_ms desc, m.id desc
			limit $3
		)
		select
			h.id,
			h.conversation_id,
			c.first_name,
			c.last_name,
			c.psid,
			c.status,
			h.timestamp_ms,
			h.rank,
			ts_headline('`+searchConfig+`', h.text, query.q, $4) as snippet
		from hits h
		join conversations c on c.id = h.conversation_id
		cross join query
		order by h.rank desc, h.timestamp_ms desc, h.id desc`,
		q, o.IncludeBot, limit, headlineOptions)
	if err != nil {
		return nil, mapError(fmt.Errorf("search messages: %w", err))
	}
	out := make([]*baton.SearchHit, len(rows))
	for i, r := range rows {
		c := baton.Conversation{FirstName: r.FirstName, LastName: r.LastName, PSID: r.PSID}
		out[i] = &baton.SearchHit{ConversationID: r.ConversationID, MessageID: r.ID, Name: c.Name(), PSID: r.PSID,
			Status: baton.Status(r.Status), Snippet: r.Snippet, Rank: r.Rank, TimestampMS: r.TimestampMS}
	}
	return out, nil
}
