package management

// Tenants and access keys (owner: security). The rules (who may manage what)
// live in service/tenants.go; these handlers only translate.

import (
	"net/http"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

func (a *API) registerTenants(mux *http.ServeMux) {
	a.route(mux, "POST /api/v1/tenants", a.createTenant)
	a.route(mux, "GET /api/v1/tenants", a.listTenants)
	a.route(mux, "GET /api/v1/tenants/{tenant}", a.getTenant)
	a.route(mux, "PUT /api/v1/tenants/{tenant}/quota", a.setTenantQuota)
	a.route(mux, "DELETE /api/v1/tenants/{tenant}", a.deleteTenant)

	a.route(mux, "POST /api/v1/keys", a.createKey)
	a.route(mux, "GET /api/v1/keys", a.listKeys)
	a.route(mux, "DELETE /api/v1/keys/{key}", a.revokeKey)
}

func quotaToOTA(q apiv1.Quota) ota.Quota {
	return ota.Quota{MaxPackages: q.MaxPackages, MaxStorageBytes: q.MaxStorageBytes, MaxDevices: q.MaxDevices, MaxRunningJobs: q.MaxRunningJobs}
}

func tenantFromOTA(t ota.Tenant) apiv1.Tenant {
	q := t.Quota
	return apiv1.Tenant{ID: t.ID, Name: t.Name, Operator: t.Operator, CreatedAt: utc(t.CreatedAt),
		Quota: apiv1.Quota{MaxPackages: q.MaxPackages, MaxStorageBytes: q.MaxStorageBytes, MaxDevices: q.MaxDevices, MaxRunningJobs: q.MaxRunningJobs}}
}

func keyFromOTA(k ota.AccessKey) apiv1.AccessKey {
	return apiv1.AccessKey{ID: k.ID, Tenant: k.TenantID, Role: string(k.Role), Secret: k.Secret, CreatedAt: utc(k.CreatedAt)}
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.TenantCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	t, err := a.svc.CreateTenant(r.Context(), p, service.TenantInput{ID: in.ID, Name: in.Name, Quota: quotaToOTA(in.Quota)})
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, tenantFromOTA(t))
	return nil
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	items, total, err := a.svc.ListTenants(r.Context(), p, pg)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(items, total, tenantFromOTA))
	return nil
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	t, err := a.svc.GetTenant(r.Context(), p, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, tenantFromOTA(t))
	return nil
}

func (a *API) setTenantQuota(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.Quota
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	t, err := a.svc.SetTenantQuota(r.Context(), p, r.PathValue("tenant"), quotaToOTA(in))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, tenantFromOTA(t))
	return nil
}

func (a *API) deleteTenant(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.DeleteTenant(r.Context(), p, r.PathValue("tenant")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	var in apiv1.AccessKeyCreate
	if err := httpx.DecodeJSON(w, r, &in, a.opts.MaxJSONBody); err != nil {
		return err
	}
	k, err := a.svc.CreateAccessKey(r.Context(), p, r.URL.Query().Get("tenant"), ota.Role(in.Role))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, keyFromOTA(k))
	return nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	keys, err := a.svc.ListAccessKeys(r.Context(), p, r.URL.Query().Get("tenant"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, newList(keys, int64(len(keys)), keyFromOTA))
	return nil
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, p service.Principal) error {
	if err := a.svc.RevokeAccessKey(r.Context(), p, r.URL.Query().Get("tenant"), r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
