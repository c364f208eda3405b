package main

import (
	"context"
	"testing"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/pgtest"
)

// BenchmarkSearch loads 1M messages over 20 000 conversations into a
// fresh database (generate_series, about a minute with the index build)
// and measures full-text searches. It runs only with -bench, so normal
// test runs never load the rows:
//
//	go test -run '^$' -bench Search -benchtime 20x ./cmd/baton/
func BenchmarkSearch(b *testing.B) {
	db := pgtest.DB(b)
	ctx := context.Background()
	steps := []string{
		`drop index messages_text_fts`,
		`insert into conversations (page_id, psid, first_name, last_name, status)
			select 'p1', g::text, 'First' || g, 'Last' || g, case when g % 3 = 0 then 'bot' else 'open' end
			from generate_series(1, 20000) g`,
		// Three words from a common vocabulary; one message in a thousand
		// also says "chargeback".
		`insert into messages (conversation_id, mid, author, text, part, timestamp_ms)
			select c0.id + g % 20000, 'm' || g, 'user',
				w[1 + (g * 7) % 40] || ' ' || w[1 + (g * 13) % 40] || ' ' || w[1 + (g / 40) % 40]
					|| case when g % 1000 = 0 then ' chargeback' else '' end,
				'live', g
			from generate_series(1, 1000000) g,
				(select min(id) as id from conversations) c0,
				(select array['order', 'parcel', 'refund', 'delivery', 'hello', 'thanks', 'broken', 'price',
					'invoice', 'account', 'password', 'login', 'shipping', 'address', 'change', 'cancel',
					'subscription', 'payment', 'card', 'declined', 'late', 'store', 'opening', 'hours',
					'return', 'size', 'colour', 'stock', 'discount', 'coupon', 'email', 'phone', 'agent',
					'human', 'help', 'urgent', 'wrong', 'item', 'missing', 'tracking'] as w) words`,
		`create index messages_text_fts on messages using gin (to_tsvector('english', text))`,
		`analyze messages`,
		`analyze conversations`,
	}
	for _, q := range steps {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.Run("rare term", func(b *testing.B) {
		for b.Loop() {
			hits, err := db.SearchMessages(ctx, "chargeback", baton.SearchOptions{Limit: 50})
			if err != nil || len(hits) == 0 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
		}
	})
	b.Run("two common terms", func(b *testing.B) {
		for b.Loop() {
			hits, err := db.SearchMessages(ctx, "refund declined", baton.SearchOptions{Limit: 50})
			if err != nil || len(hits) == 0 {
				b.Fatalf("%d hits, %v", len(hits), err)
			}
		}
	})
	b.Run("inbox list", func(b *testing.B) {
		for b.Loop() {
			list, err := db.ListConversations(ctx, baton.ConversationFilter{Folder: baton.FolderAll, Search: "chargeback"})
			if err != nil || len(list) == 0 {
				b.Fatalf("%d conversations, %v", len(list), err)
			}
		}
	})
}
