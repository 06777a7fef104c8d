package aliyuniot_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

// firmware uploads file and registers it through the Tea client.
func firmware(t *testing.T, c *tea, product, name, version string, verify bool) string {
	t.Helper()
	d := c.mustCall("GenerateOTAUploadURL", nil)["Data"].(map[string]any)
	file := []byte("firmware " + name)
	if status, body := upload(t, str(d["Host"]), str(d["Key"]), str(d["OSSAccessKeyId"]), str(d["Policy"]), str(d["Signature"]), file); status != http.StatusNoContent {
		t.Fatalf("upload: %d %s", status, body)
	}
	v := "false"
	if verify {
		v = "true"
	}
	res := c.mustCall("CreateOTAFirmware", map[string]string{"FirmwareName": name, "DestVersion": version, "ProductKey": product,
		"FirmwareUrl": str(d["FirmwareUrl"]), "NeedToVerify": v, "FirmwareSign": md5hex(file)})
	return str(dig(res, "Data", "FirmwareId"))
}

// TestJobLifecycle: verify job, static job, tasks, cancel, re-upgrade,
// dynamic job and its strategy cancel, through Tea (ACS3) and the legacy SDK.
func TestJobLifecycle(t *testing.T) {
	e := newEnv(t)
	e.product("pkJob")
	e.devices("pkJob", "d1", "d2", "d3")
	c := e.tea("", e.ak, e.sk)

	verifyFw := firmware(t, c, "pkJob", "fw-verify", "2.0", true)
	vj := c.mustCall("CreateOTAVerifyJob", map[string]string{"FirmwareId": verifyFw, "ProductKey": "pkJob", "TargetDeviceName.1": "d1", "TimeoutInMinutes": "1440"})
	vq := c.mustCall("QueryOTAJob", map[string]string{"JobId": str(dig(vj, "Data", "JobId"))})
	if str(dig(vq, "Data", "JobType")) != "VERFIY_FIRMWARE" || str(dig(vq, "Data", "TimeoutInMinutes")) != "1440" {
		t.Fatalf("QueryOTAJob(verify) = %v", vq)
	}
	// An unverified package cannot be upgraded to.
	res, err := c.call("POST", "CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": verifyFw, "ProductKey": "pkJob", "TargetSelection": "ALL"})
	if err != nil || res["Success"] != false || res["Code"] != "iot.ota.FirmwareNotVerified" {
		t.Fatalf("static job on an unverified package: %v %v", err, res)
	}

	fw := firmware(t, c, "pkJob", "fw-static", "3.0", false)
	sj := c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkJob", "TargetSelection": "SPECIFIC",
		"TargetDeviceName.1": "d1", "TargetDeviceName.2": "d2", "Tag.1.Key": "k", "Tag.1.Value": "v", "MaximumPerMinute": "10", "RetryCount": "1", "RetryInterval": "10", "TimeoutInMinutes": "60"})
	jobID := str(dig(sj, "Data", "JobId"))

	// The legacy SDK reads the same job.
	l := e.legacy(e.ak, e.sk)
	q := at(e, iot.CreateQueryOTAJobRequest())
	q.JobId = jobID
	qr, err := l.QueryOTAJob(q)
	if err != nil || !qr.Success || qr.Data.JobStatus != "IN_PROGRESS" || qr.Data.TargetSelection != "SPECIFIC" || qr.Data.SelectionType != "STATIC" ||
		len(qr.Data.Tags.OtaTagDTO) != 1 || qr.Data.Tags.OtaTagDTO[0].Key != "k" || qr.Data.MaximumPerMinute != 10 || qr.Data.RetryCount != 1 {
		t.Fatalf("legacy QueryOTAJob: %v %+v", err, qr)
	}
	lj := at(e, iot.CreateListOTAJobByFirmwareRequest())
	lj.FirmwareId, lj.CurrentPage, lj.PageSize = fw, requests.NewInteger(1), requests.NewInteger(200)
	ljr, err := l.ListOTAJobByFirmware(lj)
	if err != nil || !ljr.Success || ljr.Total != 1 || len(ljr.Data.SimpleOTAJobInfo) != 1 || ljr.Data.SimpleOTAJobInfo[0].JobId != jobID {
		t.Fatalf("legacy ListOTAJobByFirmware: %v %+v", err, ljr)
	}

	tasks := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "PageSize": "100"})
	if str(tasks["Total"]) != "2" {
		t.Fatalf("ListOTATaskByJob = %v", tasks)
	}
	c.mustCall("CancelOTATaskByJob", map[string]string{"JobId": jobID, "CancelQueuedTask": "true", "CancelNotifiedTask": "true", "CancelScheduledTask": "true"})
	canceled := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": "CANCELED"})
	infos := dig(canceled, "Data", "SimpleOTATaskInfo").([]any)
	if str(canceled["Total"]) != "2" || len(infos) != 2 {
		t.Fatalf("canceled tasks = %v", canceled)
	}
	taskID := str(infos[0].(map[string]any)["TaskId"])
	c.mustCall("ReupgradeOTATask", map[string]string{"JobId": jobID, "TaskId.1": taskID})
	if left := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": "CANCELED"}); str(left["Total"]) != "1" {
		t.Fatalf("after ReupgradeOTATask, canceled = %v", left)
	}

	dynFw := firmware(t, c, "pkJob", "fw-dynamic", "4.0", false)
	dj := c.mustCall("CreateOTADynamicUpgradeJob", map[string]string{"FirmwareId": dynFw, "ProductKey": "pkJob", "SrcVersion.1": "1.0"})
	dynID := str(dig(dj, "Data", "JobId"))
	if res, _ := c.call("POST", "CancelOTAStrategyByJob", map[string]string{"JobId": jobID}); res["Success"] != false {
		t.Fatalf("CancelOTAStrategyByJob on a static job = %v", res)
	}
	c.mustCall("CancelOTAStrategyByJob", map[string]string{"JobId": dynID})
	if dq := c.mustCall("QueryOTAJob", map[string]string{"JobId": dynID}); str(dig(dq, "Data", "JobStatus")) != "CANCELED" || str(dig(dq, "Data", "SelectionType")) != "DYNAMIC" {
		t.Fatalf("dynamic job after cancel = %v", dq)
	}
	c.mustCall("DeleteOTAFirmware", map[string]string{"FirmwareId": dynFw})
}

// TestLimits: Alibaba's request limits, each just inside and just outside.
func TestLimits(t *testing.T) {
	e := newEnv(t)
	e.product("pkLim")
	e.devices("pkLim", "d1")
	c := e.tea("v2", e.ak, e.sk)
	fw := firmware(t, c, "pkLim", strings.Repeat("n", 40), "1.0", false)
	if _, err := c.call("POST", "CreateOTAFirmware", nil); err == nil {
		t.Fatal("CreateOTAFirmware without parameters succeeded")
	}
	d := c.mustCall("GenerateOTAUploadURL", nil)["Data"].(map[string]any)
	res, err := c.call("POST", "CreateOTAFirmware", map[string]string{"FirmwareName": strings.Repeat("n", 41), "DestVersion": "1", "ProductKey": "pkLim", "FirmwareUrl": str(d["FirmwareUrl"])})
	if err != nil || res["Success"] != false || res["Code"] != "iot.check.InvalidFormattedParameter" {
		t.Fatalf("41-char FirmwareName: %v %v", err, res)
	}
	// A space is fine in a package name (EnOS names have them) but not in
	// Alibaba's FirmwareName, on create and on update.
	res, err = c.call("POST", "CreateOTAFirmware", map[string]string{"FirmwareName": "fw 2", "DestVersion": "1", "ProductKey": "pkLim", "FirmwareUrl": str(d["FirmwareUrl"])})
	if err != nil || res["Success"] != false || res["Code"] != "iot.check.InvalidFormattedParameter" {
		t.Fatalf("FirmwareName with a space: %v %v", err, res)
	}
	res, err = c.call("POST", "ModifyOTAFirmware", map[string]string{"FirmwareId": fw, "ProductKey": "pkLim", "FirmwareName": "fw 2"})
	if err != nil || res["Success"] != false || res["Code"] != "iot.check.InvalidFormattedParameter" {
		t.Fatalf("ModifyOTAFirmware to a name with a space: %v %v", err, res)
	}
	for _, tc := range []struct {
		action string
		q      map[string]string
		ok     bool
	}{
		{"ListOTAFirmware", map[string]string{"PageSize": "100"}, true},
		{"ListOTAFirmware", map[string]string{"PageSize": "101"}, false},
		{"ListOTAJobByFirmware", map[string]string{"FirmwareId": fw, "PageSize": "200"}, true},
		{"ListOTAJobByFirmware", map[string]string{"FirmwareId": fw, "PageSize": "201"}, false},
		{"CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkLim", "TargetSelection": "ALL", "TimeoutInMinutes": "1441"}, false},
		{"CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkLim", "TargetSelection": "ALL", "TimeoutInMinutes": "0"}, false},
		{"CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkLim", "TargetSelection": "ALL", "MaximumPerMinute": "9"}, false},
		{"CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkLim", "TargetSelection": "ALL", "TimeoutInMinutes": "1440", "MaximumPerMinute": "10"}, true},
	} {
		res, err := c.call("POST", tc.action, tc.q)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.action, tc.q, err)
		}
		if (res["Success"] == true) != tc.ok {
			t.Fatalf("%s %v: Success=%v, want %v (%v)", tc.action, tc.q, res["Success"], tc.ok, res)
		}
	}
}
