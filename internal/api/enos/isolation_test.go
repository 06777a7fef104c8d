package enos_test

import (
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// TestTenantIsolation: an app key of a second organization (tenant) sees
// nothing of the first one's firmware, jobs and tasks, cannot read, stop or
// delete them by id, and cannot act in the first organization at all.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	e.fleet("pk-iso", "1.0", "dev1", "dev2")
	c := e.client()
	c.login()
	file := []byte(strings.Repeat("iso ", 100))
	a := c.upload(e.org, "pk-iso", pyMetadata("iso-fw", "2.0", file, false), "iso.bin", file)
	wantCode(t, "create firmware", a, 0)
	fw := dataField(t, a, "firmwareId")
	a = c.do("ota-jobs", "create", map[string]string{"orgId": e.org, "firmwareId": fw}, map[string]any{
		"name": map[string]any{"defaultValue": "iso"}, "type": "upgrade", "upgradeTimeout": 3600, "upgradePolicy": "snapshot", "enableUpgradeRequest": false,
		"upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{"dev1", "dev2"}}}, nil)
	wantCode(t, "create job", a, 0)
	job := dataField(t, a, "jobId")
	wantCode(t, "start job", c.do("ota-jobs", "start", map[string]string{"orgId": e.org, "jobId": job}, map[string]any{}, nil), 0)

	boot := e.p
	boot.Role = ota.RoleAdmin
	if _, err := e.svc.CreateTenant(e.ctx, boot, service.TenantInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := e.svc.CreateAccessKey(e.ctx, boot, "acme", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	acme := e.client()
	acme.appKey, acme.secret = k.ID, k.Secret
	acme.login()
	own := map[string]string{"orgId": "acme"}
	for _, s := range []struct{ resource, action, expr string }{
		{"ota-firmwares", "search", "productKey = 'pk-iso'"},
		{"ota-firmwares", "search", "firmwareId = '" + fw + "'"},
		{"ota-jobs", "search", "firmwareId = '" + fw + "'"},
		{"ota-jobs", "searchTask", "jobId = '" + job + "'"},
	} {
		a := acme.do(s.resource, s.action, own, map[string]any{"expression": s.expr}, nil)
		if a.Code == 0 && (a.Pagination == nil || a.Pagination.TotalSize != 0) {
			t.Errorf("acme %s %s %q = %s %+v, want nothing", s.resource, s.action, s.expr, a.Data, a.Pagination)
		}
	}
	with := func(kv ...string) map[string]string { return orgParams("acme", kv...) }
	wantCode(t, "acme gets the firmware", acme.do("ota-firmwares", "get", with("firmwareId", fw), nil, nil), 24404)
	for _, action := range []string{"get", "stop", "delete"} {
		if a := acme.do("ota-jobs", action, with("jobId", job), map[string]any{}, nil); a.Code == 0 {
			t.Errorf("acme %s default's job: %s", action, a.Data)
		}
	}
	if a := acme.do("ota-firmwares", "delete", with("firmwareId", fw), map[string]any{}, nil); a.Code == 0 {
		t.Errorf("acme deletes default's firmware: %s", a.Data)
	}
	// acme's key in the first organization is refused.
	if a := acme.do("ota-firmwares", "get", map[string]string{"orgId": e.org, "firmwareId": fw}, nil, nil); a.Code == 0 {
		t.Errorf("acme's key in org %s: %s", e.org, a.Data)
	}

	// Nothing of the first organization changed.
	wantCode(t, "get firmware after acme", c.do("ota-firmwares", "get", map[string]string{"orgId": e.org, "firmwareId": fw}, nil, nil), 0)
	a = c.do("ota-jobs", "search", map[string]string{"orgId": e.org}, map[string]any{"expression": "firmwareId = '" + fw + "' AND status = 'started'"}, nil)
	if wantCode(t, "search job after acme", a, 0); a.Pagination == nil || a.Pagination.TotalSize != 1 {
		t.Errorf("default's job after acme's calls: %s %+v", a.Data, a.Pagination)
	}
}
