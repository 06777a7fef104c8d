package huaweiiotda_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
)

// Issue 8, item 2: a Huawei device reporting both fw_version and sw_version
// keeps both (the software version under ota.SoftwareModule), so a software
// upgrade whose package names source versions gives it a task, judged by its
// software version: S1 devices upgrade, an S0 device is skipped, and the
// firmware version is left alone.
func TestHuaweiSoftwareUpgradeBySourceVersion(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	ctx := context.Background()
	e.product("sw")
	var sims []*huaweiiotda.SimDevice
	var targets []string
	for i, sw := range []string{"S1", "S1", "S0"} {
		d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "sw", Name: fmt.Sprintf("n%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		s := &huaweiiotda.SimDevice{DeviceID: huaweiiotda.DeviceID("sw", d.Name), Secret: d.Secret, Broker: e.srv.MQTTAddr(), FwVersion: "V1.0", SwVersion: sw}
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		sims = append(sims, s)
		targets = append(targets, s.DeviceID)
	}
	waitFor(t, func() bool {
		for i := range sims {
			d, err := e.svc.GetDevice(ctx, e.p, "sw", fmt.Sprintf("n%d", i))
			if err != nil || d.Versions[ota.DefaultModule] != "V1.0" || d.Versions[ota.SoftwareModule] == "" {
				return false
			}
		}
		return true
	})
	d, _ := e.svc.GetDevice(ctx, e.p, "sw", "n0")
	if d.Versions[ota.DefaultModule] != "V1.0" || d.Versions[ota.SoftwareModule] != "S1" {
		t.Fatalf("recorded versions %v; want firmware V1.0 and software S1", d.Versions)
	}

	image := []byte("sw app S2 " + time.Now().String())
	sum := e.putObject("sw-bucket", "app/s2.bin", image)
	c := e.client(modeV11)
	req := createPkgReq("sw", "S2", "sw-bucket", "app/s2.bin", ptr(sum))
	req.Body.PackageType = "softwarePackage"
	req.Body.SupportSourceVersions = &[]string{"S1"}
	pkg, err := c.CreateOtaPackage(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc any = map[string]any{"package_ids": []string{*pkg.PackageId}}
	task, err := c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: &model.CreateBatchTask{
		TaskName: "sw_S2", TaskType: "softwareUpgrade", Targets: &targets, Document: &doc,
	}})
	if err != nil {
		t.Fatal(err)
	}
	tasks := func() map[string]client.Task {
		page, err := e.native.ListTasks(ctx, *task.TaskId, client.TaskFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]client.Task{}
		for _, tk := range page.Items {
			out[tk.Device] = tk
		}
		return out
	}
	waitFor(t, func() bool {
		e.advance()
		ts := tasks()
		return ts["n0"].State == "succeeded" && ts["n1"].State == "succeeded"
	})
	ts := tasks()
	if len(ts) != 3 || ts["n2"].State != "skipped" || ts["n2"].Reason != string(ota.ReasonSourceVersionMismatch) {
		t.Errorf("tasks %+v; want n2 skipped for its source version", ts)
	}
	for i, s := range sims[:2] {
		if fw, sw := s.Versions(); fw != "V1.0" || sw != "S2" {
			t.Errorf("device %d runs fw %s sw %s; want V1.0 and S2", i, fw, sw)
		}
		d, err := e.svc.GetDevice(ctx, e.p, "sw", fmt.Sprintf("n%d", i))
		if err != nil || d.Versions[ota.DefaultModule] != "V1.0" || d.Versions[ota.SoftwareModule] != "S2" {
			t.Errorf("device %d: the server records %v (%v); want firmware V1.0, software S2", i, d.Versions, err)
		}
	}
}
