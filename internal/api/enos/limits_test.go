package enos_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestSeedLimits checks every limit of seed 002 (and the envelope's
// pageSize) just inside and just outside.
func TestSeedLimits(t *testing.T) {
	e := newEnv(t)
	var devices []string
	for i := range ota.MaxVerifyDevices + 1 {
		devices = append(devices, fmt.Sprintf("d%02d", i))
	}
	e.fleet("pk-lim", "1.0", devices...)
	c := e.client()
	c.login()
	with := e.params
	upload := func(name, version string, verify bool) string {
		t.Helper()
		f := []byte(strings.Repeat(version, 100))
		a := c.upload(e.org, "pk-lim", pyMetadata(name, version, f, verify), name+".bin", f)
		wantCode(t, "upload "+name, a, 0)
		return dataField(t, a, "firmwareId")
	}
	fw := upload("fw-2", "2.0", false)
	job := func(mut func(map[string]any)) map[string]any {
		j := map[string]any{"type": "upgrade", "upgradePolicy": "snapshot", "enableUpgradeRequest": false,
			"upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{"d00"}}}
		mut(j)
		return j
	}
	create := func(what string, firmware string, body map[string]any, code int) string {
		t.Helper()
		a := c.do("ota-jobs", "create", with("firmwareId", firmware), body, nil)
		wantCode(t, what, a, code)
		if code != 0 {
			return ""
		}
		id := dataField(t, a, "jobId")
		// End the job so that the next one may take the same device.
		wantCode(t, what+": delete", c.do("ota-jobs", "delete", with("jobId", id), map[string]any{}, nil), 0)
		return id
	}
	for _, tc := range []struct {
		timeout int64
		code    int
	}{{299, 99400}, {300, 0}, {172800, 0}, {172801, 99400}} {
		create(fmt.Sprintf("upgradeTimeout %d", tc.timeout), fw, job(func(j map[string]any) { j["upgradeTimeout"] = tc.timeout }), tc.code)
	}
	create("maximumConcurrency 0", fw, job(func(j map[string]any) { j["maximumConcurrency"] = 0 }), 99400)
	create("maximumConcurrency 1", fw, job(func(j map[string]any) { j["maximumConcurrency"] = 1 }), 0)
	create("type missing", fw, job(func(j map[string]any) { delete(j, "type") }), 99400)
	create("upgradePolicy missing on an upgrade job", fw, job(func(j map[string]any) { delete(j, "upgradePolicy") }), 99400)
	create("upgradePolicy unknown", fw, job(func(j map[string]any) { j["upgradePolicy"] = "sometimes" }), 99400)
	create("asset trees cannot be honoured", fw, job(func(j map[string]any) {
		j["upgradeScope"] = map[string]any{"type": "partial", "assetTrees": []map[string]any{{"treeId": "t1", "includedNotes": []string{"a"}}}}
	}), 99400)
	create("scope productKey of another product", fw, job(func(j map[string]any) {
		j["upgradeScope"] = map[string]any{"type": "total", "productKey": "pk-other"}
	}), 99400)
	create("incremental job over versionNumbers", fw, job(func(j map[string]any) {
		j["upgradePolicy"] = "incremental"
		j["upgradeScope"] = map[string]any{"type": "total", "versionNumbers": []string{"1.0"}}
	}), 0)

	// The retry and schedule policies are kept and shown.
	a := c.do("ota-jobs", "create", with("firmwareId", fw), job(func(j map[string]any) {
		j["retryPolicy"] = map[string]any{"enableRetry": true, "retryInterval": "10", "retryCount": 5}
		j["schedulePolicy"] = map[string]any{"startTimestamp": e.clock.Now().UnixMilli(), "endTimestamp": e.clock.Now().Add(3600e9).UnixMilli(),
			"isRepeatDaily": true, "timezoneOffsetInMinutes": 480}
	}), nil)
	wantCode(t, "job with retry and schedule", a, 0)
	a = c.do("ota-jobs", "get", with("jobId", dataField(t, a, "jobId")), nil, nil)
	var info struct {
		RetryPolicy    map[string]any `json:"retryPolicy"`
		SchedulePolicy map[string]any `json:"schedulePolicy"`
	}
	_ = json.Unmarshal(a.Data, &info)
	if info.RetryPolicy["retryCount"] != float64(5) || info.SchedulePolicy["isRepeatDaily"] != true ||
		info.SchedulePolicy["timezoneOffsetInMinutes"] != float64(480) {
		t.Fatalf("retry/schedule kept = %s", a.Data)
	}

	// Verify jobs: at most ota.MaxVerifyDevices deviceKeys (24612).
	fwv := upload("fw-3", "3.0", true)
	verify := func(n int) map[string]any {
		return map[string]any{"type": "verify", "upgradeScope": map[string]any{"type": "partial", "deviceKeys": devices[:n]}}
	}
	wantCode(t, "verify just outside", c.do("ota-jobs", "create", with("firmwareId", fwv), verify(ota.MaxVerifyDevices+1), nil), 24612)
	wantCode(t, "verify just inside", c.do("ota-jobs", "create", with("firmwareId", fwv), verify(ota.MaxVerifyDevices), nil), 0)

	// pageSize 1–200.
	for _, tc := range []struct{ size, code int }{{200, 0}, {201, 99400}, {-1, 99400}} {
		a := c.do("ota-jobs", "search", with(), map[string]any{"pagination": map[string]any{"pageNo": 1, "pageSize": tc.size}}, nil)
		wantCode(t, fmt.Sprintf("pageSize %d", tc.size), a, tc.code)
	}
	wantCode(t, "pageNo 0 means the first page", c.do("ota-jobs", "search", with(), map[string]any{"pagination": map[string]any{"pageNo": 0}}, nil), 0)
	wantCode(t, "pageNo -1", c.do("ota-jobs", "search", with(), map[string]any{"pagination": map[string]any{"pageNo": -1}}, nil), 99400)
	a = c.do("ota-firmwares", "search", with(), map[string]any{"expression": "productKey = 'pk-lim'", "pagination": map[string]any{"pageNo": 2, "pageSize": 1}}, nil)
	wantCode(t, "firmware page 2", a, 0)
	if a.Pagination.TotalSize != 2 || a.Pagination.PageNo != 2 || strings.Count(string(a.Data), "firmwareId") != 1 {
		t.Fatalf("firmware page 2 = %s %+v", a.Data, a.Pagination)
	}
	wantCode(t, "OR is refused", c.do("ota-jobs", "search", with(), map[string]any{"expression": "type = 'verify' OR type = 'upgrade'"}, nil), 99400)
	wantCode(t, "like on a field that does not take it", c.do("ota-jobs", "search", with(), map[string]any{"expression": "type like 'up'"}, nil), 99400)
	a = c.do("ota-jobs", "search", with(), map[string]any{"expression": "type = \"verify\""}, nil)
	wantCode(t, "double-quoted value", a, 0)
	if a.Pagination.TotalSize != 1 {
		t.Fatalf("verify jobs = %d", a.Pagination.TotalSize)
	}
}
