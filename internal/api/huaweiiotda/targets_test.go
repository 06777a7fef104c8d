package huaweiiotda_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// TestBatchTaskTargetsVisibleAtOnce: a batch task on three listed devices —
// one never connected, one already on the destination, one online — shows
// three sub-tasks in the ShowBatchTask answer right after CreateBatchTask,
// before any engine tick: Waitting, Fail (already_on_version), Waitting
// (queued for its notice). The online one is then upgraded, and the waiting
// one too once its device connects over MQTT.
func TestBatchTaskTargetsVisibleAtOnce(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	ctx := context.Background()
	e.product("vis")
	sims := map[string]*huaweiiotda.SimDevice{}
	for name, fw := range map[string]string{"never": "V1.0", "ondest": "V2.0", "online": "V1.0"} {
		d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "vis", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		sims[name] = &huaweiiotda.SimDevice{DeviceID: huaweiiotda.DeviceID("vis", name), Secret: d.Secret, Broker: e.srv.MQTTAddr(), FwVersion: fw}
	}
	for _, name := range []string{"ondest", "online"} {
		if err := sims[name].Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sims[name].Close)
	}
	waitFor(t, func() bool { // their version reports arrived
		a, err1 := e.svc.GetDevice(ctx, e.p, "vis", "ondest")
		b, err2 := e.svc.GetDevice(ctx, e.p, "vis", "online")
		return err1 == nil && err2 == nil && a.Version("") == "V2.0" && b.Version("") == "V1.0" && a.Online && b.Online
	})

	sum := e.putObject("vis-bucket", "vis/app.bin", firmware)
	c := e.client(modeSDK)
	pkg, err := c.CreateOtaPackage(createPkgReq("vis", "V2.0", "vis-bucket", "vis/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	var doc any = map[string]any{"package_ids": []string{*pkg.PackageId}}
	targets := []string{sims["never"].DeviceID, sims["ondest"].DeviceID, sims["online"].DeviceID}
	task, err := c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: &model.CreateBatchTask{
		TaskName: "vis_V2", TaskType: "firmwareUpgrade", Targets: &targets, Document: &doc,
	}})
	if err != nil {
		t.Fatal(err)
	}
	// No e.advance(): the sub-tasks exist with the task.
	shown, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId})
	if err != nil {
		t.Fatal(err)
	}
	if p := shown.Batchtask.TaskProgress; *p.Total != 3 || *p.Waitting+*p.Processing+*p.Success != 2 || *p.Fail != 1 || len(*shown.TaskDetails) != 3 {
		t.Fatalf("right after create: progress %+v, %d details", *p, len(*shown.TaskDetails))
	}
	got := detailStatuses(shown)
	// The online one is queued, or already notified when the server's engine
	// ticked in between (Processing), or even done: the engine wakes on
	// create and the simulated device answers in milliseconds.
	if got[targets[0]] != "Waitting" || got[targets[1]] != "Fail" || !slices.Contains([]string{"Waitting", "Processing", "Success"}, got[targets[2]]) {
		t.Fatalf("right after create: %v", got)
	}
	for _, d := range *shown.TaskDetails {
		if *d.Target == targets[1] && (d.Error == nil || *d.Error.ErrorCode != "already_on_version") {
			t.Fatalf("the device on the destination: %+v", d.Error)
		}
	}
	// The service's view of the same moment: waiting / skipped / queued.
	tasks := map[string]ota.TaskState{}
	list, _, err := e.svc.ListTasks(ctx, e.p, store.TaskFilter{JobID: *task.TaskId}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list {
		tasks[tk.DeviceName] = tk.State
	}
	// The online device is fast (the engine wakes on create and the simulated
	// device answers in milliseconds): by this second read it may be done.
	if tasks["never"] != ota.TaskWaiting || tasks["ondest"] != ota.TaskSkipped ||
		!slices.Contains([]ota.TaskState{ota.TaskQueued, ota.TaskNotified, ota.TaskInProgress, ota.TaskSucceeded}, tasks["online"]) {
		t.Fatalf("task states %v", tasks)
	}

	status := func(target string) string {
		e.advance()
		s, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId})
		if err != nil {
			t.Fatal(err)
		}
		return detailStatuses(s)[target]
	}
	waitFor(t, func() bool { return status(targets[2]) == "Success" })
	if st := status(targets[0]); st != "Waitting" {
		t.Fatalf("the never-connected device is %s before it connects, want Waitting", st)
	}
	if err := sims["never"].Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sims["never"].Close)
	waitFor(t, func() bool { return status(targets[0]) == "Success" })
	if fw, _ := sims["never"].Versions(); fw != "V2.0" {
		t.Fatalf("the late device runs %s", fw)
	}
	final, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId})
	if err != nil {
		t.Fatal(err)
	}
	// Two upgraded, one skipped: the job ends, partly successful.
	deadline := time.Now().Add(30 * time.Second)
	for *final.Batchtask.Status != "PartialSuccess" && time.Now().Before(deadline) {
		e.advance()
		if final, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId}); err != nil {
			t.Fatal(err)
		}
	}
	if *final.Batchtask.Status != "PartialSuccess" {
		t.Fatalf("final status %s, want PartialSuccess", *final.Batchtask.Status)
	}
}
