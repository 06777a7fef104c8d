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
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	if r.before != nil {
		r.before(n)
	}
	return r.Store.UpdateTask(ctx, t, expect)
}

// Issue 8 item 4: replica A reads the device's task as notified for its
// version report; replica B handles the same device's progress report and
// moves the task to in_progress; A's write then finds the task changed. The
// version report is the destination, so it must still complete the task
// rather than be dropped as a conflict.
func TestVersionReportRacingProgressOnAnotherReplica(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	r.wantState(j.ID, "d-0000", ota.TaskNotified)

	replicaB := r.svc
	racing := &racingStore{Store: r.st}
	racing.before = func(n int) {
		if n == 1 {
			if err := replicaB.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 40}); err != nil {
				t.Errorf("replica B's progress report: %v", err)
			}
		}
	}
	replicaA := service.New(racing, r.blobs, r.clock, r.rec, quietLog, r.opts)
	if err := replicaA.ReportVersion(r.ctx, ref("d-0000"), "", "2.0"); err != nil {
		t.Fatalf("version report lost to the race: %v", err)
	}
	if racing.n != 2 {
		t.Fatalf("%d task writes, want 2 (the stale one, then the re-applied one)", racing.n)
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskSucceeded)
	if task.Progress != 100 || task.FinishedAt.IsZero() {
		t.Fatalf("succeeded task %+v", task)
	}
	// Applied twice (redelivered), the report changes nothing more.
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
// of dropping it.
func TestVersionReportStaleEveryTimeIsTransient(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	racing := &racingStore{Store: r.st}
	other := r.svc
	racing.before = func(int) {
		// Another writer flips the task between notified and in_progress
		// before every write of this replica.
		task := r.task(j.ID, "d-0000")
		switch task.State {
		case ota.TaskNotified:
			if err := other.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 5}); err != nil {
				t.Errorf("other writer: %v", err)
			}
		case ota.TaskInProgress:
			task.State = ota.TaskNotified // an impossible move for the service, fine for a stand-in writer
			if err := r.st.UpdateTask(r.ctx, task, ota.TaskInProgress); err != nil {
				t.Errorf("other writer: %v", err)
			}
		}
	}
	replicaA := service.New(racing, r.blobs, r.clock, r.rec, quietLog, r.opts)
	err := replicaA.ReportVersion(r.ctx, ref("d-0000"), "", "2.0")
	errCode(t, err, ota.CodeUnavailable, "send it again")
	if !deviceproto.Transient(err) {
		t.Fatalf("not transient: %v", err)
	}
	if racing.n != 8 {
		t.Fatalf("%d attempts, want 8", racing.n)
	}
}
