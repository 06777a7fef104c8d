package management_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

// TestLifecycleOverAPI: a job created held does nothing until started; its
// settings and its package's descriptive fields change over PATCH; tasks are
// canceled by state, by id and by device across jobs. Each is read back at
// once, as a caller would.
func TestLifecycleOverAPI(t *testing.T) {
	e := newJobsEnv(t)
	ctx := context.Background()
	e.devices("d1", "d2", "d3")
	pkg := e.upload("fw", client.PackageMetadata{})
	held := false
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{Devices: []string{"d1", "d2", "d3"}},
		MaxConcurrency: 1, Start: &held})
	if err != nil {
		t.Fatal(err)
	}
	if job.State != "paused" || job.Counts["queued"] != 3 {
		t.Fatalf("created held: state %s counts %v", job.State, job.Counts)
	}
	e.tick()
	if j, _ := e.Client.GetJob(ctx, job.ID); j.Counts["notified"] != 0 {
		t.Fatalf("a held job notified devices: %v", j.Counts)
	}
	if job, err = e.Client.StartJob(ctx, job.ID); err != nil || job.State != "running" {
		t.Fatalf("start: %v, state %s", err, job.State)
	}
	e.tick()
	if j, _ := e.Client.GetJob(ctx, job.ID); j.Counts["notified"] != 1 {
		t.Fatalf("after start with max_concurrency 1: %v", j.Counts)
	}

	// PATCH the job: the pace takes effect at the next tick.
	two, desc := 2, "wave two"
	job, err = e.Client.UpdateJob(ctx, job.ID, client.JobUpdate{MaxConcurrency: &two, Description: &desc,
		Tags: &[]client.Tag{{Key: "wave", Value: "2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if job.MaxConcurrency != 2 || job.Description != desc || len(job.Tags) != 1 {
		t.Fatalf("after update: %+v", job)
	}
	e.tick()
	if j, _ := e.Client.GetJob(ctx, job.ID); j.Counts["notified"] != 2 {
		t.Fatalf("after raising the cap to 2: %v", j.Counts)
	}
	tooLong := 100 // the timeout's floor is 300 s: refused, nothing changes
	_, err = e.Client.UpdateJob(ctx, job.ID, client.JobUpdate{TimeoutSeconds: &tooLong})
	wantAPIError(t, err, 400, "invalid", "timeout")
	if j, _ := e.Client.GetJob(ctx, job.ID); j.TimeoutSeconds == tooLong {
		t.Fatalf("a refused update changed the job: %d", j.TimeoutSeconds)
	}

	// PATCH the package's descriptive fields.
	name, info := "fw-renamed", "reboot after install"
	p, err := e.Client.UpdatePackage(ctx, pkg.ID, client.PackageUpdate{Name: &name, CustomInfo: &info})
	if err != nil || p.Name != name || p.CustomInfo != info || p.SHA256 != pkg.SHA256 {
		t.Fatalf("package update: %v %+v", err, p)
	}
	bad := " leading space"
	_, err = e.Client.UpdatePackage(ctx, pkg.ID, client.PackageUpdate{Name: &bad})
	wantAPIError(t, err, 400, "invalid")

	// Cancel by state: the one still queued.
	n, err := e.Client.CancelTasksWhere(ctx, job.ID, []string{"queued"}, nil)
	if err != nil || n != 1 {
		t.Fatalf("cancel queued: %d, %v", n, err)
	}
	// Cancel by task id.
	page, err := e.Client.ListTasks(ctx, job.ID, client.TaskFilter{States: []string{"notified"}})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("notified tasks: %v %+v", err, page)
	}
	if n, err = e.Client.CancelTasksWhere(ctx, job.ID, nil, []int64{page.Items[0].ID}); err != nil || n != 1 {
		t.Fatalf("cancel by id: %d, %v", n, err)
	}
	// Cancel a device's tasks across jobs.
	last := page.Items[1].Device
	if n, err = e.Client.CancelDeviceTasks(ctx, "thermo", last, ""); err != nil || n != 1 {
		t.Fatalf("cancel device %s: %d, %v", last, n, err)
	}
	if j, _ := e.Client.GetJob(ctx, job.ID); j.Counts["canceled"] != 3 {
		t.Fatalf("after the cancels: %v", j.Counts)
	}
	_, err = e.Client.CancelDeviceTasks(ctx, "thermo", "ghost", "")
	wantAPIError(t, err, 404, "not_found")
	// A finished state is not cancelable: refused in the native envelope.
	resp, body := e.post("/api/v1/jobs/"+job.ID+"/tasks/cancel", `{"states":["succeeded"]}`)
	if resp.StatusCode != 400 {
		t.Fatalf("cancel succeeded tasks: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post("/api/v1/jobs/"+job.ID+"/tasks/retry", `{"states":["failed"]}`)
	if resp.StatusCode != 400 {
		t.Fatalf("retry by state: %d %s", resp.StatusCode, body)
	}
}

// TestLocalNamesOverAPI: local_names are kept on package upload and job
// create, shown by get and list, replaced by a package PATCH ({} removes
// them), and refused under a malformed locale with nothing changed.
func TestLocalNamesOverAPI(t *testing.T) {
	e := newJobsEnv(t)
	ctx := context.Background()
	e.devices("d1")
	names := map[string]string{"zh_CN": "固件二", "en_US": "Firmware-two"}
	pkg := e.upload("fw", client.PackageMetadata{LocalNames: names})
	if got, err := e.Client.GetPackage(ctx, pkg.ID); err != nil || !reflect.DeepEqual(got.LocalNames, names) || !reflect.DeepEqual(pkg.LocalNames, names) {
		t.Fatalf("package local names: %v %v, want %v", got.LocalNames, err, names)
	}
	waves := map[string]string{"en_US": "first wave", "zh_CN": "第一波"}
	job, err := e.Client.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "wave 1", LocalNames: waves,
		Target: client.JobTarget{Devices: []string{"d1"}}})
	if err != nil || !reflect.DeepEqual(job.LocalNames, waves) {
		t.Fatalf("job local names: %v %v, want %v", job.LocalNames, err, waves)
	}
	if list, err := e.Client.ListJobs(ctx, client.JobFilter{}); err != nil || len(list.Items) != 1 || !reflect.DeepEqual(list.Items[0].LocalNames, waves) {
		t.Fatalf("listed job: %+v %v", list, err)
	}
	renamed := map[string]string{"en_US": "Firmware-2"}
	if p, err := e.Client.UpdatePackage(ctx, pkg.ID, client.PackageUpdate{LocalNames: &renamed}); err != nil || !reflect.DeepEqual(p.LocalNames, renamed) {
		t.Fatalf("package PATCH local names: %v %v, want %v", p.LocalNames, err, renamed)
	}
	bad := map[string]string{"en-US": "Firmware-3"}
	_, err = e.Client.UpdatePackage(ctx, pkg.ID, client.PackageUpdate{LocalNames: &bad})
	wantAPIError(t, err, 400, "invalid", "en-US")
	if p, _ := e.Client.GetPackage(ctx, pkg.ID); !reflect.DeepEqual(p.LocalNames, renamed) {
		t.Fatalf("a refused PATCH changed the local names: %v", p.LocalNames)
	}
	none := map[string]string{}
	if p, err := e.Client.UpdatePackage(ctx, pkg.ID, client.PackageUpdate{LocalNames: &none}); err != nil || p.LocalNames != nil {
		t.Fatalf("package PATCH {}: %v %v, want none", p.LocalNames, err)
	}
}
