package enos_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// TestLifecycle drives seed 002's flow with the documentation client: token
// → firmware create → get/search → verify job → upgrade job create → start →
// get/search → tasks → cancel → retry → stop → delete.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	devices := []string{"dev1", "dev2", "dev3", "dev4", "dev5", "dev6"}
	e.fleet("pk-meter", "1.0", devices...)
	c := e.client()
	c.login()
	org := map[string]string{"orgId": e.org}
	with := e.params

	// Firmware that must be verified, with the Python sample's metadata.
	file := []byte(strings.Repeat("firmware-2.0 ", 1000))
	a := c.upload(e.org, "pk-meter", pyMetadata("meter-fw-2", "2.0", file, true), "meter-2.0.bin", file)
	wantCode(t, "create firmware", a, 0)
	fwVerify := dataField(t, a, "firmwareId")
	a = c.do("ota-firmwares", "get", with("firmwareId", fwVerify), nil, nil) // GET, as the Python sample sends it
	wantCode(t, "get firmware", a, 0)
	var fw map[string]any
	_ = json.Unmarshal(a.Data, &fw)
	if fw["version"] != "2.0" || fw["isVerified"] != false || fw["enableVerification"] != true ||
		!strings.HasPrefix(fmt.Sprint(fw["fileUrl"]), "enos-connect://") || fw["fileSize"] != float64(len(file)) {
		t.Fatalf("get firmware = %s", a.Data)
	}
	a = c.do("ota-firmwares", "search", org, map[string]any{"expression": "productKey = 'pk-meter' AND version = '2.0'",
		"pagination": map[string]any{"pageNo": 1, "pageSize": 10}}, nil)
	wantCode(t, "search firmware", a, 0)
	if a.Pagination == nil || a.Pagination.TotalSize != 1 || !strings.Contains(string(a.Data), fwVerify) {
		t.Fatalf("search firmware = %s %+v", a.Data, a.Pagination)
	}
	wantCode(t, "search firmware: unknown field", c.do("ota-firmwares", "search", org, map[string]any{"expression": "color = 'red'"}, nil), 99400)
	// like: a fuzzy match on the name, SQL-style '%' allowed around it.
	for expr, want := range map[string]int64{"name.defaultValue like 'meter-fw'": 1, "name like '%fw-2%'": 1, "name like 'nothing'": 0} {
		a = c.do("ota-firmwares", "search", org, map[string]any{"expression": expr}, nil)
		wantCode(t, "search firmware: "+expr, a, 0)
		if a.Pagination == nil || a.Pagination.TotalSize != want {
			t.Fatalf("search firmware %q: %s %+v, want %d", expr, a.Data, a.Pagination, want)
		}
	}
	wantCode(t, "get unknown firmware", c.do("ota-firmwares", "get", with("firmwareId", "nope"), nil, nil), 24404)

	// An upgrade job on unverified firmware is refused (24610).
	upgrade := map[string]any{"name": map[string]any{"defaultValue": "upgrade meters", "i18nValue": map[string]string{"zh_CN": "升级"}},
		"type": "upgrade", "upgradePolicy": "snapshot", "enableUpgradeRequest": true, "upgradeTimeout": 3600,
		"upgradeScope":       map[string]any{"type": "partial", "deviceKeys": devices[1:], "versionNumbers": []string{"1.0"}},
		"retryPolicy":        map[string]any{"enableRetry": false},
		"maximumConcurrency": 100}
	wantCode(t, "upgrade on unverified firmware", c.do("ota-jobs", "create", with("firmwareId", fwVerify), upgrade, nil), 24610)

	// Verify job: partial only (24611), within the device limit.
	verify := map[string]any{"name": map[string]any{"defaultValue": "verify"}, "type": "verify", "upgradeTimeout": 600,
		"upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{"dev1"}}}
	total := map[string]any{"type": "verify", "upgradeScope": map[string]any{"type": "total"}}
	wantCode(t, "verify job with total scope", c.do("ota-jobs", "create", with("firmwareId", fwVerify), total, nil), 24611)
	a = c.do("ota-jobs", "create", with("firmwareId", fwVerify), verify, nil)
	wantCode(t, "create verify job", a, 0)
	verifyJob := dataField(t, a, "jobId")
	wantCode(t, "start verify job", c.do("ota-jobs", "start", with("jobId", verifyJob), map[string]any{}, nil), 0)

	// A second firmware without verification for the upgrade job.
	file3 := []byte(strings.Repeat("firmware-3.0 ", 1000))
	a = c.upload(e.org, "pk-meter", pyMetadata("meter-fw-3", "3.0", file3, false), "meter-3.0.bin", file3)
	wantCode(t, "create firmware 3.0", a, 0)
	fw3 := dataField(t, a, "firmwareId")
	a = c.do("ota-jobs", "create", with("firmwareId", fw3), upgrade, nil)
	wantCode(t, "create upgrade job", a, 0)
	job := dataField(t, a, "jobId")

	a = c.do("ota-jobs", "get", with("jobId", job), map[string]any{}, nil)
	wantCode(t, "get job", a, 0)
	var info map[string]any
	_ = json.Unmarshal(a.Data, &info)
	if info["status"] != "stopped" || info["type"] != "upgrade" || info["upgradeTimeout"] != float64(3600) ||
		info["firmwareVersion"] != "3.0" || info["maximumConcurrency"] != float64(100) || info["upgradePolicy"] != "snapshot" {
		t.Fatalf("get job before start = %s", a.Data)
	}
	wantCode(t, "cancel before start", c.do("ota-jobs", "cancelTask", with("jobId", job), map[string]any{"deviceKeys": []string{"dev2"}}, nil), 24617)
	wantCode(t, "start", c.do("ota-jobs", "start", with("jobId", job), map[string]any{}, nil), 0)
	wantCode(t, "start again", c.do("ota-jobs", "start", with("jobId", job), map[string]any{}, nil), 24615)
	a = c.do("ota-jobs", "search", org, map[string]any{"expression": "firmwareId = '" + fw3 + "' AND status = 'started'"}, nil)
	wantCode(t, "search jobs", a, 0)
	if a.Pagination.TotalSize != 1 || !strings.Contains(string(a.Data), job) {
		t.Fatalf("search jobs = %s", a.Data)
	}
	a = c.do("ota-jobs", "search", org, map[string]any{"expression": "firmwareId = '" + fw3 + "' AND name like 'meters'"}, nil)
	wantCode(t, "search jobs by name", a, 0)
	if a.Pagination.TotalSize != 1 || !strings.Contains(string(a.Data), job) {
		t.Fatalf("search jobs by name like = %s", a.Data)
	}
	a = c.do("ota-jobs", "search", org, map[string]any{"expression": "name like 'no such job'"}, nil)
	if wantCode(t, "search jobs by another name", a, 0); a.Pagination.TotalSize != 0 {
		t.Fatalf("search jobs by a name no job has = %s", a.Data)
	}

	// The engine notifies the devices: tasks published.
	if _, err := e.svc.Advance(e.ctx); err != nil {
		t.Fatal(err)
	}
	tasks := func(expr string) answer {
		t.Helper()
		a := c.do("ota-jobs", "searchTask", org, map[string]any{"expression": expr, "pagination": map[string]any{"pageSize": 200}}, nil)
		wantCode(t, "searchTask "+expr, a, 0)
		return a
	}
	if a := tasks("jobId = '" + job + "' AND status = 'published'"); a.Pagination.TotalSize != 5 {
		t.Fatalf("published tasks = %d: %s", a.Pagination.TotalSize, a.Data)
	}
	// dev2 upgrades (progress → upgrading), dev3 fails.
	report := func(dev string, step int) {
		t.Helper()
		if err := e.svc.ReportProgress(e.ctx, ota.DeviceRef{ProductKey: "pk-meter", Name: dev}, service.Progress{Step: step}); err != nil {
			t.Fatal(err)
		}
	}
	report("dev2", 50)
	report("dev3", -1)
	if a := tasks("jobId = '" + job + "' AND deviceKey in ('dev2') AND status = 'upgrading'"); a.Pagination.TotalSize != 1 {
		t.Fatalf("upgrading dev2: %s", a.Data)
	}
	wantCode(t, "cancel an upgrading task", c.do("ota-jobs", "cancelTask", with("jobId", job), map[string]any{"deviceKeys": []string{"dev2"}}, nil), 24620)
	wantCode(t, "cancel published tasks", c.do("ota-jobs", "cancelTask", with("jobId", job), map[string]any{"deviceKeys": []string{"dev4", "dev5"}}, nil), 0)
	if a := tasks("jobId = '" + job + "' AND status in ('canceled')"); a.Pagination.TotalSize != 2 {
		t.Fatalf("canceled tasks: %s", a.Data)
	}
	wantCode(t, "retry a canceled task", c.do("ota-jobs", "retryTask", with("jobId", job), map[string]any{"deviceKeys": []string{"dev4"}}, nil), 24621)
	wantCode(t, "retry without deviceKeys", c.do("ota-jobs", "retryTask", with("jobId", job), map[string]any{}, nil), 99400)
	wantCode(t, "retry the failed task", c.do("ota-jobs", "retryTask", with("jobId", job), map[string]any{"deviceKeys": []string{"dev3"}}, nil), 0)
	if a := tasks("jobId = '" + job + "' AND deviceKey = 'dev3' AND status in ('init', 'published')"); a.Pagination.TotalSize != 1 {
		t.Fatalf("dev3 after retry: %s", a.Data)
	}
	wantCode(t, "stop", c.do("ota-jobs", "stop", with("jobId", job), map[string]any{}, nil), 0)
	wantCode(t, "stop a stopped job", c.do("ota-jobs", "stop", with("jobId", job), map[string]any{}, nil), 24617)
	a = c.do("ota-jobs", "get", with("jobId", job), nil, nil)
	if dataField(t, a, "status") != "stopped" {
		t.Fatalf("status after stop = %s", a.Data)
	}
	wantCode(t, "resume (start a stopped job)", c.do("ota-jobs", "start", with("jobId", job), map[string]any{}, nil), 0)
	wantCode(t, "firmware in use cannot be deleted", c.do("ota-firmwares", "delete", with("firmwareId", fw3), nil, nil), 24604)
	wantCode(t, "delete job", c.do("ota-jobs", "delete", with("jobId", job), map[string]any{}, nil), 0)
	wantCode(t, "get deleted job", c.do("ota-jobs", "get", with("jobId", job), map[string]any{}, nil), 24404)
	wantCode(t, "delete firmware", c.do("ota-firmwares", "delete", with("firmwareId", fw3), nil, nil), 0)
	wantCode(t, "get deleted firmware", c.do("ota-firmwares", "get", with("firmwareId", fw3), nil, nil), 24404)
}
