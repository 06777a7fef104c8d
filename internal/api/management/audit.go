package management

import (
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// registerAudit: the audit log. Every role may read it (a readonly key is
// what an auditor is given); it is never written through the API.
func (a *API) registerAudit(mux *http.ServeMux) {
	a.route(mux, "GET /api/v1/audit", a.listAudit)
}

func auditFromOTA(e ota.AuditEntry) apiv1.AuditEntry {
	return apiv1.AuditEntry{
		ID: e.ID, At: e.At, Tenant: e.TenantID, ActorKeyID: e.ActorKeyID, ActorRole: string(e.ActorRole),
		Action: e.Action, ResourceType: e.ResourceType, ResourceID: e.ResourceID, RequestID: e.RequestID, Detail: e.Detail,
	}
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, ota.Invalid(name, "%s must be an RFC 3339 time (2026-01-02T15:04:05Z), got %q", name, s)
	}
	return t, nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{
		TenantID: q.Get("tenant"), ActorKeyID: q.Get("actor"), Action: q.Get("action"),
		ResourceType: q.Get("resource_type"), ResourceID: q.Get("resource_id"),
	}
	if f.Since, err = queryTime(r, "since"); err != nil {
		return err
	}
	if f.Until, err = queryTime(r, "until"); err != nil {
		return err
	}
	items, total, err := a.svc.ListAudit(r.Context(), p, f, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, auditFromOTA))
	return nil
}
