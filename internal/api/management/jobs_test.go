package management_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// jobsEnv is a real API server over SQLite whose engine the test ticks.
type jobsEnv struct {
	*env
	clock *testClock
}

var jobsT0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newJobsEnv(t *testing.T) *jobsEnv {
	t.Helper()
	clock := &testClock{t: jobsT0} // moved by the test only
	e := &jobsEnv{env: startEnv(t, clock, clock.Now, management.Options{}), clock: clock}
	if _, err := e.Client.CreateProduct(context.Background(), client.ProductCreate{Key: "thermo", Name: "Thermostat"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *jobsEnv) tick() {
	e.t.Helper()
	if _, err := e.svc.Advance(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *jobsEnv) devices(names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.Client.CreateDevice(context.Background(), "thermo", client.DeviceCreate{Name: n}); err != nil {
			e.t.Fatal(err)
		}
		// Online on 1.0: an offline device's task would wait for it.
		ref := ota.DeviceRef{ProductKey: "thermo", Name: n}
		if err := e.svc.DeviceConnected(context.Background(), ref, true); err != nil {
			e.t.Fatal(err)
		}
		if err := e.svc.ReportVersion(context.Background(), ref, "", "1.0"); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *jobsEnv) upload(name string, meta client.PackageMetadata) client.Package {
	e.t.Helper()
	meta.Product, meta.Name = "thermo", name
	if meta.Version == "" {
		meta.Version = "2.0"
	}
	p, err := e.Client.UploadPackage(context.Background(), meta, "fw.bin", strings.NewReader("firmware "+name))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestJobCreateContract posts the documented create body verbatim and reads
// every field back.
func TestJobCreateContract(t *testing.T) {
	e := newJobsEnv(t)
	e.devices("d1", "d2", "d3")
	pkg := e.upload("fw", client.PackageMetadata{})
	body := `{"package_id":"` + pkg.ID + `","type":"upgrade","selection":"static",
		"target":{"all":false,"devices":["d1","d2","d3"],"groups":[],"attributes":{},"tags":{},"gray_percent":0,"source_versions":["1.0"]},
		"schedule":{"start":"2026-03-10T13:00:00Z","finish":"2026-03-12T13:00:00Z","window":{"from":"22:00","to":"06:00","utc_offset_minutes":480}},
		"max_concurrency":2,"max_per_minute":100,"retry":{"count":2,"interval_seconds":600},"timeout_seconds":3600,
		"need_confirm":false,"abort":{"failure_percent":50,"min_finished":10},
		"name":"wave 1","description":"first wave","need_push":true,"overwrite":"overwrite","allow_device_request":true,
		"tags":[{"key":"wave","value":"1"}],"ext_info":"reboot at night"}`
	resp, b := e.post("/api/v1/jobs", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var j client.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	w := j.Schedule.Window
	if j.State != "planned" || j.Product != "thermo" || j.Module != "default" || j.Name != "wave 1" ||
		j.MaxConcurrency != 2 || j.MaxPerMinute != 100 || j.Retry != (client.JobRetry{Count: 2, IntervalSeconds: 600}) ||
		j.TimeoutSeconds != 3600 || !j.NeedPush || j.Overwrite != "overwrite" || !j.AllowDeviceRequest ||
		j.Abort != (client.JobAbort{FailurePercent: 50, MinFinished: 10}) || len(j.Tags) != 1 || j.ExtInfo != "reboot at night" ||
		w == nil || w.From != "22:00" || w.To != "06:00" || w.UTCOffsetMinutes != 480 ||
		!j.Schedule.Start.Equal(jobsT0.Add(time.Hour)) || len(j.Target.Devices) != 3 || j.Target.SourceVersions[0] != "1.0" {
		t.Fatalf("job read back: %s", b)
	}
	// A job on a device list has its tasks from the start.
	if len(j.Counts) != len(client.TaskStates) || j.TaskTotal() != 3 || j.Counts["queued"] != 3 || j.Initializing {
		t.Fatalf("counts %v", j.Counts)
	}

	// need_push defaults to true; defaults fill the rest.
	resp, b = e.post("/api/v1/jobs", `{"package_id":"`+pkg.ID+`","target":{"all":true}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("minimal create: %d %s", resp.StatusCode, b)
	}
	_ = json.Unmarshal(b, &j)
	if !j.NeedPush || j.Type != "upgrade" || j.Selection != "static" || j.MaxConcurrency != 300 || j.TimeoutSeconds != 7200 ||
		j.Overwrite != "keep" || j.State != "running" || j.Schedule.Window != nil || j.Schedule.Start != nil {
		t.Fatalf("defaults: %s", b)
	}
}

func TestJobLifecycleOverAPI(t *testing.T) {
	e := newJobsEnv(t)
	ctx := context.Background()
	e.devices("d1", "d2", "d3", "d4")
	pkg := e.upload("fw", client.PackageMetadata{})
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{All: true},
		MaxConcurrency: 2, NeedConfirm: true})
	if err != nil {
		t.Fatal(err)
	}
	e.tick()
	j, err := e.Client.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Counts["confirm"] != 4 || !j.Materialized {
		t.Fatalf("counts %v", j.Counts)
	}
	res, err := e.Client.ConfirmTasks(ctx, job.ID, []string{"d1", "d2", "d3", "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 3 || res.Failed != 1 || res.Results[3].Code != "not_found" || res.Results[3].Device != "ghost" {
		t.Fatalf("confirm: %+v", res)
	}
	e.tick()
	j, _ = e.Client.GetJob(ctx, job.ID)
	if j.Counts["notified"] != 2 || j.Counts["queued"] != 1 || j.Counts["confirm"] != 1 {
		t.Fatalf("after dispatch: %v", j.Counts)
	}

	// Tasks: filter by state, page by id.
	page, err := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 3 || page.Total != 4 || page.NextAfter != page.Items[2].ID {
		t.Fatalf("page 1: %+v", page)
	}
	page2, err := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{Limit: 3, After: page.NextAfter})
	if err != nil || len(page2.Items) != 1 || page2.NextAfter != 0 || page2.Items[0].ID <= page.NextAfter {
		t.Fatalf("page 2: %+v %v", page2, err)
	}
	notified, err := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{States: []string{"notified"}})
	if err != nil || len(notified.Items) != 2 || notified.Items[0].State != "notified" || notified.Items[0].Attempts != 1 {
		t.Fatalf("notified: %+v %v", notified, err)
	}
	one, _ := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{Devices: []string{"d4"}, States: []string{"confirm", "queued"}})
	if len(one.Items) != 1 || one.Items[0].Device != "d4" || one.Items[0].FromVersion != "1.0" || one.Items[0].ToVersion != "2.0" {
		t.Fatalf("d4: %+v", one)
	}

	if j, err = e.Client.PauseJob(ctx, job.ID); err != nil || j.State != "paused" || j.Counts == nil {
		t.Fatalf("pause: %+v %v", j, err)
	}
	if l, err := e.Client.ListJobs(ctx, client.JobFilter{States: []string{"paused"}}); err != nil || l.Total != 1 || l.Items[0].ID != job.ID {
		t.Fatalf("list paused: %+v %v", l, err)
	}
	if l, _ := e.Client.ListJobs(ctx, client.JobFilter{States: []string{"running", "completed"}}); l.Total != 0 {
		t.Fatalf("list running: %+v", l)
	}
	if j, err = e.Client.ResumeJob(ctx, job.ID); err != nil || j.State != "running" {
		t.Fatalf("resume: %+v %v", j, err)
	}
	_, err = e.Client.ResumeJob(ctx, job.ID)
	if err != nil {
		t.Fatalf("resume a running job: %v", err)
	}

	// d1 fails, gets retried by the operator; d2 is canceled.
	if err := e.svc.ReportProgress(ctx, ota.DeviceRef{ProductKey: "thermo", Name: notified.Items[0].Device}, service.Progress{Step: -2}); err != nil {
		t.Fatal(err)
	}
	res, err = e.Client.RetryTasks(ctx, job.ID, []string{notified.Items[0].Device, notified.Items[1].Device})
	if err != nil || res.Succeeded != 1 || res.Results[1].Code != "conflict" {
		t.Fatalf("retry: %+v %v", res, err)
	}
	res, err = e.Client.CancelTasks(ctx, job.ID, []string{notified.Items[1].Device})
	if err != nil || res.Succeeded != 1 {
		t.Fatalf("cancel task: %+v %v", res, err)
	}
	wantAPIError(t, e.Client.DeleteJob(ctx, job.ID), http.StatusConflict, "conflict", "cancel it")
	if j, err = e.Client.CancelJob(ctx, job.ID); err != nil || j.State != "canceled" || j.Counts["canceled"] != 4 || j.FinishedAt == nil {
		t.Fatalf("cancel: %+v %v", j, err)
	}
	if err := e.Client.DeleteJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.Client.GetJob(ctx, job.ID)
	wantAPIError(t, err, http.StatusNotFound, "not_found")

	// The audit log holds each operator change of the job once, newest
	// first; the refused resume and delete left nothing.
	audit, err := e.Client.ListAudit(ctx, client.AuditFilter{ResourceType: "job", ResourceID: job.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, it := range audit.Items {
		actions = append(actions, it.Action)
	}
	if got := strings.Join(actions, ","); got != "job.delete,job.cancel,job.resume,job.pause,job.create" {
		t.Fatalf("job audit: %s", got)
	}
}

func TestJobAPIErrors(t *testing.T) {
	e := newJobsEnv(t)
	ctx := context.Background()
	e.devices("d1")
	gated := e.upload("gated", client.PackageMetadata{NeedVerify: true})
	open := e.upload("open", client.PackageMetadata{Version: "3.0"})

	_, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: gated.ID, Target: client.JobTarget{All: true}})
	wantAPIError(t, err, http.StatusConflict, "not_verified", "verif")
	_, err = e.Client.CreateJob(ctx, client.JobCreate{PackageID: "nope", Target: client.JobTarget{All: true}})
	wantAPIError(t, err, http.StatusNotFound, "not_found")

	for _, tc := range []struct {
		name, body, field string
	}{
		{"window hour 25", `{"package_id":"` + open.ID + `","target":{"all":true},"schedule":{"window":{"from":"25:00","to":"06:00"}}}`, "schedule.window.from"},
		{"window not HH:MM", `{"package_id":"` + open.ID + `","target":{"all":true},"schedule":{"window":{"from":"22:00","to":"6"}}}`, "schedule.window.to"},
		{"timeout 299", `{"package_id":"` + open.ID + `","target":{"all":true},"timeout_seconds":299}`, "timeout_seconds"},
		{"per minute 10001", `{"package_id":"` + open.ID + `","target":{"all":true},"max_per_minute":10001}`, "max_per_minute"},
		{"retry 6", `{"package_id":"` + open.ID + `","target":{"all":true},"retry":{"count":6}}`, "retry.count"},
		{"gray 4 decimals", `{"package_id":"` + open.ID + `","target":{"all":true,"gray_percent":1.2345}}`, "target.gray_percent"},
		{"no target", `{"package_id":"` + open.ID + `","target":{}}`, "target"},
		{"unknown field", `{"package_id":"` + open.ID + `","target":{"all":true},"speed":"fast"}`, ""},
		{"bad overwrite", `{"package_id":"` + open.ID + `","target":{"all":true},"overwrite":"sometimes"}`, "overwrite"},
	} {
		resp, b := e.post("/api/v1/jobs", tc.body)
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		if resp.StatusCode != http.StatusBadRequest || eb.Code != "invalid" || (tc.field != "" && eb.Field != tc.field) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
	}
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: open.ID, Target: client.JobTarget{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	resp, b := e.post("/api/v1/jobs/"+job.ID+"/tasks/cancel", `{}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"field":"devices"`) {
		t.Errorf("task action without devices: %d %s", resp.StatusCode, b)
	}
	resp, b = e.post("/api/v1/jobs/"+job.ID+"/tasks/cancel", `{"devices":["d1"],"all":true}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("devices and all: %d %s", resp.StatusCode, b)
	}
	_, err = e.Client.ListTasks(ctx, job.ID, client.TaskFilter{States: []string{"sleeping"}})
	wantAPIError(t, err, http.StatusBadRequest, "invalid", "sleeping")
	_, err = e.Client.ListJobs(ctx, client.JobFilter{States: []string{"sleeping"}})
	wantAPIError(t, err, http.StatusBadRequest, "invalid", "sleeping")
	for path, field := range map[string]string{
		"/api/v1/jobs?type=rollback":      "type",
		"/api/v1/jobs?selection=random":   "selection",
		"/api/v1/packages?kind=firmwares": "kind",
	} {
		resp, b := e.raw(http.MethodGet, path, "", nil)
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		if resp.StatusCode != http.StatusBadRequest || eb.Code != "invalid" || eb.Field != field {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	_, err = e.Client.ListTasks(ctx, "nope", client.TaskFilter{})
	wantAPIError(t, err, http.StatusNotFound, "not_found")
	_, err = e.Client.PauseJob(ctx, "nope")
	wantAPIError(t, err, http.StatusNotFound, "not_found")

	// A canceled job refuses to pause.
	_, err = e.Client.CancelJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Client.PauseJob(ctx, job.ID)
	wantAPIError(t, err, http.StatusConflict, "conflict", "canceled")
}

// TestJobResponsesMatchOpenAPI: job and task JSON has exactly the declared
// properties.
func TestJobResponsesMatchOpenAPI(t *testing.T) {
	e := newJobsEnv(t)
	e.devices("d1")
	pkg := e.upload("fw", client.PackageMetadata{})
	check := e.openAPISchemas().check
	window := `"window":{"from":"00:00","to":"24:00","utc_offset_minutes":0}`
	resp, b := e.post("/api/v1/jobs", `{"package_id":"`+pkg.ID+`","target":{"all":true},"schedule":{`+window+`}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var j client.Job
	_ = json.Unmarshal(b, &j)
	check("Job", b, "id", "state", "counts")
	e.tick()
	body := e.get("/api/v1/jobs/" + j.ID)
	check("Job", body, "counts")
	var withCounts struct{ Counts map[string]json.RawMessage }
	_ = json.Unmarshal(body, &withCounts)
	check("TaskCounts", mustJSON(t, withCounts.Counts), "succeeded", "notified")
	for _, k := range []string{"target", "schedule", "retry", "abort"} {
		var m map[string]json.RawMessage
		_ = json.Unmarshal(body, &m)
		check(map[string]string{"target": "JobTarget", "schedule": "JobSchedule", "retry": "JobRetry", "abort": "JobAbort"}[k], m[k])
	}
	list := e.get("/api/v1/jobs")
	check("JobList", list)
	tasks := e.get("/api/v1/jobs/" + j.ID + "/tasks")
	check("TaskList", tasks, "next_after")
	var tl struct{ Items []json.RawMessage }
	_ = json.Unmarshal(tasks, &tl)
	if len(tl.Items) != 1 {
		t.Fatalf("tasks %s", tasks)
	}
	check("Task", tl.Items[0])
	resp, b = e.post("/api/v1/jobs/"+j.ID+"/tasks/cancel", `{"devices":["d1","ghost"]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel tasks: %d %s", resp.StatusCode, b)
	}
	check("TaskResults", b)
	var tr struct{ Results []json.RawMessage }
	_ = json.Unmarshal(b, &tr)
	check("TaskResult", tr.Results[0])
	check("TaskResult", tr.Results[1], "code", "message")
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJobTargetsVisibleAtOnce: a job on three listed devices — one never
// connected, one already on the destination, one online — answers its
// create call with three tasks, before any engine tick: waiting, skipped
// (already_on_version), queued; the tick notifies the online one, and the
// waiting one is upgraded once its device comes online. Downgrades are
// refused unless the job allows them.
func TestJobTargetsVisibleAtOnce(t *testing.T) {
	e := newJobsEnv(t)
	ctx := context.Background()
	if _, err := e.Client.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "never"}); err != nil {
		t.Fatal(err)
	}
	e.devices("ondest", "online", "newer")
	if err := e.svc.ReportVersion(ctx, ota.DeviceRef{ProductKey: "thermo", Name: "ondest"}, "", "2.0"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ReportVersion(ctx, ota.DeviceRef{ProductKey: "thermo", Name: "newer"}, "", "2.1"); err != nil {
		t.Fatal(err)
	}
	pkg := e.upload("fw", client.PackageMetadata{})
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID,
		Target: client.JobTarget{Devices: []string{"never", "ondest", "online", "newer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if job.TaskTotal() != 4 || job.Counts["waiting"] != 1 || job.Counts["skipped"] != 2 || job.Counts["queued"] != 1 || job.Initializing {
		t.Fatalf("create answered counts %v, initializing %v", job.Counts, job.Initializing)
	}
	states := func() map[string]string {
		t.Helper()
		page, err := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, tk := range page.Items {
			out[tk.Device] = tk.State
			if tk.Reason != "" {
				out[tk.Device] += "/" + tk.Reason
			}
		}
		return out
	}
	want := map[string]string{"never": "waiting", "ondest": "skipped/already_on_version", "online": "queued",
		"newer": "skipped/downgrade"}
	if got := states(); !maps.Equal(got, want) {
		t.Fatalf("tasks right after create %v, want %v", got, want)
	}
	e.tick()
	want["online"] = "notified"
	if got := states(); !maps.Equal(got, want) {
		t.Fatalf("tasks after a tick %v, want %v", got, want)
	}

	// The never-connected device comes online and reports its version.
	ref := ota.DeviceRef{ProductKey: "thermo", Name: "never"}
	if err := e.svc.DeviceConnected(ctx, ref, true); err != nil {
		t.Fatal(err)
	}
	if got := states()["never"]; got != "waiting" {
		t.Fatalf("online without a version: %s, want waiting", got)
	}
	if err := e.svc.ReportVersion(ctx, ref, "", "1.0"); err != nil {
		t.Fatal(err)
	}
	if got := states()["never"]; got != "queued" {
		t.Fatalf("online on 1.0: %s, want queued", got)
	}
	e.tick()
	if got := states()["never"]; got != "notified" {
		t.Fatalf("after a tick: %s, want notified", got)
	}
	for _, d := range []string{"never", "online"} {
		if err := e.svc.ReportVersion(ctx, ota.DeviceRef{ProductKey: "thermo", Name: d}, "", "2.0"); err != nil {
			t.Fatal(err)
		}
	}
	e.tick()
	done, err := e.Client.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != "completed" || done.Outcome != "partial" || done.Counts["succeeded"] != 2 {
		t.Fatalf("job at the end: %s, outcome %q, counts %v", done.State, done.Outcome, done.Counts)
	}

	// With allow_downgrade the newer device is taken.
	down, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, AllowDowngrade: true,
		Target: client.JobTarget{Devices: []string{"newer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if down.Counts["queued"] != 1 || !down.AllowDowngrade {
		t.Fatalf("allow_downgrade job: %v", down.Counts)
	}
}
