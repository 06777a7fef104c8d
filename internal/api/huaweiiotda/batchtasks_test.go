package huaweiiotda_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// fleet is a product with devices d1…dN in group g1, each on V1.0, and a
// firmware package V2.0 registered from an object.
type fleet struct {
	*env
	product string
	devices []string // Huawei device ids
	pkgID   string
}

func newFleet(t *testing.T, n int) *fleet {
	e := newEnv(t)
	f := &fleet{env: e, product: "prod1"}
	e.product(f.product)
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("d%d", i))
		f.devices = append(f.devices, fmt.Sprintf("%s_d%d", f.product, i))
	}
	e.devices(f.product, []string{"g1"}, names...)
	for _, n := range names {
		// Online on V1.0, as connected devices: an offline device's sub-task
		// would wait (Waitting) for it.
		ref := ota.DeviceRef{ProductKey: f.product, Name: n}
		if err := e.svc.DeviceConnected(context.Background(), ref, true); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReportVersion(context.Background(), ref, "", "V1.0"); err != nil {
			t.Fatal(err)
		}
	}
	sum := e.putObject("fw-bucket", "fleet/app.bin", firmware)
	r, err := e.client(modeSDK).CreateOtaPackage(createPkgReq(f.product, "V2.0", "fw-bucket", "fleet/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	f.pkgID = *r.PackageId
	return f
}

func (f *fleet) taskReq(targets []string) *model.CreateBatchTaskRequest {
	var doc any = map[string]any{"package_ids": []string{f.pkgID}}
	return &model.CreateBatchTaskRequest{Body: &model.CreateBatchTask{
		AppId: ptr("app1"), TaskName: "upgrade_V2", TaskType: "firmwareUpgrade",
		Targets: &targets, Document: &doc,
	}}
}

// report drives a device: progress, then (for success) the new version.
func (f *fleet) report(t *testing.T, device string, step int, version string) {
	t.Helper()
	ref := ota.DeviceRef{ProductKey: f.product, Name: strings.TrimPrefix(device, f.product+"_")}
	ctx := context.Background()
	if step != 0 {
		if err := f.svc.ReportProgress(ctx, ref, service.Progress{Step: step}); err != nil {
			t.Fatal(err)
		}
	}
	if version != "" {
		if err := f.svc.ReportVersion(ctx, ref, "", version); err != nil {
			t.Fatal(err)
		}
	}
}

func detailStatuses(r *model.ShowBatchTaskResponse) map[string]string {
	out := map[string]string{}
	for _, d := range *r.TaskDetails {
		out[*d.Target] = *d.Status
	}
	return out
}

// TestBatchTaskLifecycle: create, show (sub-tasks and progress), list, stop,
// retry and delete through the SDK in both signing modes.
func TestBatchTaskLifecycle(t *testing.T) {
	f := newFleet(t, 3)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			rec := &recorder{}
			c := f.client(mode, withRecorder(rec))
			req := f.taskReq(f.devices)
			var ext any = map[string]any{"note": "night rollout"}
			req.Body.TaskExtInfo = &ext
			req.Body.TaskPolicy = &model.TaskPolicy{ScheduleTime: ptr(time.Now().UTC().Add(-time.Minute).Format("20060102T150405Z"))}
			created, err := c.CreateBatchTask(req)
			if err != nil {
				t.Fatal(err)
			}
			if created.HttpStatusCode != 201 || !hexID.MatchString(*created.TaskId) || *created.TaskType != "firmwareUpgrade" ||
				*created.TaskName != "upgrade_V2" || len(*created.Targets) != 3 || *created.TaskPolicy.ScheduleTime != *req.Body.TaskPolicy.ScheduleTime ||
				!iotdaTS.MatchString(*created.CreateTime) {
				t.Fatalf("create: %+v", created)
			}
			if ext := (*created.TaskExtInfo).(map[string]any); ext["note"] != "night rollout" {
				t.Errorf("task_ext_info = %v", ext)
			}
			if mode == modeSDK {
				checkGolden(t, rec, f.project, "create_batch_task")
			}
			id := *created.TaskId
			f.advance()

			shown, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
			if err != nil {
				t.Fatal(err)
			}
			if *shown.Batchtask.Status != "Processing" || *shown.Batchtask.TaskProgress.Total != 3 || *shown.Batchtask.TaskProgress.Processing != 3 || *shown.Page.Count != 3 {
				t.Fatalf("show after dispatch: %+v", shown)
			}
			for dev, st := range detailStatuses(shown) {
				if st != "Processing" {
					t.Errorf("%s is %s, want Processing", dev, st)
				}
			}

			// d1 succeeds, d2 fails, d3 is stopped.
			f.report(t, f.devices[0], 50, "V2.0")
			f.report(t, f.devices[1], -4, "")
			stop, err := c.StopBatchTask(&model.StopBatchTaskRequest{TaskId: id, Body: &model.BatchTargets{Targets: &[]string{f.devices[2], f.devices[0], "prod2_x"}}})
			if err != nil {
				t.Fatal(err)
			}
			res := *stop.Targets
			if len(res) != 3 || *res[0].Target != f.devices[2] || *res[0].Status != "success" ||
				*res[1].Status != "failure" || *res[1].ErrorCode == "" || *res[2].Status != "failure" {
				t.Fatalf("stop: %+v", stop)
			}
			if mode == modeSDK {
				checkGolden(t, rec, f.project, "stop_batch_task")
			}
			shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{f.devices[0]: "Success", f.devices[1]: "Fail", f.devices[2]: "Stopped"}
			if got := detailStatuses(shown); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("statuses %v, want %v", got, want)
			}
			p := shown.Batchtask.TaskProgress
			if *p.Success != 1 || *p.Fail != 1 || *p.Stopped != 1 || *p.Total != 3 {
				t.Fatalf("progress %+v", p)
			}
			for _, d := range *shown.TaskDetails {
				if *d.Status == "Fail" && (d.Error == nil || *d.Error.ErrorCode != "install_failed") {
					t.Errorf("failed sub-task error = %+v", d.Error)
				}
			}
			if mode == modeSDK {
				checkGolden(t, rec, f.project, "show_batch_task")
			}
			// Filters.
			byStatus, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, TaskDetailStatus: ptr("Stopped")})
			if err != nil || len(*byStatus.TaskDetails) != 1 || *(*byStatus.TaskDetails)[0].Target != f.devices[2] || *byStatus.Page.Count != 1 {
				t.Fatalf("status filter: %+v %v", byStatus, err)
			}
			byTarget, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Target: ptr(f.devices[0])})
			if err != nil || len(*byTarget.TaskDetails) != 1 || *(*byTarget.TaskDetails)[0].Status != "Success" {
				t.Fatalf("target filter: %+v %v", byTarget, err)
			}
			removed, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, TaskDetailStatus: ptr("Removed")})
			if err != nil || len(*removed.TaskDetails) != 0 {
				t.Fatalf("Removed filter: %+v %v", removed, err)
			}
			// Sub-task paging: one per page, following the marker.
			var seen []string
			var marker *string
			for range 4 {
				pg, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Limit: ptr(int32(1)), Marker: marker})
				if err != nil {
					t.Fatal(err)
				}
				if len(*pg.TaskDetails) == 0 {
					break
				}
				seen = append(seen, *(*pg.TaskDetails)[0].Target)
				marker = pg.Page.Marker
			}
			sort.Strings(seen)
			if fmt.Sprint(seen) != fmt.Sprint(f.devices) {
				t.Errorf("paging saw %v, want %v", seen, f.devices)
			}

			// Retry: the failed and the stopped device go back to waiting.
			retry, err := c.RetryBatchTask(&model.RetryBatchTaskRequest{TaskId: id, Body: &model.BatchTargets{Targets: &[]string{f.devices[1], f.devices[2]}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range *retry.Targets {
				if *r.Status != "success" {
					t.Errorf("retry %s: %s %v", *r.Target, *r.Status, r.ErrorMsg)
				}
			}
			if mode == modeSDK {
				checkGolden(t, rec, f.project, "retry_batch_task")
			}
			f.advance()
			f.report(t, f.devices[1], 10, "V2.0")
			f.report(t, f.devices[2], 10, "V2.0")
			f.advance()
			shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
			if err != nil {
				t.Fatal(err)
			}
			if *shown.Batchtask.Status != "Success" || *shown.Batchtask.TaskProgress.Success != 3 {
				t.Fatalf("after retry: %+v", shown.Batchtask)
			}

			list, err := c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade"})
			if err != nil || len(*list.Batchtasks) == 0 || *(*list.Batchtasks)[0].TaskId != id {
				t.Fatalf("list: %+v %v", list, err)
			}
			if mode == modeSDK {
				checkGolden(t, rec, f.project, "list_batch_tasks")
			}
			sw, err := c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "softwareUpgrade"})
			if err != nil || len(*sw.Batchtasks) != 0 || *sw.Page.Count != 0 {
				t.Fatalf("software tasks: %+v %v", sw, err)
			}
			done, err := c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade", Status: ptr("Success")})
			if err != nil || len(*done.Batchtasks) != 1 {
				t.Fatalf("Success filter: %+v %v", done, err)
			}

			del, err := c.DeleteBatchTask(&model.DeleteBatchTaskRequest{TaskId: id})
			if err != nil || del.HttpStatusCode != 204 {
				t.Fatalf("delete: %+v %v", del, err)
			}
			_, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
			wantAPIError(t, err, 404, "IOTDA.000404")
			// Back to V1.0 for the next mode.
			for _, d := range f.devices {
				f.report(t, d, 0, "V1.0")
			}
		})
	}
}

// TestBatchTaskConfirmAndStopAll: need_confirm keeps sub-tasks Waitting until
// ConfirmBatchTask; a stop without targets stops the whole task.
func TestBatchTaskConfirmAndStopAll(t *testing.T) {
	f := newFleet(t, 3)
	c := f.client(modeV11)
	req := f.taskReq(nil)
	req.Body.Targets = nil
	req.Body.TargetsFilter = map[string]any{"group_ids": []string{"g1"}}
	req.Body.NeedConfirm = ptr(true)
	req.Body.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(2)), RetryInterval: ptr(int32(30))}
	created, err := c.CreateBatchTask(req)
	if err != nil {
		t.Fatal(err)
	}
	id := *created.TaskId
	if *created.TaskPolicy.RetryCount != 2 || *created.TaskPolicy.RetryInterval != 30 || !*created.NeedConfirm || created.Targets != nil || fmt.Sprint(created.TargetsFilter["group_ids"]) != "[g1]" {
		t.Fatalf("create: %+v", created)
	}
	f.advance()
	shown, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
	if err != nil {
		t.Fatal(err)
	}
	if *shown.Batchtask.TaskProgress.Waitting != 3 {
		t.Fatalf("before confirm: %+v", shown.Batchtask.TaskProgress)
	}
	for d, st := range detailStatuses(shown) {
		if st != "Waitting" {
			t.Errorf("%s is %s before confirmation", d, st)
		}
	}
	rec := &recorder{}
	c = f.client(modeSDK, withRecorder(rec))
	conf, err := c.ConfirmBatchTask(&model.ConfirmBatchTaskRequest{TaskId: id, Body: &model.BatchTargets{Targets: &[]string{f.devices[0]}}})
	if err != nil || len(*conf.Targets) != 1 || *(*conf.Targets)[0].Status != "success" {
		t.Fatalf("confirm one: %+v %v", conf, err)
	}
	checkGolden(t, rec, f.project, "confirm_batch_task")
	conf, err = c.ConfirmBatchTask(&model.ConfirmBatchTaskRequest{TaskId: id, Body: &model.BatchTargets{}})
	if err != nil || len(*conf.Targets) != 2 {
		t.Fatalf("confirm the rest: %+v %v", conf, err)
	}
	f.advance()
	shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
	if err != nil || *shown.Batchtask.TaskProgress.Processing != 3 {
		t.Fatalf("after confirm: %+v %v", shown, err)
	}
	// A failure with retries left waits for its retry (30 minutes away).
	f.report(t, f.devices[1], -2, "")
	shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Target: ptr(f.devices[1])})
	if err != nil || *(*shown.TaskDetails)[0].Status != "FailWaitRetry" || *shown.Batchtask.TaskProgress.FailWaitRetry != 1 {
		t.Fatalf("after a failure: %+v %v", shown, err)
	}
	stop, err := c.StopBatchTask(&model.StopBatchTaskRequest{TaskId: id, Body: &model.BatchTargets{}})
	if err != nil || len(*stop.Targets) != 0 {
		t.Fatalf("stop all: %+v %v", stop, err)
	}
	shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
	if err != nil || *shown.Batchtask.Status != "Stopped" || *shown.Batchtask.TaskProgress.Stopped != 3 {
		t.Fatalf("after stop: %+v %v", shown, err)
	}
	stopped, err := c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade", Status: ptr("Stopped"), AppId: ptr("app1")})
	if err != nil || len(*stopped.Batchtasks) != 1 {
		t.Fatalf("Stopped filter: %+v %v", stopped, err)
	}
}

// TestCreateBatchTaskLimits: every documented limit just inside and outside;
// a rejected request creates no task.
func TestCreateBatchTaskLimits(t *testing.T) {
	f := newFleet(t, 2)
	c := f.client(modeSDK)
	now := time.Now().UTC()
	ts := func(d time.Duration) *string { return ptr(now.Add(d).Format("20060102T150405Z")) }
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s_n%d", f.product, i)
		}
		return out
	}
	// A module package, for the task_type check.
	cases := []struct {
		name   string
		mutate func(*model.CreateBatchTask)
		status int
		code   string
	}{
		{"plain", func(b *model.CreateBatchTask) {}, 201, ""},
		{"retry_count 5", func(b *model.CreateBatchTask) {
			b.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(5)), RetryInterval: ptr(int32(1440))}
		}, 201, ""},
		{"retry_count 6", func(b *model.CreateBatchTask) {
			b.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(6)), RetryInterval: ptr(int32(10))}
		}, 400, "IOTDA.000006"},
		{"retry_interval 1441", func(b *model.CreateBatchTask) {
			b.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(1)), RetryInterval: ptr(int32(1441))}
		}, 400, "IOTDA.000006"},
		{"retry_count without interval", func(b *model.CreateBatchTask) { b.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(1))} }, 400, "IOTDA.000006"},
		{"retry_interval huge (would overflow a duration)", func(b *model.CreateBatchTask) {
			b.TaskPolicy = &model.TaskPolicy{RetryCount: ptr(int32(1)), RetryInterval: ptr(int32(2147483647))}
		}, 400, "IOTDA.000006"},
		{"retry_interval without count", func(b *model.CreateBatchTask) { b.TaskPolicy = &model.TaskPolicy{RetryInterval: ptr(int32(5))} }, 400, "IOTDA.000006"},
		{"schedule in 6 days", func(b *model.CreateBatchTask) { b.TaskPolicy = &model.TaskPolicy{ScheduleTime: ts(6 * 24 * time.Hour)} }, 201, ""},
		{"schedule in 8 days", func(b *model.CreateBatchTask) { b.TaskPolicy = &model.TaskPolicy{ScheduleTime: ts(8 * 24 * time.Hour)} }, 400, "IOTDA.000006"},
		{"schedule in another format", func(b *model.CreateBatchTask) {
			b.TaskPolicy = &model.TaskPolicy{ScheduleTime: ptr(now.Format(time.RFC3339))}
		}, 400, "IOTDA.000009"},
		{"task_ext_info of 512", func(b *model.CreateBatchTask) { var v any = strings.Repeat("x", 512); b.TaskExtInfo = &v }, 201, ""},
		{"task_ext_info of 513", func(b *model.CreateBatchTask) { var v any = strings.Repeat("x", 513); b.TaskExtInfo = &v }, 400, "IOTDA.000006"},
		{"task_name of 128", func(b *model.CreateBatchTask) { b.TaskName = strings.Repeat("n", 128) }, 201, ""},
		{"task_name of 129", func(b *model.CreateBatchTask) { b.TaskName = strings.Repeat("n", 129) }, 400, "IOTDA.000006"},
		{"task_name in Chinese", func(b *model.CreateBatchTask) { b.TaskName = "固件升级_1" }, 201, ""},
		{"task_name with a space", func(b *model.CreateBatchTask) { b.TaskName = "upgrade V2" }, 400, "IOTDA.000006"},
		{"task_name with a dash", func(b *model.CreateBatchTask) { b.TaskName = "upgrade-V2" }, 400, "IOTDA.000006"},
		{"no task_name", func(b *model.CreateBatchTask) { b.TaskName = "" }, 400, "IOTDA.000006"},
		{"softwareUpgrade of a firmware package", func(b *model.CreateBatchTask) { b.TaskType = "softwareUpgrade" }, 400, "IOTDA.000006"},
		{"non-OTA task type", func(b *model.CreateBatchTask) { b.TaskType = "createDevices" }, 400, "IOTDA.000006"},
		{"gateway mode", func(b *model.CreateBatchTask) { b.TaskMode = ptr("GATEWAY") }, 400, "IOTDA.000006"},
		{"document package_id (older form)", func(b *model.CreateBatchTask) { var d any = map[string]any{"package_id": f.pkgID}; b.Document = &d }, 201, ""},
		{"unknown package", func(b *model.CreateBatchTask) {
			var d any = map[string]any{"package_ids": []string{"0123456789abcdef01234567"}}
			b.Document = &d
		}, 404, "IOTDA.000404"},
		{"no document", func(b *model.CreateBatchTask) { b.Document = nil }, 400, "IOTDA.000006"},
		{"two packages", func(b *model.CreateBatchTask) {
			var d any = map[string]any{"package_ids": []string{f.pkgID, "0123456789abcdef01234567"}}
			b.Document = &d
		}, 400, "IOTDA.000006"},
		{"no targets", func(b *model.CreateBatchTask) { b.Targets = nil }, 400, "IOTDA.000006"},
		{"target of another product", func(b *model.CreateBatchTask) { b.Targets = &[]string{"prod2_d1"} }, 400, "IOTDA.000006"},
		{"target with a dot", func(b *model.CreateBatchTask) { b.Targets = &[]string{"prod1_d.1"} }, 400, "IOTDA.000006"},
		{"target of 129", func(b *model.CreateBatchTask) { b.Targets = &[]string{"prod1_" + strings.Repeat("d", 123)} }, 400, "IOTDA.000006"},
		{"30 000 targets", func(b *model.CreateBatchTask) { ts := many(30000); b.Targets = &ts }, 201, ""},
		{"30 001 targets", func(b *model.CreateBatchTask) { ts := many(30001); b.Targets = &ts }, 400, "IOTDA.000006"},
		{"targets_filter with another key", func(b *model.CreateBatchTask) {
			b.Targets = nil
			b.TargetsFilter = map[string]any{"tags": []string{"x"}}
		}, 400, "IOTDA.000006"},
		{"document_source only", func(b *model.CreateBatchTask) { b.Targets = nil; b.DocumentSource = ptr("file1") }, 400, "IOTDA.000006"},
		{"app_id of 37", func(b *model.CreateBatchTask) { b.AppId = ptr(strings.Repeat("a", 37)) }, 400, "IOTDA.000006"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := f.taskReq(f.devices)
			tc.mutate(req.Body)
			before := f.jobCount()
			_, err := c.CreateBatchTask(req)
			if tc.status == 201 {
				if err != nil {
					t.Fatalf("want 201, got %v", err)
				}
				if f.jobCount() != before+1 {
					t.Error("no task was stored")
				}
				return
			}
			wantAPIError(t, err, tc.status, tc.code)
			if f.jobCount() != before {
				t.Error("a rejected request stored a task")
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		before := f.jobCount()
		path := "/v5/iot/" + f.project + "/batchtasks"
		for _, body := range []string{`{"task_name": "x"`, `{"task_name": "x", "task_type": "firmwareUpgrade", "targets": "prod1_d1"}`} {
			if status, code := rawCall(t, f.env, "POST", path, body); status != 400 || code != "IOTDA.000008" {
				t.Errorf("%s: got %d %s, want 400 IOTDA.000008", body, status, code)
			}
		}
		if f.jobCount() != before {
			t.Error("a malformed request stored a task")
		}
	})
}

// TestBatchTaskOperationLimits: at most 100 targets for stop, retry and
// confirm; paging limits of ShowBatchTask and ListBatchTasks.
func TestBatchTaskOperationLimits(t *testing.T) {
	f := newFleet(t, 2)
	c := f.client(modeSDK)
	req := f.taskReq(f.devices)
	req.Body.NeedConfirm = ptr(true)
	created, err := c.CreateBatchTask(req)
	if err != nil {
		t.Fatal(err)
	}
	id := *created.TaskId
	f.advance()
	targets := func(n int) *model.BatchTargets {
		ts := make([]string, n)
		for i := range ts {
			ts[i] = fmt.Sprintf("%s_x%d", f.product, i)
		}
		ts[0] = f.devices[0]
		return &model.BatchTargets{Targets: &ts}
	}
	ops := map[string]func(*model.BatchTargets) error{
		"stop": func(b *model.BatchTargets) error {
			_, err := c.StopBatchTask(&model.StopBatchTaskRequest{TaskId: id, Body: b})
			return err
		},
		"retry": func(b *model.BatchTargets) error {
			_, err := c.RetryBatchTask(&model.RetryBatchTaskRequest{TaskId: id, Body: b})
			return err
		},
		"confirm": func(b *model.BatchTargets) error {
			_, err := c.ConfirmBatchTask(&model.ConfirmBatchTaskRequest{TaskId: id, Body: b})
			return err
		},
	}
	for name, op := range ops {
		err := op(targets(101))
		wantAPIError(t, err, 400, "IOTDA.000006")
		// Nothing changed: both sub-tasks still wait for confirmation.
		shown, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id})
		if err != nil || *shown.Batchtask.TaskProgress.Waitting != 2 {
			t.Fatalf("%s with 101 targets changed the task: %+v %v", name, shown, err)
		}
	}
	// 100 targets are accepted (retry: the waiting sub-task cannot be retried).
	r, err := c.RetryBatchTask(&model.RetryBatchTaskRequest{TaskId: id, Body: targets(100)})
	if err != nil || len(*r.Targets) != 100 || *(*r.Targets)[0].Status != "failure" {
		t.Fatalf("retry 100: %v", err)
	}
	conf, err := c.ConfirmBatchTask(&model.ConfirmBatchTaskRequest{TaskId: id, Body: targets(100)})
	if err != nil || len(*conf.Targets) != 100 || *(*conf.Targets)[0].Status != "success" || *(*conf.Targets)[1].Status != "failure" {
		t.Fatalf("confirm 100: %+v %v", conf, err)
	}

	_, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Limit: ptr(int32(51))})
	wantAPIError(t, err, 400, "IOTDA.000017")
	_, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Offset: ptr(int32(501))})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, TaskDetailStatus: ptr("Done")})
	wantAPIError(t, err, 400, "IOTDA.000006")
	if r, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: id, Limit: ptr(int32(50)), Offset: ptr(int32(500))}); err != nil || len(*r.TaskDetails) != 0 {
		t.Fatalf("offset 500: %+v %v", r, err)
	}
	_, err = c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade", Limit: ptr(int32(51))})
	wantAPIError(t, err, 400, "IOTDA.000017")
	_, err = c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade", Offset: ptr(int32(501))})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.ListBatchTasks(&model.ListBatchTasksRequest{})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade", Status: ptr("Done")})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: "0123456789abcdef01234567"})
	wantAPIError(t, err, 404, "IOTDA.000404")
	// A running task cannot be deleted.
	_, err = c.DeleteBatchTask(&model.DeleteBatchTaskRequest{TaskId: id})
	wantAPIError(t, err, 409, "IOTDA.000409")
	// Nor can its package.
	_, err = c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: f.pkgID})
	wantAPIError(t, err, 409, "IOTDA.000409")
}
