package management_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// roleFixture: a product, device, module, package and job of the default
// tenant, so that every route's path names real things and a handler that
// ran would really change them.
type roleFixture struct {
	values map[string]string
}

func newRoleFixture(t *testing.T, e *env) roleFixture {
	t.Helper()
	ctx := context.Background()
	setupProduct(t, e, "thermo")
	if _, err := e.Client.CreateModule(ctx, "thermo", client.ModuleCreate{Name: "modem"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "d1"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "fw", Version: "2"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{Devices: []string{"d1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return roleFixture{values: map[string]string{
		"product": "thermo", "module": "modem", "device": "d1", "id": job.ID, "tenant": ota.DefaultTenantID,
		"key": testKeyID, "bucket": "mybucket", "key...": "a/b.bin",
	}}
}

var wildcard = regexp.MustCompile(`\{([^}]+)\}`)

// path fills a route pattern's wildcards; package routes take the package id.
func (f roleFixture) path(t *testing.T, e *env, pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	pkgs, err := e.Client.ListPackages(context.Background(), client.PackageFilter{})
	if err != nil || len(pkgs.Items) == 0 {
		t.Fatalf("no package to name: %v", err)
	}
	path = wildcard.ReplaceAllStringFunc(path, func(w string) string {
		name := w[1 : len(w)-1]
		if name == "id" && strings.HasPrefix(path, "/api/v1/packages/") {
			return pkgs.Items[0].ID
		}
		if v, ok := f.values[name]; ok {
			return v
		}
		t.Fatalf("route %s: no fixture value for {%s}: add one to newRoleFixture", pattern, name)
		return ""
	})
	return method, path
}

func (e *env) send(keyID, secret, method, path string) (int, string) {
	e.t.Helper()
	return e.sendAs(keyID, secret, method, path, "")
}

// sendAs is send with the X-Request-Id the request carries (none: the
// server makes one up).
func (e *env) sendAs(keyID, secret, method, path, requestID string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader("{}"))
	if err != nil {
		e.t.Fatal(err)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	req.Header.Set("Authorization", "Bearer "+keyID+":"+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// snapshot is everything the default tenant has, to prove a refused
// request changed nothing.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/products", "/api/v1/products/thermo/modules", "/api/v1/products/thermo/devices",
		"/api/v1/packages", "/api/v1/jobs", "/api/v1/keys", "/api/v1/tenants"} {
		b.Write(e.get(p))
	}
	return b.String()
}

// tenantAdminRoute: routes that manage tenants (operator admins only).
func tenantAdminRoute(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/v1/tenants") && pattern != "GET /api/v1/tenants/{tenant}"
}

func keyRoute(pattern string) bool {
	_, path, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(path, "/api/v1/keys")
}

// TestRolesWalkEveryRoute walks every route of the native API with a key of
// each role: a readonly key is refused (403) on every route that is not a GET
// and nothing changes; it may read everything of its tenant but keys and
// tenants; an operator key may change products, devices, packages and jobs
// but not keys or tenants; an admin key of a non-operator tenant manages its
// own keys but not tenants.
func TestRolesWalkEveryRoute(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	fx := newRoleFixture(t, e)
	boot := service.Principal{TenantID: ota.DefaultTenantID, AccessKeyID: testKeyID, Role: ota.RoleAdmin}
	ro, err := e.svc.CreateAccessKey(ctx, boot, "", ota.RoleReadonly)
	if err != nil {
		t.Fatal(err)
	}
	opKey, err := e.svc.CreateAccessKey(ctx, boot, "", ota.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateTenant(ctx, boot, service.TenantInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	acmeAdmin, err := e.svc.CreateAccessKey(ctx, boot, "acme", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}

	routes := management.RouteTable()
	before := e.snapshot(t)
	walked := 0
	for _, pattern := range routes {
		if pattern == "GET /api/v1/openapi.json" {
			continue
		}
		walked++
		method, path := fx.path(t, e, pattern)
		status, body := e.send(ro.ID, ro.Secret, method, path)
		switch {
		case method != http.MethodGet:
			if status != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "readonly") {
				t.Errorf("readonly %s: %d %s, want 403 forbidden naming the role", pattern, status, body)
			}
		case tenantAdminRoute(pattern) || keyRoute(pattern):
			if status != http.StatusForbidden {
				t.Errorf("readonly %s: %d %s, want 403 (admin only)", pattern, status, body)
			}
		default:
			if status != http.StatusOK {
				t.Errorf("readonly %s: %d %s, want 200", pattern, status, body)
			}
		}
	}
	if after := e.snapshot(t); after != before {
		t.Errorf("readonly requests changed the tenant:\nbefore %s\nafter  %s", before, after)
	}
	if walked < 30 {
		t.Errorf("walked only %d routes", walked)
	}

	// Operator: refused on key and tenant management, allowed elsewhere.
	// Every change it makes is in the audit log under its request id; a
	// refused or failed one leaves no entry.
	changed := map[string]string{} // request id → route, of 2xx changes
	refused := map[string]string{} // request id → route, of refusals and no-ops
	for i, pattern := range routes {
		if pattern == "GET /api/v1/openapi.json" || pattern == "GET /api/v1/tenants/{tenant}" {
			continue
		}
		method, path := fx.path(t, e, pattern)
		if method == http.MethodDelete && !keyRoute(pattern) && !tenantAdminRoute(pattern) {
			continue // keep the fixture for the rest of the walk
		}
		reqID := fmt.Sprintf("walk-%d", i)
		status, body := e.sendAs(opKey.ID, opKey.Secret, method, path, reqID)
		wantForbidden := tenantAdminRoute(pattern) || keyRoute(pattern)
		if wantForbidden != (status == http.StatusForbidden) {
			t.Errorf("operator %s: %d %s (want forbidden: %v)", pattern, status, body, wantForbidden)
		}
		switch {
		case method == http.MethodGet:
		case status < 300 && strings.HasSuffix(pattern, "/tasks/cancel") && strings.Contains(body, `"canceled":0`):
			// A cancel that matched no task changed nothing: no entry.
			refused[reqID] = pattern
		case status < 300:
			changed[reqID] = pattern
		default:
			refused[reqID] = pattern
		}
	}
	entries, _, err := e.svc.ListAudit(ctx, boot, store.AuditFilter{TenantID: "*"}, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]int{}
	for _, en := range entries {
		logged[en.RequestID]++
	}
	for id, pattern := range changed {
		if logged[id] == 0 {
			t.Errorf("operator %s changed something (2xx) but left no audit entry with its request id", pattern)
		}
	}
	for id, pattern := range refused {
		if logged[id] != 0 {
			t.Errorf("operator %s was refused but left %d audit entries", pattern, logged[id])
		}
	}
	if len(changed) < 6 {
		t.Errorf("only %d operator changes succeeded in the walk (%v); the audit check needs more", len(changed), changed)
	}

	// Admin of a non-operator tenant: its own keys yes, tenants no, and it
	// sees nothing of the default tenant.
	for _, pattern := range routes {
		if !tenantAdminRoute(pattern) {
			continue
		}
		method, path := fx.path(t, e, pattern)
		if status, body := e.send(acmeAdmin.ID, acmeAdmin.Secret, method, path); status != http.StatusForbidden {
			t.Errorf("acme admin %s: %d %s, want 403", pattern, status, body)
		}
	}
	if status, body := e.send(acmeAdmin.ID, acmeAdmin.Secret, "GET", "/api/v1/keys"); status != 200 || !strings.Contains(body, acmeAdmin.ID) || strings.Contains(body, testKeyID) {
		t.Errorf("acme admin lists its keys: %d %s", status, body)
	}
	if status, body := e.send(acmeAdmin.ID, acmeAdmin.Secret, "GET", "/api/v1/keys?tenant=default"); status != http.StatusForbidden {
		t.Errorf("acme admin lists default's keys: %d %s, want 403", status, body)
	}
}

// TestTenantIsolationAndRevoke: a key of a new tenant sees nothing of the
// default tenant on any listing; a revoked key stops working at once.
func TestTenantIsolationAndRevoke(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	newRoleFixture(t, e)
	admin := client.New(e.URL, testKeyID, testSecret)
	if _, err := admin.CreateTenant(ctx, client.TenantCreate{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateKey(ctx, "acme", "operator")
	if err != nil {
		t.Fatal(err)
	}
	if k.Secret == "" || k.Role != "operator" || k.Tenant != "acme" {
		t.Fatalf("created key %+v", k)
	}
	acme := client.New(e.URL, k.ID, k.Secret)
	for _, p := range []string{"/api/v1/products", "/api/v1/packages", "/api/v1/jobs"} {
		status, body := e.send(k.ID, k.Secret, "GET", p)
		if status != 200 || !strings.Contains(body, `"total":0`) {
			t.Errorf("acme GET %s: %d %s, want an empty list", p, status, body)
		}
	}
	if _, err := acme.GetProduct(ctx, "thermo"); !isCode(err, "not_found") {
		t.Errorf("acme reads default's product: %v", err)
	}
	keys, err := admin.ListKeys(ctx, "acme")
	if err != nil || len(keys) != 1 || keys[0].Secret != "" {
		t.Fatalf("list acme keys: %+v %v (secrets must not be listed)", keys, err)
	}
	if err := admin.RevokeKey(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if status, body := e.send(k.ID, k.Secret, "GET", "/api/v1/products"); status != http.StatusUnauthorized {
		t.Errorf("revoked key: %d %s, want 401", status, body)
	}
	if err := admin.RevokeKey(ctx, "", testKeyID); err == nil || !strings.Contains(err.Error(), "cannot revoke itself") {
		t.Errorf("self-revoke: %v", err)
	}
	if err := admin.DeleteTenant(ctx, "default"); err == nil {
		t.Error("the operator tenant was deleted")
	}
	if err := admin.DeleteTenant(ctx, "acme"); err != nil {
		t.Errorf("delete empty tenant: %v", err)
	}
}

// TestQuotas: each quota refuses one past its limit with a message naming
// it, and allows up to it.
func TestQuotas(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	admin := client.New(e.URL, testKeyID, testSecret)
	if _, err := admin.CreateTenant(ctx, client.TenantCreate{ID: "small", Quota: client.Quota{MaxDevices: 1, MaxPackages: 1, MaxStorageBytes: 10, MaxRunningJobs: 1}}); err != nil {
		t.Fatal(err)
	}
	k, err := admin.CreateKey(ctx, "small", "admin")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(e.URL, k.ID, k.Secret)
	if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: "small-p", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDevice(ctx, "small-p", client.DeviceCreate{Name: "d1"}); err != nil {
		t.Fatalf("device inside the quota: %v", err)
	}
	if _, err := c.CreateDevice(ctx, "small-p", client.DeviceCreate{Name: "d2"}); err == nil || !strings.Contains(err.Error(), "quota of 1 devices") {
		t.Errorf("device past the quota: %v", err)
	}
	if _, err := c.UploadPackage(ctx, client.PackageMetadata{Product: "small-p", Name: "big", Version: "2"}, "fw.bin", strings.NewReader("01234567890")); err == nil || !strings.Contains(err.Error(), "storage quota of 10 bytes") {
		t.Errorf("11 bytes past a 10-byte quota: %v", err)
	}
	pkg, err := c.UploadPackage(ctx, client.PackageMetadata{Product: "small-p", Name: "fw", Version: "2"}, "fw.bin", strings.NewReader("0123456789"))
	if err != nil {
		t.Fatalf("10 bytes inside a 10-byte quota: %v", err)
	}
	if _, err := c.UploadPackage(ctx, client.PackageMetadata{Product: "small-p", Name: "fw2", Version: "3"}, "fw.bin", strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "quota of 1 packages") {
		t.Errorf("package past the quota: %v", err)
	}
	if _, err := c.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{Devices: []string{"d1"}}}); err != nil {
		t.Fatalf("job inside the quota: %v", err)
	}
	// A second job on the same package is refused by the one-unfinished-job rule
	// first, so the running-jobs quota is checked on the service directly below.
	if _, err := admin.SetQuota(ctx, "small", client.Quota{MaxRunningJobs: 1}); err != nil {
		t.Fatal(err)
	}
	pkg2, err := c.UploadPackage(ctx, client.PackageMetadata{Product: "small-p", Name: "fw2", Version: "3"}, "fw.bin", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("package after raising the quota: %v", err)
	}
	if _, err := c.CreateJob(ctx, client.JobCreate{PackageID: pkg2.ID, Target: client.JobTarget{Devices: []string{"d1"}}}); err == nil || !strings.Contains(err.Error(), "quota of 1 running jobs") {
		t.Errorf("job past the quota: %v", err)
	}
	if _, err := admin.SetQuota(ctx, "small", client.Quota{MaxDevices: -1}); err == nil {
		t.Error("a negative quota was accepted")
	}
}

func isCode(err error, code string) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Code == code
}
