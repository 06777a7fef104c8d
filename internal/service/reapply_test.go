package service_test

import (
	"context"
	"sync"
	"testing"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// racingStore runs before(n) ahead of its n-th UpdateTask (from 1): what
// another replica commits between this one's read of a task and its write.
type racingStore struct {
	store.Store
	mu     sync.Mutex
	n      int
	before func(n int)
}

func (r *racingStore) UpdateTask(ctx context.Context, t ota.Task, expect ota.TaskState) error {
	r.race(&r.n, r.before)
	return r.Store.UpdateTask(ctx, t, expect)
}

// race counts one more call in *n and runs before with the count.
func (r *racingStore) race(n *int, before func(int)) {
	r.mu.Lock()
	*n++
	count := *n
	r.mu.Unlock()
	if before != nil {
		before(count)
	}
}

// racingReports also runs beforeReport(n) ahead of its n-th
// ApplyVersionReport (from 1): what another replica commits before this
// one reads the device's task for a version report.
type racingReports struct {
	*racingStore
	reports      int
	beforeReport func(n int)
}

func (r *racingReports) ApplyVersionReport(ctx context.Context, rep store.VersionReport, change func(*ota.Task) error) (store.VersionApplied, error) {
	r.race(&r.reports, r.beforeReport)
	return r.Store.ApplyVersionReport(ctx, rep, change)
}

// Issue 8 item 4: replica A reads the device's in-progress task for a
// version report that is neither where it came from nor where it is going
// (a failure, by the job's retry policy); replica B handles the same
// device's report of the destination meanwhile and completes the task; A's
// write then finds the task changed. A's report must be applied again to
// the task as it now is (over: nothing to fail), not dropped as a conflict
// nor written over B's. The destination report itself completes the task
// in the store call that reads it (store.Tasks.ApplyVersionReport), where
// no other writer can come between; storetest races it against ModifyTask.
func TestWrongVersionReportRacingDestinationOnAnotherReplica(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	if err := r.svc.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 40}); err != nil {
		t.Fatal(err)
	}
	r.wantState(j.ID, "d-0000", ota.TaskInProgress)

	replicaB := r.svc
	racing := &racingStore{Store: r.st}
	racing.before = func(n int) {
		if n == 1 {
			if err := replicaB.ReportVersion(r.ctx, ref("d-0000"), "", "2.0"); err != nil {
				t.Errorf("replica B's version report: %v", err)
			}
		}
	}
	replicaA := service.New(racing, r.blobs, r.clock, r.rec, quietLog, r.opts)
	if err := replicaA.ReportVersion(r.ctx, ref("d-0000"), "", "1.5"); err != nil {
		t.Fatalf("version report lost to the race: %v", err)
	}
	if racing.n != 1 {
		t.Fatalf("%d task writes, want 1 (the stale one; the re-applied report finds the task over)", racing.n)
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskSucceeded)
	if task.Progress != 100 || task.FinishedAt.IsZero() {
		t.Fatalf("succeeded task %+v", task)
	}
	// Applied twice (redelivered), the destination changes nothing more.
	r.reportVersion("d-0000", "2.0")
	r.wantCounts(j.ID, "succeeded=1")
}

// The other order: the version report is handled before the progress
// report of the same task (both replicas, or one redelivered late). The task
// stays succeeded, and the late progress report is refused as a conflict
// that is not transient: acknowledged and dropped, never retried forever.
func TestProgressReportAfterVersionReport(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	task := r.wantState(j.ID, "d-0000", ota.TaskNotified)
	r.reportVersion("d-0000", "2.0")
	err := r.svc.ReportProgress(r.ctx, ref("d-0000"), service.Progress{TaskID: task.ID, Step: 60})
	errCode(t, err, ota.CodeConflict, "succeeded")
	if deviceproto.Transient(err) {
		t.Fatalf("a late progress report is transient: %v", err)
	}
	r.wantState(j.ID, "d-0000", ota.TaskSucceeded)
}

// Two progress reports racing (one per replica) both apply; a failure
// report racing a progress report still fails the task.
func TestProgressReportsRacing(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	replicaB := r.svc
	racing := &racingStore{Store: r.st}
	racing.before = func(n int) {
		if n == 1 {
			if err := replicaB.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 10}); err != nil {
				t.Errorf("replica B: %v", err)
			}
		}
	}
	replicaA := service.New(racing, r.blobs, r.clock, r.rec, quietLog, r.opts)
	if err := replicaA.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: -3}); err != nil {
		t.Fatalf("failure report lost to the race: %v", err)
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskFailed)
	if task.Reason != ota.ReasonVerifyFailed {
		t.Fatalf("reason %s", task.Reason)
	}
}

// A task that keeps changing under every attempt: the report is refused as
// transient (CodeUnavailable), so a carrier leaves it for redelivery instead
// of dropping it. Another writer puts the task back in progress before each
// read of this replica's wrong-version report and moves it on before each
// of its writes.
func TestVersionReportStaleEveryTimeIsTransient(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	if err := r.svc.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 5}); err != nil {
		t.Fatal(err)
	}
	move := func(from, to ota.TaskState) {
		task := r.task(j.ID, "d-0000")
		if task.State != from {
			t.Errorf("task is %s, want %s", task.State, from)
			return
		}
		task.State = to // a move for a stand-in writer, not the service's rules
		if err := r.st.UpdateTask(r.ctx, task, from); err != nil {
			t.Errorf("other writer: %v", err)
		}
	}
	racing := &racingReports{racingStore: &racingStore{Store: r.st}}
	racing.beforeReport = func(n int) {
		if n > 1 {
			move(ota.TaskNotified, ota.TaskInProgress)
		}
	}
	racing.before = func(int) { move(ota.TaskInProgress, ota.TaskNotified) }
	replicaA := service.New(racing, r.blobs, r.clock, r.rec, quietLog, r.opts)
	err := replicaA.ReportVersion(r.ctx, ref("d-0000"), "", "1.5")
	errCode(t, err, ota.CodeUnavailable, "send it again")
	if !deviceproto.Transient(err) {
		t.Fatalf("not transient: %v", err)
	}
	if racing.n != 8 || racing.reports != 8 {
		t.Fatalf("%d attempts (%d reads), want 8", racing.n, racing.reports)
	}
}
