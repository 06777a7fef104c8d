package management_test

import (
	"context"
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
