package enos_test

import (
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// TestReadonlyKey: a readonly key may search but not change anything, and
// the refusal is EnOS's access-denied code.
func TestReadonlyKey(t *testing.T) {
	e := newEnv(t)
	admin := service.Principal{TenantID: e.org, AccessKeyID: e.appKey, Role: ota.RoleAdmin}
	ro, err := e.svc.CreateAccessKey(e.ctx, admin, "", ota.RoleReadonly)
	if err != nil {
		t.Fatal(err)
	}
	c := &enosClient{t: t, base: e.url, appKey: ro.ID, secret: ro.Secret, now: e.clock.Now}
	c.login()
	q := map[string]string{"orgId": e.org}
	wantCode(t, "readonly search", c.do("ota-jobs", "search", q, map[string]any{"expression": "type = 'upgrade'"}, nil), 0)
	wantCode(t, "readonly start", c.do("ota-jobs", "start", map[string]string{"orgId": e.org, "jobId": "nope"}, map[string]any{}, nil), 99403)
	wantCode(t, "readonly delete firmware", c.do("ota-firmwares", "delete", map[string]string{"orgId": e.org, "firmwareId": "nope"}, map[string]any{}, nil), 99403)
}
