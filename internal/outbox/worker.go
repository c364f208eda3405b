// Package outbox sends what agents ask Baton to say to Facebook: replies,
// Done's pass_thread_control, requests for control and sender actions. Each
// item is a committed row before any Graph call (so nothing an agent wrote
// is lost, even if Baton is killed mid-send); workers on every instance
// claim due rows with FOR UPDATE SKIP LOCKED, pick the messaging type from
// the window at send time, retry transient errors with backoff and jitter,
// and mark the rest failed with a reason an agent understands.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/internal/conversation"
	"github.com/baton-chat/baton/internal/graph"
)

// Graph is the part of the Graph API client the worker uses.
type Graph interface {
	Send(ctx context.Context, r graph.SendRequest) (graph.SendResult, error)
	SenderAction(ctx context.Context, psid, action string) error
	PassThreadControl(ctx context.Context, psid, targetAppID, metadata string) error
	RequestThreadControl(ctx context.Context, psid, metadata string) error
}

// Timing of retries (PROTOCOL.md §10): back off from 1 s, doubling up to
// 60 s; give up after 15 min; wait 30 s for the echo of a send whose
// answer was lost before sending it again.
const (
	firstBackoff  = time.Second
	maxBackoff    = 60 * time.Second
	giveUpAfter   = 15 * time.Minute
	echoWait      = 30 * time.Second
	actionMaxAge  = 15 * time.Second // a typing indicator later than this is noise
	pollInterval  = 500 * time.Millisecond
	claimBatch    = 16
	attemptTimout = 35 * time.Second
)

// Worker drains the outbox.
type Worker struct {
	Store baton.OutboxStore
	Graph Graph
	// HumanAgent reports whether the Page's app has the Human Agent
	// permission (HUMAN_AGENT tag up to 7 days).
	HumanAgent func() bool
	Now        func() time.Time
	Logger     *slog.Logger
	// Wake, when it receives, makes the worker look at once instead of at
	// its next poll (fed by LISTEN baton_outbox).
	Wake <-chan struct{}
	// OnChange is told which conversation an attempt changed.
	OnChange func(conversationID int64)
	// Observe, when set, counts each attempt (metrics).
	Observe func(kind, result string, code int)
}

// Run works until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for {
			n, err := w.RunOnce(ctx)
			if err != nil {
				w.log().Warn("outbox: claim failed", "err", err)
				break
			}
			if n < claimBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.Wake:
		}
	}
}

// RunOnce claims the due items and attempts each; it returns how many.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	items, err := w.Store.ClaimOutbox(ctx, claimBatch, w.now())
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		r := w.attempt(ctx, it)
		// Record the result even if ctx was cancelled meanwhile: the
		// Graph call happened.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := w.Store.CompleteOutbox(cctx, it, r, w.now())
		cancel()
		if err != nil {
			// The lease runs out and the item is tried again; the echo
			// check stops a second send of a message that went out.
			w.log().Error("outbox: record result failed", "id", it.ID, "err", err)
			continue
		}
		if r.Status == baton.OutboxFailed {
			w.log().Warn("outbox: failed", "id", it.ID, "kind", it.Kind, "reason", r.Error)
		}
		if w.Observe != nil {
			w.Observe(it.Kind, r.Status, r.Code)
		}
		if w.OnChange != nil {
			w.OnChange(it.ConversationID)
		}
	}
	return len(items), nil
}

// attempt makes one Graph call for it and classifies the outcome.
func (w *Worker) attempt(ctx context.Context, it *baton.OutboxItem) baton.OutboxResult {
	now := w.now()
	win := conversation.WindowAt(it.LastUserEventMS, now, w.HumanAgent != nil && w.HumanAgent())
	ctx, cancel := context.WithTimeout(ctx, attemptTimout)
	defer cancel()
	switch it.Kind {
	case "typing_on", "mark_seen":
		if now.Sub(it.CreatedAt) > actionMaxAge || (win.Tier != conversation.TierResponse && win.Tier != conversation.TierUnknown) {
			return baton.OutboxResult{Status: "cancelled"}
		}
		if err := w.Graph.SenderAction(ctx, it.PSID, it.Kind); err != nil {
			return baton.OutboxResult{Status: baton.OutboxFailed, Error: graph.PlainReason(err)}
		}
		return baton.OutboxResult{Status: baton.OutboxSent}
	case "message":
		if it.EchoSeen {
			// The send went out before; its answer was lost but its
			// echo arrived. Sending again would double it.
			return baton.OutboxResult{Status: baton.OutboxSent}
		}
		mt, tag := win.MessagingType()
		if mt == "" {
			return baton.OutboxResult{Status: baton.OutboxFailed, Error: win.Describe(now)}
		}
		req := graph.SendRequest{PSID: it.PSID, MessagingType: mt, Tag: tag,
			Message: graph.Message{Text: it.Text, Metadata: conversation.OutboxMetadata(it.ID)}}
		if it.AttachmentURL != "" {
			req.Message.Attachment = &graph.Attachment{Type: it.AttachmentType, URL: it.AttachmentURL}
		}
		res, err := w.Graph.Send(ctx, req)
		if err != nil {
			return w.classify(it, err, now)
		}
		return baton.OutboxResult{Status: baton.OutboxSent, MID: res.MessageID, MessagingType: mt, Tag: tag}
	case "pass":
		if err := w.Graph.PassThreadControl(ctx, it.PSID, it.TargetAppID, it.Metadata); err != nil {
			return w.classify(it, err, now)
		}
		return baton.OutboxResult{Status: baton.OutboxSent}
	case "request":
		if err := w.Graph.RequestThreadControl(ctx, it.PSID, it.Metadata); err != nil {
			return w.classify(it, err, now)
		}
		return baton.OutboxResult{Status: baton.OutboxSent}
	}
	return baton.OutboxResult{Status: baton.OutboxFailed, Error: "Unknown outbox item."}
}

// classify turns a Graph error into retry-later or failed.
func (w *Worker) classify(it *baton.OutboxItem, err error, now time.Time) baton.OutboxResult {
	r := baton.OutboxResult{Error: graph.PlainReason(err)}
	var ge *graph.Error
	if errors.As(err, &ge) {
		r.Code, r.Subcode = ge.Code, ge.Subcode
	}
	expired := now.Sub(it.CreatedAt) > giveUpAfter
	switch {
	case graph.IsTimeout(err) && !expired:
		// Indeterminate: the message may have gone out. Wait for its echo
		// before trying again (the next claim checks for it).
		r.Status, r.RetryAt = baton.OutboxPending, now.Add(echoWait)
	case graph.IsTransient(err) && !expired:
		r.Status, r.RetryAt = baton.OutboxPending, now.Add(Backoff(it.Attempts))
	default:
		r.Status = baton.OutboxFailed
		r.OwnerUnsure = graph.IsNotOwner(err) || graph.IsOwnerHidden(err)
	}
	return r
}

// Backoff is the wait before attempt n+1: 1 s doubling to 60 s, with up
// to 25 % jitter so that instances retrying together spread out.
func Backoff(attempts int) time.Duration {
	d := firstBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) log() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}
