package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/baton-chat/baton/internal/baton"
)

// statsWindow is how far back the dashboard's medians and outcomes look.
const statsWindow = 7 * 24 * time.Hour

// TeamStats implements baton.StatsService. Handovers "in" are those whose
// target is Baton's app on the conversation's Page, "out" those from it.
func (db *DB) TeamStats(ctx context.Context, now time.Time) (*baton.TeamStats, error) {
	st := &baton.TeamStats{At: now, Outcomes: map[string]int{}}
	var agents []struct {
		ID       int64        `db:"id"`
		Name     string       `db:"name"`
		Email    string       `db:"email"`
		Role     string       `db:"role"`
		Assigned int          `db:"assigned"`
		Replies  int          `db:"replies"`
		Last     sql.NullTime `db:"last_active"`
	}
	if err := db.SelectContext(ctx, &agents, `
		select
			u.id,
			u.name,
			u.email,
			u.role,
			(select count(*) from conversations c where c.status = 'open' and c.assigned_user_id = u.id) as assigned,
			(select count(*) from outbox o
				where o.author_user_id = u.id and o.kind = 'message' and o.status = 'sent'
					and o.sent_at >= $1::timestamptz - interval '1 hour') as replies,
			greatest(u.last_login_at, (select max(o.created_at) from outbox o where o.author_user_id = u.id)) as last_active
		from users u
		where not u.disabled
		order by assigned desc, replies desc, u.name, u.id`, now); err != nil {
		return nil, mapError(fmt.Errorf("agent load: %w", err))
	}
	for _, a := range agents {
		l := baton.AgentLoad{UserID: a.ID, Name: a.Name, Role: baton.Role(a.Role), Assigned: a.Assigned, RepliesLastHour: a.Replies}
		if l.Name == "" {
			l.Name = a.Email
		}
		if a.Last.Valid {
			l.LastActiveAt = &a.Last.Time
		}
		st.Agents = append(st.Agents, l)
	}

	var q struct {
		Open   int          `db:"open"`
		Queue  int          `db:"queue"`
		Oldest sql.NullTime `db:"oldest"`
	}
	if err := db.GetContext(ctx, &q, `
		select
			count(*) as open,
			count(*) filter (where not answered) as queue,
			min(opened_at) filter (where not answered) as oldest
		from (
			select c.opened_at, exists (
				select 1 from messages m
				where m.conversation_id = c.id and m.author = 'agent'
					and m.timestamp_ms >= coalesce((extract(epoch from c.opened_at) * 1000)::bigint, 0)
			) as answered
			from conversations c
			where c.status = 'open'
		) open_conversations`); err != nil {
		return nil, mapError(fmt.Errorf("queue: %w", err))
	}
	st.Open, st.Queue = q.Open, q.Queue
	if q.Oldest.Valid && now.After(q.Oldest.Time) {
		st.OldestWait = now.Sub(q.Oldest.Time)
	}

	first := now.Truncate(time.Hour).Add(-23 * time.Hour)
	var hours []struct {
		Hour time.Time `db:"hour"`
		In   int       `db:"in_count"`
		Out  int       `db:"out_count"`
	}
	if err := db.SelectContext(ctx, &hours, `
		select
			date_trunc('hour', to_timestamp(h.timestamp_ms / 1000.0)) as hour,
			count(*) filter (where h.to_app_id = p.baton_app_id) as in_count,
			count(*) filter (where h.from_app_id = p.baton_app_id) as out_count
		from handovers h
		join conversations c on c.id = h.conversation_id
		join pages p on p.page_id = c.page_id
		where p.baton_app_id <> ''
			and h.timestamp_ms >= $1 and h.timestamp_ms < $2
			and (h.to_app_id = p.baton_app_id or h.from_app_id = p.baton_app_id)
			and h.to_app_id <> h.from_app_id
		group by 1`, first.UnixMilli(), first.Add(24*time.Hour).UnixMilli()); err != nil {
		return nil, mapError(fmt.Errorf("handovers per hour: %w", err))
	}
	byHour := map[int64]baton.HourCount{}
	for _, h := range hours {
		byHour[h.Hour.Unix()] = baton.HourCount{Hour: h.Hour, In: h.In, Out: h.Out}
	}
	for i := 0; i < 24; i++ {
		t := first.Add(time.Duration(i) * time.Hour)
		hc, ok := byHour[t.Unix()]
		if !ok {
			hc = baton.HourCount{Hour: t}
		}
		hc.Hour = t
		st.Hours = append(st.Hours, hc)
	}

	var med struct {
		FirstResponse sql.NullFloat64 `db:"first_response_ms"`
		Handle        sql.NullFloat64 `db:"handle_ms"`
	}
	if err := db.GetContext(ctx, &med, `
		with handed as (
			select h.conversation_id, h.timestamp_ms, p.baton_app_id
			from handovers h
			join conversations c on c.id = h.conversation_id
			join pages p on p.page_id = c.page_id
			where p.baton_app_id <> '' and h.to_app_id = p.baton_app_id and h.from_app_id <> p.baton_app_id
				and h.timestamp_ms >= $1
		),
		measured as (
			select
				(select min(m.timestamp_ms) from messages m
					where m.conversation_id = x.conversation_id and m.author = 'agent' and m.timestamp_ms >= x.timestamp_ms
				) - x.timestamp_ms as first_response_ms,
				(select min(o.timestamp_ms) from handovers o
					where o.conversation_id = x.conversation_id and o.from_app_id = x.baton_app_id
						and o.to_app_id <> x.baton_app_id and o.timestamp_ms >= x.timestamp_ms
				) - x.timestamp_ms as handle_ms
			from handed x
		)
		select
			percentile_cont(0.5) within group (order by first_response_ms) as first_response_ms,
			percentile_cont(0.5) within group (order by handle_ms) as handle_ms
		from measured`, now.Add(-statsWindow).UnixMilli()); err != nil {
		return nil, mapError(fmt.Errorf("median times: %w", err))
	}
	if med.FirstResponse.Valid {
		st.MedianFirstResponse = time.Duration(med.FirstResponse.Float64) * time.Millisecond
	}
	if med.Handle.Valid {
		st.MedianHandle = time.Duration(med.Handle.Float64) * time.Millisecond
	}

	var outcomes []struct {
		Outcome string `db:"done_outcome"`
		N       int    `db:"n"`
	}
	if err := db.SelectContext(ctx, &outcomes, `
		select done_outcome, count(*) as n
		from conversations
		where done_outcome <> '' and closed_at >= $1
		group by done_outcome`, now.Add(-statsWindow)); err != nil {
		return nil, mapError(fmt.Errorf("outcomes: %w", err))
	}
	for _, o := range outcomes {
		st.Outcomes[o.Outcome] = o.N
	}
	return st, nil
}
