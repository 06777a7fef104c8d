package aliyuniot_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// onlineOnly connects an Alink device that informs its version and never
// subscribes to its upgrade topic: online, on a known version, and never
// upgrading, so its tasks stay unfinished.
func (e *env) onlineOnly(dn, pk, secret, version string) {
	t := e.t
	t.Helper()
	c, err := dialAlink(t, e.srv.MQTTAddr(), dn+"|securemode=3,signmethod=hmacsha1|", dn+"&"+pk,
		sign(t, "hmacsha1", secret, mqtt.AlinkSignContent(dn, dn, pk, "")))
	if err != nil {
		t.Fatal(err)
	}
	tok := c.Publish(mqtt.AlinkInformTopic(pk, dn), 1, false, `{"id":"1","params":{"version":"`+version+`"}}`)
	testenv.Within(t, time.Minute, "the PUBACK of an inform", func() { tok.Wait() })
	testenv.Within(t, time.Minute, "the informed version of "+dn, func() {
		for {
			if d, err := e.svc.DeviceForAuth(context.Background(), ota.DeviceRef{ProductKey: pk, Name: dn}); err == nil && d.Version("") == version && d.Online {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestDeviceTaskOperations: ListOTAUnfinishedTaskByDevice, ConfirmOTATask,
// CancelOTATaskByDevice and UpdateOTAJob through the legacy SDK's typed
// requests, each read back right after the call; bad input changes nothing;
// limits just inside and just outside.
func TestDeviceTaskOperations(t *testing.T) {
	e := newMQTTEnv(t)
	secrets := e.alibabaProduct("pkDev", "d1", "d2", "d3")
	for _, dn := range []string{"d1", "d2", "d3"} {
		e.onlineOnly(dn, "pkDev", secrets[dn], "1.0")
	}
	c := e.tea("", e.ak, e.sk)
	l := e.legacy(e.ak, e.sk)
	fw := firmware(t, c, "pkDev", "fw-dev", "2.0", false)
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkDev", "TargetSelection": "SPECIFIC",
		"TargetDeviceName.1": "d1", "TargetDeviceName.2": "d2", "TargetDeviceName.3": "d3", "NeedConfirm": "true", "Tag.1.Key": "k", "Tag.1.Value": "v"}), "Data", "JobId"))

	unfinished := func(dn string) []iot.SimpleOTATaskInfo {
		t.Helper()
		r := at(e, iot.CreateListOTAUnfinishedTaskByDeviceRequest())
		r.ProductKey, r.DeviceName = "pkDev", dn
		res, err := l.ListOTAUnfinishedTaskByDevice(r)
		if err != nil || !res.Success {
			t.Fatalf("ListOTAUnfinishedTaskByDevice(%s): %v %+v", dn, err, res)
		}
		return res.Data.SimpleOTATaskInfo
	}
	u := unfinished("d1")
	if len(u) != 1 || u[0].TaskStatus != "CONFIRM" || u[0].JobId != jobID || u[0].FirmwareId != fw || u[0].ModuleName == "" || u[0].DestVersion != "2.0" {
		t.Fatalf("d1 unfinished = %+v", u)
	}
	d1Task := u[0].TaskId
	// IotId names the device too; a status outside the four is refused.
	r := at(e, iot.CreateListOTAUnfinishedTaskByDeviceRequest())
	r.IotId, r.TaskStatusList = "pkDev.d2", &[]string{"QUEUED"}
	if res, err := l.ListOTAUnfinishedTaskByDevice(r); err != nil || !res.Success || len(res.Data.SimpleOTATaskInfo) != 0 {
		t.Fatalf("d2 QUEUED tasks = %v %+v, want none (it awaits confirmation)", err, res)
	}
	r.TaskStatusList = &[]string{"SUCCEEDED"}
	if res, err := l.ListOTAUnfinishedTaskByDevice(r); err != nil || res.Success {
		t.Fatalf("TaskStatusList SUCCEEDED: %v %+v, want refused", err, res)
	}

	// ConfirmOTATask: CONFIRM → QUEUED (or NOTIFIED: the engine runs).
	// confirm returns "" on success, else the error code (a gateway 4xx or
	// Success:false).
	confirm := func(ids ...string) string {
		t.Helper()
		r := at(e, iot.CreateConfirmOTATaskRequest())
		r.TaskId = &ids
		res, err := l.ConfirmOTATask(r)
		if err != nil {
			code, _ := legacyCode(t, err)
			return code
		}
		if !res.Success {
			return res.Code
		}
		return ""
	}
	if code := confirm(d1Task); code != "" {
		t.Fatalf("ConfirmOTATask: %s", code)
	}
	if u := unfinished("d1"); len(u) != 1 || u[0].TaskStatus != "QUEUED" && u[0].TaskStatus != "NOTIFIED" {
		t.Fatalf("d1 after confirm = %+v", u)
	}
	if code := confirm(d1Task); code == "" {
		t.Fatal("confirming a confirmed task again succeeded")
	}
	if code := confirm("x"); code != "InvalidParameter" {
		t.Fatalf("ConfirmOTATask(x) = %q, want InvalidParameter", code)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = strconv.Itoa(900000 + i)
	}
	if code := confirm(many...); code == "" {
		t.Fatal("101 TaskId.N accepted")
	}
	if code := confirm(append(many[:99], u[0].TaskId)...); code == "" {
		t.Fatal("100 TaskId.N, 99 unknown, accepted")
	} else if code101 := confirm(many...); code == code101 {
		t.Fatalf("100 and 101 TaskId.N refused alike (%s): the count limit is not 100", code)
	}
	if u := unfinished("d2"); len(u) != 1 || u[0].TaskStatus != "CONFIRM" {
		t.Fatalf("refused confirms changed d2: %+v", u)
	}

	// CancelOTATaskByDevice cancels queued, notified and in-progress tasks
	// of the named devices only; a task awaiting confirmation stays.
	cancel := func(pk string, names ...string) *iot.CancelOTATaskByDeviceResponse {
		t.Helper()
		r := at(e, iot.CreateCancelOTATaskByDeviceRequest())
		r.FirmwareId, r.ProductKey, r.DeviceName = fw, pk, &names
		res, err := l.CancelOTATaskByDevice(r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := cancel("pkOther", "d1"); res.Success {
		t.Fatalf("cancel with another product's key succeeded: %+v", res)
	}
	tooMany := make([]string, 201)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("x%d", i)
	}
	if res := cancel("pkDev", tooMany...); res.Success {
		t.Fatal("201 DeviceName.N accepted")
	}
	if u := unfinished("d1"); len(u) != 1 {
		t.Fatalf("refused cancels changed d1: %+v", u)
	}
	if res := cancel("pkDev", append(tooMany[:199], "d1")...); !res.Success {
		t.Fatalf("cancel 200 devices: %+v", res)
	}
	if u := unfinished("d1"); len(u) != 0 {
		t.Fatalf("d1 after cancel = %+v, want no unfinished task", u)
	}
	if res := cancel("pkDev", "d2"); !res.Success {
		t.Fatalf("cancel d2: %+v", res)
	}
	if u := unfinished("d2"); len(u) != 1 || u[0].TaskStatus != "CONFIRM" {
		t.Fatalf("d2 (CONFIRM) after cancel = %+v, want it kept", u)
	}
	canceled := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": "CANCELED"})
	if str(canceled["Total"]) != "1" {
		t.Fatalf("canceled tasks = %v", canceled)
	}

	// UpdateOTAJob: MaximumPerMinute always; Tags replace (omitted: cleared).
	update := func(per string, tags []iot.UpdateOTAJobTags, timeout string) string {
		t.Helper()
		r := at(e, iot.CreateUpdateOTAJobRequest())
		r.JobId = jobID
		if per != "" {
			r.MaximumPerMinute = requests.Integer(per)
		}
		if tags != nil {
			r.Tags = &tags
		}
		if timeout != "" {
			r.TimeoutInMinutes = requests.Integer(timeout)
		}
		res, err := l.UpdateOTAJob(r)
		if err != nil {
			code, _ := legacyCode(t, err)
			return code
		}
		if !res.Success {
			return res.Code
		}
		return ""
	}
	query := func() map[string]any {
		return c.mustCall("QueryOTAJob", map[string]string{"JobId": jobID})
	}
	for _, per := range []string{"", "9", "10001"} {
		if update(per, []iot.UpdateOTAJobTags{{Key: "x", Value: "y"}}, "") == "" {
			t.Fatalf("UpdateOTAJob MaximumPerMinute=%q succeeded", per)
		}
	}
	if update("20", nil, "30") == "" {
		t.Fatal("TimeoutInMinutes on a static job accepted")
	}
	if q := query(); str(dig(q, "Data", "MaximumPerMinute")) != "10000" || len(dig(q, "Data", "Tags", "OtaTagDTO").([]any)) != 1 {
		t.Fatalf("refused updates changed the job: %v", q)
	}
	for _, per := range []string{"10", "10000", "20"} {
		if code := update(per, []iot.UpdateOTAJobTags{{Key: "k2", Value: "v2"}}, ""); code != "" {
			t.Fatalf("UpdateOTAJob MaximumPerMinute=%s: %s", per, code)
		}
	}
	q := query()
	tags := dig(q, "Data", "Tags", "OtaTagDTO").([]any)
	if str(dig(q, "Data", "MaximumPerMinute")) != "20" || len(tags) != 1 || tags[0].(map[string]any)["Key"] != "k2" {
		t.Fatalf("after UpdateOTAJob: %v", q)
	}
	if code := update("20", nil, ""); code != "" {
		t.Fatalf("UpdateOTAJob without tags: %s", code)
	}
	if q := query(); dig(q, "Data", "Tags") != nil && len(dig(q, "Data", "Tags", "OtaTagDTO").([]any)) != 0 {
		t.Fatalf("tags after an update without Tags.N = %v, want none", dig(q, "Data", "Tags"))
	}

	// ListOTAJobByDevice: the firmware's batches with a task for the device.
	fw2 := firmware(t, c, "pkDev", "fw-dev2", "2.1", false)
	job2 := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw2, "ProductKey": "pkDev", "TargetSelection": "SPECIFIC",
		"TargetDeviceName.1": "d1"}), "Data", "JobId"))
	byDevice := func(fw, dn, size string) (*iot.ListOTAJobByDeviceResponse, string) {
		t.Helper()
		r := at(e, iot.CreateListOTAJobByDeviceRequest())
		r.FirmwareId, r.ProductKey, r.DeviceName, r.PageSize = fw, "pkDev", dn, requests.Integer(size)
		res, err := l.ListOTAJobByDevice(r)
		if err != nil {
			code, _ := legacyCode(t, err)
			return nil, code
		}
		if !res.Success {
			return res, res.Code
		}
		return res, ""
	}
	if res, code := byDevice(fw, "d1", "100"); code != "" || res.Total != 1 || len(res.Data.SimpleOTAJobInfo) != 1 || res.Data.SimpleOTAJobInfo[0].JobId != jobID {
		t.Fatalf("ListOTAJobByDevice(fw, d1) = %+v %s", res, code)
	}
	if res, code := byDevice(fw2, "d1", "1"); code != "" || res.Total != 1 || res.Data.SimpleOTAJobInfo[0].JobId != job2 || res.PageCount != 1 {
		t.Fatalf("ListOTAJobByDevice(fw2, d1) = %+v %s", res, code)
	}
	if res, code := byDevice(fw2, "d2", "10"); code != "" || res.Total != 0 {
		t.Fatalf("ListOTAJobByDevice(fw2, d2) = %+v %s, want none", res, code)
	}
	if _, code := byDevice(fw, "d1", "101"); code == "" {
		t.Fatal("PageSize 101 accepted")
	}
	if _, code := byDevice(fw, "d9", "10"); code == "" {
		t.Fatal("an unknown device was accepted")
	}

	// A dynamic job takes TimeoutInMinutes and SrcVersionList.
	dynFw := firmware(t, c, "pkDev", "fw-dyn", "3.0", false)
	dynID := str(dig(c.mustCall("CreateOTADynamicUpgradeJob", map[string]string{"FirmwareId": dynFw, "ProductKey": "pkDev", "SrcVersion.1": "1.0"}), "Data", "JobId"))
	res, err := c.call("POST", "UpdateOTAJob", map[string]string{"JobId": dynID, "MaximumPerMinute": "30", "TimeoutInMinutes": "1441"})
	if err != nil || res["Success"] != false {
		t.Fatalf("TimeoutInMinutes 1441: %v %v", err, res)
	}
	c.mustCall("UpdateOTAJob", map[string]string{"JobId": dynID, "MaximumPerMinute": "30", "TimeoutInMinutes": "1440", "SrcVersionList.1": "1.0", "SrcVersionList.2": "1.1"})
	dq := c.mustCall("QueryOTAJob", map[string]string{"JobId": dynID})
	if str(dig(dq, "Data", "TimeoutInMinutes")) != "1440" || len(dig(dq, "Data", "SrcVersions", "SrcVersion").([]any)) != 2 {
		t.Fatalf("dynamic job after UpdateOTAJob: %v", dq)
	}
}
