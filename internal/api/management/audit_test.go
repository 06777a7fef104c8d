package management_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
	"github.com/updraft-ota/updraft/internal/ota"
)

// TestAuditNativeChanges: a change through the native API is in the audit
// log at once with who, tenant, what and the request id the caller saw; a
// refused change (bad input, conflict, a readonly key) leaves no entry.
func TestAuditNativeChanges(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()

	resp, body := e.raw(http.MethodPost, "/api/v1/products", "application/json",
		strings.NewReader(`{"key":"thermo","name":"Thermostat"}`), "X-Request-Id", "req-audit-create")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create product: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "req-audit-create" {
		t.Fatalf("X-Request-Id answered %q", got)
	}
	// The first start's own entries: the tenant and its key, by no caller.
	boot, err := e.Client.ListAudit(ctx, client.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if boot.Total != 3 || boot.Items[1].Action != "key.create" || boot.Items[1].ResourceID != testKeyID ||
		boot.Items[2].Action != "tenant.create" || boot.Items[2].ActorKeyID != "" || boot.Items[2].Detail != "first start (bootstrap)" {
		t.Fatalf("audit after the first start and one change: %+v", boot)
	}
	list, err := e.Client.ListAudit(ctx, client.AuditFilter{Actor: testKeyID})
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != 1 || len(list.Items) != 1 {
		t.Fatalf("audit after one change: %+v", list)
	}
	got := list.Items[0]
	if got.Action != "product.create" || got.ResourceType != "product" || got.ResourceID != "thermo" ||
		got.ActorKeyID != testKeyID || got.ActorRole != "admin" || got.Tenant != ota.DefaultTenantID ||
		got.RequestID != "req-audit-create" || got.At.IsZero() {
		t.Fatalf("audit entry: %+v", got)
	}
	e.openAPISchemas().check("AuditEntryList", e.get("/api/v1/audit"))

	// Refused changes: bad input, a conflict.
	for _, c := range []struct{ body, reqID string }{
		{`{"key":"bad key\u0007","name":"x"}`, "req-bad-input"},
		{`{"key":"thermo","name":"again"}`, "req-conflict"},
	} {
		resp, body := e.raw(http.MethodPost, "/api/v1/products", "application/json", strings.NewReader(c.body), "X-Request-Id", c.reqID)
		if resp.StatusCode < 400 {
			t.Fatalf("%s: want a refusal, got %d %s", c.reqID, resp.StatusCode, body)
		}
	}
	// A readonly key may read the log but cannot change anything.
	ro, err := e.Client.CreateKey(ctx, "", "readonly")
	if err != nil {
		t.Fatal(err)
	}
	roClient := client.New(e.URL, ro.ID, ro.Secret)
	_, err = roClient.CreateProduct(ctx, client.ProductCreate{Key: "other", Name: "Other"})
	wantAPIError(t, err, http.StatusForbidden, string(ota.CodeForbidden))
	roList, err := roClient.ListAudit(ctx, client.AuditFilter{Actor: testKeyID})
	if err != nil {
		t.Fatalf("readonly key reading the audit log: %v", err)
	}
	var actions []string
	for _, it := range roList.Items {
		actions = append(actions, it.Action+" "+it.ResourceID)
		if strings.Contains(it.Detail, ro.Secret) {
			t.Fatalf("audit detail holds a secret: %+v", it)
		}
	}
	if strings.Join(actions, ",") != "key.create "+ro.ID+",product.create thermo" {
		t.Fatalf("audit after refused changes: %v", actions)
	}
	if roList.Items[0].Detail != "role readonly" {
		t.Fatalf("key.create detail %q", roList.Items[0].Detail)
	}

	// Filters are the store's; paging works.
	one, err := e.Client.ListAudit(ctx, client.AuditFilter{Action: "product.create", Page: client.Page{Limit: 1}})
	if err != nil || one.Total != 1 || one.Items[0].ResourceID != "thermo" {
		t.Fatalf("filtered audit: %+v %v", one, err)
	}
	// Bad filters are a 400.
	_, err = e.Client.ListAudit(ctx, client.AuditFilter{Page: client.Page{Limit: management.MaxPageLimit + 1}})
	wantAPIError(t, err, http.StatusBadRequest, string(ota.CodeInvalid), "limit")
	resp, body = e.raw(http.MethodGet, "/api/v1/audit?since=yesterday", "", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "since") {
		t.Fatalf("bad since: %d %s", resp.StatusCode, body)
	}

	// Tenant scope: another tenant sees none of default's entries and may
	// not ask for them; the operator admin may read the other tenant's.
	acme := e.addTenant("acme")
	if _, err := acme.CreateProduct(ctx, client.ProductCreate{Key: "acme-pk", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	own, err := acme.ListAudit(ctx, client.AuditFilter{})
	if err != nil || own.Total != 1 || own.Items[0].ResourceID != "acme-pk" || own.Items[0].Tenant != "acme" {
		t.Fatalf("acme's audit: %+v %v", own, err)
	}
	_, err = acme.ListAudit(ctx, client.AuditFilter{Tenant: ota.DefaultTenantID})
	wantAPIError(t, err, http.StatusForbidden, string(ota.CodeForbidden))
	byOperator, err := e.Client.ListAudit(ctx, client.AuditFilter{Tenant: "acme"})
	if err != nil || byOperator.Total != 1 {
		t.Fatalf("operator reading acme's audit: %+v %v", byOperator, err)
	}
}
