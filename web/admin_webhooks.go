package web

import (
	"net/http"
	"strconv"

	"github.com/baton-chat/baton/internal/baton"
	"github.com/baton-chat/baton/templates"
)

// Audit actions of the outgoing webhooks page.
const (
	ActionWebhookCreate  = "api_webhook.create"
	ActionWebhookEnable  = "api_webhook.enable"
	ActionWebhookDisable = "api_webhook.disable"
	ActionWebhookTest    = "api_webhook.test"
	ActionWebhookDelete  = "api_webhook.delete"
)

// adminWebhookRoutes registers the page where admins manage the receivers
// of outgoing webhooks (a CRM, a ticketing tool). Each action writes its
// own audit line, with the endpoint's id and URL, never its secret.
func (s *Server) adminWebhookRoutes() {
	s.handle("GET /admin/webhooks", baton.RoleAdmin, s.showWebhooks)
	s.handle("POST /admin/webhooks", baton.RoleAdmin, s.createWebhook)
	s.handle("POST /admin/webhooks/{id}/enable", baton.RoleAdmin, s.enableWebhook)
	s.handle("POST /admin/webhooks/{id}/disable", baton.RoleAdmin, s.disableWebhook)
	s.handle("POST /admin/webhooks/{id}/test", baton.RoleAdmin, s.testWebhook)
	s.handle("POST /admin/webhooks/{id}/delete", baton.RoleAdmin, s.deleteWebhook)
}

// webhookDeliveriesShown is how many recent deliveries the page lists per
// endpoint: enough to see a pattern of failures.
const webhookDeliveriesShown = 10

func (s *Server) showWebhooks(w http.ResponseWriter, r *http.Request) {
	d := templates.AdminWebhooksPage{}
	d.Flash, d.Error = s.popFlash(r)
	s.renderWebhooks(w, r, http.StatusOK, d)
}

func (s *Server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, d templates.AdminWebhooksPage) {
	store, err := service[baton.APIWebhookStore](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	eps, err := store.APIWebhookEndpoints(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, e := range eps {
		ds, err := store.APIWebhookDeliveries(r.Context(), e.ID, webhookDeliveriesShown)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		d.Endpoints = append(d.Endpoints, templates.WebhookEndpointRow{Endpoint: e, Deliveries: ds})
	}
	d.EventTypes = baton.APIEventTypes
	d.Location = s.cfg.Console.loc()
	// The page may carry a new secret: never cache it.
	s.renderComponent(w, r, status, templates.AdminWebhooks(s.pageData(r, "Webhooks", "webhooks"), d))
}

// createWebhook registers a receiver and shows its secret once, in this
// response only (no redirect: the secret never goes through the session).
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	store, err := service[baton.APIWebhookStore](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, baton.Errorf(baton.EINVALID, "The form could not be read."))
		return
	}
	u := s.currentUser(r)
	ep, err := store.CreateAPIWebhookEndpoint(r.Context(), r.PostFormValue("url"), r.PostForm["events"], &u.ID)
	if err != nil {
		if statusOf(err) >= 500 {
			s.writeError(w, r, err)
			return
		}
		s.renderWebhooks(w, r, statusOf(err), templates.AdminWebhooksPage{Flash: baton.ErrorMessage(err), Error: true,
			URL: r.PostFormValue("url"), Chosen: r.PostForm["events"]})
		return
	}
	s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: ActionWebhookCreate, Subject: webhookSubject(ep.ID),
		Detail: map[string]any{"url": ep.URL, "events": ep.Events}})
	s.renderWebhooks(w, r, http.StatusOK, templates.AdminWebhooksPage{NewSecret: ep.Secret, NewURL: ep.URL})
}

func webhookSubject(id int64) string { return "api_webhook:" + strconv.FormatInt(id, 10) }

func (s *Server) enableWebhook(w http.ResponseWriter, r *http.Request) {
	s.setWebhookEnabled(w, r, true)
}

func (s *Server) disableWebhook(w http.ResponseWriter, r *http.Request) {
	s.setWebhookEnabled(w, r, false)
}

func (s *Server) setWebhookEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	s.webhookAction(w, r, func(store baton.APIWebhookStore, id int64) (string, string, map[string]any, error) {
		ep, err := store.SetAPIWebhookEndpointEnabled(r.Context(), id, enabled)
		if err != nil {
			return "", "", nil, err
		}
		if enabled {
			return ActionWebhookEnable, "Enabled " + ep.URL + ".", map[string]any{"url": ep.URL}, nil
		}
		return ActionWebhookDisable, "Disabled " + ep.URL + ": its events are no longer queued.", map[string]any{"url": ep.URL}, nil
	})
}

// testWebhook queues a test event for one endpoint; the page shows its
// delivery once the sender has tried it.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) {
	s.webhookAction(w, r, func(store baton.APIWebhookStore, id int64) (string, string, map[string]any, error) {
		ev := baton.NewAPITestEvent(s.cfg.Now())
		if err := store.EnqueueAPIWebhookEvent(r.Context(), id, ev); err != nil {
			return "", "", nil, err
		}
		return ActionWebhookTest, "Test event " + ev.ID + " queued: reload to see how the receiver answered.", map[string]any{"event_id": ev.ID}, nil
	})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	s.webhookAction(w, r, func(store baton.APIWebhookStore, id int64) (string, string, map[string]any, error) {
		ep, err := store.DeleteAPIWebhookEndpoint(r.Context(), id)
		if err != nil {
			return "", "", nil, err
		}
		return ActionWebhookDelete, "Deleted " + ep.URL + " and its deliveries.", map[string]any{"url": ep.URL}, nil
	})
}

// webhookAction runs an action on the {id} endpoint, audits it and
// returns to the page with its message.
func (s *Server) webhookAction(w http.ResponseWriter, r *http.Request,
	act func(store baton.APIWebhookStore, id int64) (action, msg string, detail map[string]any, err error)) {
	store, err := service[baton.APIWebhookStore](s)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.writeError(w, r, baton.Errorf(baton.ENOTFOUND, "Webhook endpoint not found."))
		return
	}
	action, msg, detail, err := act(store, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := s.currentUser(r)
	s.writeAudit(r.Context(), baton.AuditEntry{ActorID: &u.ID, Action: action, Subject: webhookSubject(id), Detail: detail})
	s.flash(r, msg, false)
	http.Redirect(w, r, "/admin/webhooks", http.StatusSeeOther)
}
