package service_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

// bulkUpdateCounter counts the store's bulk task updates (writes).
type bulkUpdateCounter struct {
	*sqlite.Store
	n atomic.Int64
}

func (c *bulkUpdateCounter) UpdateTasks(ctx context.Context, f store.TaskFilter, u store.TaskUpdate) (int64, error) {
	c.n.Add(1)
	return c.Store.UpdateTasks(ctx, f, u)
}

// TestIdleJobTickWritesNothing: a running job with nothing waiting for a
// retry and nothing notified or in progress costs its tick no write.
func TestIdleJobTickWritesNothing(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	counter := &bulkUpdateCounter{Store: r.st}
	r.svc = service.New(counter, r.blobs, r.clock, r.rec, quietLog, r.opts)
	r.devices("d", 2, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.Selection = ota.SelectDynamic })
	r.tick()
	r.wantCounts(j.ID, "notified=2")
	r.reportVersion("d-0000", "2.0")

	counter.n.Store(0)
	r.tick() // d-0001 is notified: its timeout is checked
	if got := counter.n.Load(); got != 1 {
		t.Fatalf("%d bulk updates with one notified task, want 1 (its timeout)", got)
	}
	r.reportVersion("d-0001", "2.0")
	counter.n.Store(0)
	r.tick()
	if got := counter.n.Load(); got != 0 {
		t.Fatalf("%d bulk updates for a job with nothing to time out or re-queue", got)
	}
	r.wantJobState(j.ID, ota.JobRunning)
	r.wantCounts(j.ID, "succeeded=2")
}

// cancelBeforeInsert runs hook once, just before the first batch of tasks
// is stored.
type cancelBeforeInsert struct {
	*sqlite.Store
	hook func()
}

func (c *cancelBeforeInsert) MaterializeBatch(ctx context.Context, j ota.Job, expectCursor string, tasks []ota.Task) error {
	if h := c.hook; h != nil {
		c.hook = nil
		h()
	}
	return c.Store.MaterializeBatch(ctx, j, expectCursor, tasks)
}

// TestCancelDuringMaterializeFreesDevices: a job canceled while a batch of
// its tasks was being built stores none of them (the batch and the cursor
// are one transaction that checks the job's state), so its devices are free
// for the next job.
func TestCancelDuringMaterializeFreesDevices(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	hooked := &cancelBeforeInsert{Store: r.st}
	r.svc = service.New(hooked, r.blobs, r.clock, r.rec, quietLog, r.opts)
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), nil)
	hooked.hook = func() {
		if _, err := r.svc.CancelJob(r.ctx, r.p, j.ID); err != nil {
			t.Error(err)
		}
	}
	r.tick()
	r.wantJobState(j.ID, ota.JobCanceled)
	r.wantCounts(j.ID, "")
	next := r.job(r.pkg(func(p *ota.Package) { p.Version = "3.0" }), nil)
	r.tick()
	r.wantCounts(next.ID, "notified=3")
}
