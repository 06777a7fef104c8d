package huaweiiotda_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
)

// TestHuaweiDeviceLifecycle is the whole Huawei flow end to end on the real
// server and its embedded broker: put an object, CreateOtaPackage with the
// object's real SHA-256 as sign, CreateBatchTask on devices that speak IoTDA's
// MQTT protocol, the devices download, check and upgrade, and ShowBatchTask
// reports them all Success; in the second run the last device fails its
// package check and is reported Fail (the task PartialSuccess).
//
// LikeSDK runs the same with devices built the way the official device SDKs
// behave (issue 8, item 1): they never SUBSCRIBE to their down topic and
// report their versions only when asked with version_query, so they are
// upgraded only because the broker subscribes them on connect and Updraft
// asks for the version.
func TestHuaweiDeviceLifecycle(t *testing.T) {
	t.Run("AllSucceed", func(t *testing.T) { huaweiLifecycle(t, false, false, false) })
	t.Run("OneFailsCheck", func(t *testing.T) { huaweiLifecycle(t, true, false, false) })
	t.Run("LikeSDK", func(t *testing.T) { huaweiLifecycle(t, false, true, false) })
	// Devices that report their versions only with $sdk_info (and ignore
	// version_query): the report is recorded, not dropped.
	t.Run("LikeSDKWithSDKInfo", func(t *testing.T) { huaweiLifecycle(t, false, true, true) })
}

func huaweiLifecycle(t *testing.T, failLast, likeSDK, sdkInfo bool) {
	e := newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	ctx := context.Background()
	// A product key with "_" and a shorter one that is its prefix: device
	// ids resolve to the longest registered product key.
	e.product("acme_x")
	// "acme" is a native product: a Huawei product "acme" could not have a
	// device "x_node_1" (its id would be acme_x/node_1's).
	if _, err := e.svc.CreateProduct(ctx, e.p, ota.Product{Key: "acme", Name: "Native acme"}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	var sims []*huaweiiotda.SimDevice
	var targets []string
	for i := 1; i <= n; i++ {
		d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "acme_x", Name: fmt.Sprintf("node_%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		sim := &huaweiiotda.SimDevice{DeviceID: huaweiiotda.DeviceID(d.ProductKey, d.Name), Secret: d.Secret, Broker: e.srv.MQTTAddr(), FwVersion: "V1.0", SwVersion: "S1", LikeSDK: likeSDK, SDKInfo: sdkInfo}
		if failLast && i == n {
			sim.FailCode = 7 // reports a failed package check
		}
		sims = append(sims, sim)
		targets = append(targets, sim.DeviceID)
	}
	// The same device id read the other way: product acme, device x_node_1.
	other, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "acme", Name: "x_node_1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sims {
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
	}
	// acme/x_node_1's secret does not open acme_x_node_1: that is acme_x/node_1.
	impostor := &huaweiiotda.SimDevice{DeviceID: "acme_x_node_1", Secret: other.Secret, Broker: e.srv.MQTTAddr()}
	if err := impostor.Connect(ctx); err == nil {
		impostor.Close()
		t.Fatal("a device connected with another device's secret")
	}
	// The version reports arrived.
	waitFor(t, func() bool {
		d, err := e.svc.GetDevice(ctx, e.p, "acme_x", "node_1")
		return err == nil && d.Version("") == "V1.0"
	})

	image := []byte("acme_x firmware V2.0 " + time.Now().String())
	sum := e.putObject("acme-firmware", "releases/v2.0/app.bin", image)
	c := e.client(modeV11)
	pkg, err := c.CreateOtaPackage(createPkgReq("acme_x", "V2.0", "acme-firmware", "releases/v2.0/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	var doc any = map[string]any{"package_ids": []string{*pkg.PackageId}}
	var ext any = map[string]any{"wave": 1}
	task, err := c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: &model.CreateBatchTask{
		TaskName: "acme_V2", TaskType: "firmwareUpgrade", Targets: &targets, Document: &doc, TaskExtInfo: &ext,
	}})
	if err != nil {
		t.Fatal(err)
	}

	var shown *model.ShowBatchTaskResponse
	waitFor(t, func() bool {
		e.advance()
		shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId, Limit: ptr(int32(50))})
		if err != nil {
			t.Fatal(err)
		}
		p := shown.Batchtask.TaskProgress
		return *p.Success+*p.Fail == n
	})
	e.advance()
	shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId, Limit: ptr(int32(50))})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range *shown.TaskDetails {
		want := "Success"
		if failLast && *d.Target == sims[n-1].DeviceID {
			want = "Fail"
			if d.Error == nil || *d.Error.ErrorCode != "verify_failed" {
				t.Errorf("%s failed with %+v, want verify_failed", *d.Target, d.Error)
			}
		}
		if *d.Status != want {
			t.Errorf("%s is %s, want %s", *d.Target, *d.Status, want)
		}
	}
	wantStatus, wantSuccess, upgraded := "Success", int32(n), sims
	if failLast {
		wantStatus, wantSuccess, upgraded = "PartialSuccess", n-1, sims[:n-1]
	}
	if len(*shown.TaskDetails) != n {
		t.Errorf("%d task details, want %d", len(*shown.TaskDetails), n)
	}
	if *shown.Batchtask.Status != wantStatus || *shown.Batchtask.TaskProgress.Success != wantSuccess {
		t.Errorf("task: status %s, progress %+v; want %s with %d Success", *shown.Batchtask.Status, *shown.Batchtask.TaskProgress, wantStatus, wantSuccess)
	}
	for _, s := range upgraded {
		if fw, _ := s.Versions(); fw != "V2.0" {
			t.Errorf("%s runs %s", s.DeviceID, fw)
		}
		d, err := e.svc.GetDevice(ctx, e.p, "acme_x", s.DeviceID[len("acme_x_"):])
		if err != nil || d.Version("") != "V2.0" {
			t.Errorf("%s: the server records %q (%v)", s.DeviceID, d.Version(""), err)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		<-tick.C
	}
}
