package service_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// storedTask reads the device's task of the job from the store itself,
// past the service (whose reads flush waiting percentages first).
func (r *rolloutEnv) storedTask(jobID, device string) ota.Task {
	r.t.Helper()
	tasks, _, err := r.st.ListTasks(r.ctx, store.TaskFilter{JobID: jobID, Devices: []string{device}}, store.Page{Limit: 2}, false)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(tasks) != 1 {
		r.t.Fatalf("device %s has %d tasks in job %s", device, len(tasks), jobID)
	}
	return tasks[0]
}

func (r *rolloutEnv) wantStored(jobID, device string, state ota.TaskState, progress int) {
	r.t.Helper()
	if got := r.storedTask(jobID, device); got.State != state || got.Progress != progress {
		r.t.Fatalf("the store has %s's task %s at %d %%, want %s at %d %%", device, got.State, got.Progress, state, progress)
	}
}

// startedJob is a job whose devices (d-0000…) are all notified.
func startedJob(t *testing.T, opts service.Options, devices int) (*rolloutEnv, ota.Job) {
	r := newRolloutEnv(t, opts)
	r.devices("d", devices, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	r.wantCounts(j.ID, "notified="+strconv.Itoa(devices))
	return r, j
}

// The first report changes the task's state and is written before it is
// acknowledged; the next one only moves its percentage and waits in memory,
// but a read of tasks through the service sees it at once.
func TestProgressPercentageWaitsAndReadsSeeIt(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: time.Hour}, 1)
	r.clock.Add(time.Second)
	r.progress("d-0000", 10)
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 10)

	r.clock.Add(time.Second)
	r.progress("d-0000", 60)
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 10) // waiting
	task := r.task(j.ID, "d-0000")                       // the service flushes before it reads
	if task.Progress != 60 || !task.UpdatedAt.Equal(rolloutT0.Add(2*time.Second)) || !task.StartedAt.Equal(rolloutT0.Add(time.Second)) {
		t.Fatalf("task read after its report: %d %%, updated %v, started %v; want 60 %%, updated at the report, started at the first",
			task.Progress, task.UpdatedAt, task.StartedAt)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 60)
}

// Without reads, the percentage reaches the store after the interval.
func TestProgressPercentageFlushedAfterInterval(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: 10 * time.Millisecond}, 1)
	r.progress("d-0000", 10)
	r.progress("d-0000", 70)
	deadline := time.Now().Add(10 * time.Second)
	for r.storedTask(j.ID, "d-0000").Progress != 70 {
		if time.Now().After(deadline) {
			t.Fatalf("the store still has %d %% 10 s after a report of 70 %%", r.storedTask(j.ID, "d-0000").Progress)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A task that ended on this replica takes no more percentages: a report
// naming it is refused as before (one naming no task finds none), and
// what waited is dropped, not written over the end.
func TestProgressAfterTaskEndedHere(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: time.Hour}, 2)
	for _, d := range []string{"d-0000", "d-0001"} {
		r.progress(d, 10)
		r.progress(d, 50) // waiting
	}
	r.reportVersion("d-0000", "2.0")
	if _, err := r.svc.CancelTasksWhere(r.ctx, r.p, j.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"d-0000", "d-0001"} {
		err := r.svc.ReportProgress(r.ctx, ref(d), service.Progress{TaskID: r.storedTask(j.ID, d).ID, Step: 80})
		if ota.ErrorCode(err) != ota.CodeConflict {
			t.Fatalf("%s: progress on an ended task: %v, want a conflict", d, err)
		}
	}
	if err := r.svc.FlushProgress(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskSucceeded, 100)
	r.wantStored(j.ID, "d-0001", ota.TaskCanceled, 10)
}

// Two replicas on one store: a percentage waiting on one is never written
// over a later one the other wrote, nor over the task's end; the replica
// whose flush found the task moved on writes the device's next report
// directly again, and is refused there once the task has ended.
func TestProgressAcrossReplicas(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: time.Hour}, 1)
	a := r.svc
	b := service.New(r.st, r.blobs, r.clock, r.rec, quietLog, r.opts)
	id := r.storedTask(j.ID, "d-0000").ID
	report := func(on *service.Service, step int) error {
		r.clock.Add(time.Second)
		return on.ReportProgress(r.ctx, ref("d-0000"), service.Progress{TaskID: id, Step: step})
	}
	for _, step := range []struct {
		on   *service.Service
		name string
		pct  int
	}{{a, "A", 10}, {a, "A", 40}, {b, "B", 60}} {
		if err := report(step.on, step.pct); err != nil {
			t.Fatalf("%d %% on %s: %v", step.pct, step.name, err)
		}
	}
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 60) // B tracked nothing: written at once
	if err := a.FlushProgress(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 60) // A's 40 % is older than B's 60 %
	if err := report(a, 70); err != nil {
		t.Fatal(err)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 70) // A forgot the task: written at once

	if err := b.ReportVersion(r.ctx, ref("d-0000"), "", "2.0"); err != nil {
		t.Fatal(err)
	}
	// A still tracks the task (it cannot know B ended it): the report is
	// acknowledged, and its flush leaves the end alone.
	if err := report(a, 80); err != nil {
		t.Fatalf("80 %% on A after B ended the task: %v", err)
	}
	if err := a.FlushProgress(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskSucceeded, 100)
	if err := report(a, 90); ota.ErrorCode(err) != ota.CodeConflict {
		t.Fatalf("90 %% on A after its flush found the task ended: %v, want a conflict", err)
	}
}

// MaxProgressTasks: a replica that tracks that many tasks and sees one
// more forgets them all; their next reports are written directly.
func TestProgressTrackedTasksLimit(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: time.Hour, MaxProgressTasks: 2}, 3)
	r.progress("d-0000", 10)
	r.progress("d-0001", 10) // at the limit: both tracked
	for _, d := range []string{"d-0000", "d-0001"} {
		r.progress(d, 20)
		r.wantStored(j.ID, d, ota.TaskInProgress, 10)
	}
	r.progress("d-0002", 10) // one more: only this one is tracked now
	for _, d := range []string{"d-0002", "d-0000", "d-0001"} {
		r.progress(d, 50)
	}
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 50)
	r.wantStored(j.ID, "d-0001", ota.TaskInProgress, 50)
	r.wantStored(j.ID, "d-0002", ota.TaskInProgress, 10)
}

// A negative interval writes every report at once.
func TestProgressBufferingOff(t *testing.T) {
	r, j := startedJob(t, service.Options{ProgressFlushInterval: -1}, 1)
	r.progress("d-0000", 10)
	r.progress("d-0000", 50)
	r.wantStored(j.ID, "d-0000", ota.TaskInProgress, 50)
}
