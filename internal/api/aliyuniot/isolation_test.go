package aliyuniot_test

import (
	"context"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// TestTenantIsolation: an admin key of a second tenant, signing like the Tea
// SDK, sees nothing of the default tenant's firmware, jobs and tasks, and
// cannot read, cancel or delete them by id.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	e.product("pkIso")
	e.devices("pkIso", "d1", "d2")
	c := e.tea("", e.ak, e.sk)
	fw := firmware(t, c, "pkIso", "fw-iso", "2.0", false)
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkIso",
		"TargetSelection": "SPECIFIC", "TargetDeviceName.1": "d1", "TargetDeviceName.2": "d2"}), "Data", "JobId"))

	ctx := context.Background()
	boot := e.p
	boot.Role = ota.RoleAdmin
	if _, err := e.svc.CreateTenant(ctx, boot, service.TenantInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := e.svc.CreateAccessKey(ctx, boot, "acme", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	acme := e.tea("", k.ID, k.Secret)

	if list := acme.mustCall("ListOTAFirmware", map[string]string{"CurrentPage": "1", "PageSize": "100"}); str(list["Total"]) != "0" {
		t.Errorf("acme ListOTAFirmware = %v, want nothing", list)
	}
	for _, q := range []struct {
		action string
		query  map[string]string
	}{
		{"ListOTAFirmware", map[string]string{"CurrentPage": "1", "PageSize": "100", "ProductKey": "pkIso"}},
		{"QueryOTAFirmware", map[string]string{"FirmwareId": fw}},
		{"QueryOTAJob", map[string]string{"JobId": jobID}},
		{"ListOTAJobByFirmware", map[string]string{"FirmwareId": fw, "CurrentPage": "1", "PageSize": "100"}},
		{"ListOTATaskByJob", map[string]string{"JobId": jobID, "PageSize": "100"}},
		{"CancelOTATaskByJob", map[string]string{"JobId": jobID, "CancelQueuedTask": "true", "CancelNotifiedTask": "true", "CancelScheduledTask": "true", "CancelInProgressTask": "true"}},
		{"CancelOTAStrategyByJob", map[string]string{"JobId": jobID}},
		{"DeleteOTAFirmware", map[string]string{"FirmwareId": fw}},
	} {
		res, err := acme.call("POST", q.action, q.query)
		if err != nil {
			t.Errorf("acme %s: %v", q.action, err)
			continue
		}
		// Either refused as not found, or an empty answer: never default's data.
		if res["Success"] == true && str(res["Total"]) != "0" {
			t.Errorf("acme %s on default's resources = %v", q.action, res)
		}
		if res["Success"] == false && res["Code"] != "iot.common.ResourceNotFound" && res["Code"] != "iot.ota.FirmwareNotFound" &&
			res["Code"] != "iot.ota.JobNotFound" && res["Code"] != "iot.prod.NotExistedProduct" {
			t.Errorf("acme %s refused with %v, want a not-found code", q.action, res["Code"])
		}
	}

	// Nothing of default's changed: the firmware is there and both tasks are live.
	c.mustCall("QueryOTAFirmware", map[string]string{"FirmwareId": fw})
	tasks := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "PageSize": "100"})
	if str(tasks["Total"]) != "2" {
		t.Fatalf("default's tasks after acme's calls = %v", tasks)
	}
	if canceled := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": "CANCELED"}); str(canceled["Total"]) != "0" {
		t.Errorf("acme canceled default's tasks: %v", canceled)
	}
	if job := c.mustCall("QueryOTAJob", map[string]string{"JobId": jobID}); str(dig(job, "Data", "JobStatus")) != "IN_PROGRESS" {
		t.Errorf("default's job after acme's calls = %v", job)
	}
}
