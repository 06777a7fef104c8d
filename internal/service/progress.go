package service

// Progress reports that only move a task's percentage are written in bulk.
//
// A device reports progress while it downloads and installs: vendor SDKs
// every few percent, so a fleet's most frequent message. Only the first
// report changes what the task is (notified → in_progress, which starts its
// timeout clock); the others change a number an operator reads. So:
//
//   - a report that changes the task's state is written before it is
//     acknowledged, as any other report (store.Tasks.ModifyTask);
//   - a later report on a task this replica wrote in_progress for the same
//     device waits in memory, and is written with every other waiting report
//     at most ProgressFlushInterval later in one store write
//     (store.Tasks.SetTaskProgress), or dropped when the task ends first on
//     this replica (its success writes progress 100; its failure its reason).
//
// The store writes a waiting report only if the task is still in_progress
// and was not written after the report, so a late flush never reopens a
// task or moves its percentage back; a task found to have moved on is
// forgotten, and that device's next report is written directly again (and
// refused there if the task has ended). Reads of tasks through this service
// flush first, so a caller reads what it was just told. Another replica
// reads a percentage at most one interval late, and a crash loses at most
// one interval of percentages, never a state.

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// DefaultProgressFlushInterval is how long a percentage may wait in memory.
const DefaultProgressFlushInterval = 250 * time.Millisecond

// DefaultMaxProgressTasks bounds the in-progress tasks one replica tracks.
// A task that ended elsewhere (another replica, a timeout there) stays
// tracked here until its device reports again, which it may never do, so
// a replica that reaches the bound forgets every task and starts over:
// their devices' next reports are written directly, once each.
const DefaultMaxProgressTasks = 100_000

// maxProgressPerWrite bounds one SetTaskProgress call, so that a flush of a
// large fleet holds the store's writer in short steps.
const maxProgressPerWrite = 1000

// progressBuffer holds the percentages waiting to be written.
type progressBuffer struct {
	interval time.Duration // ≤ 0: off, every report is written directly
	max      int

	mu      sync.Mutex
	started map[int64]ota.DeviceRef      // tasks this replica wrote in_progress, and whose they are
	pending map[int64]store.TaskProgress // reports waiting for the next flush
	timer   *time.Timer                  // the next flush; nil when none is due

	flushing sync.Mutex // one flush at a time, so that reports land in order
}

func newProgressBuffer(interval time.Duration, max int) *progressBuffer {
	return &progressBuffer{interval: interval, max: max,
		started: map[int64]ota.DeviceRef{}, pending: map[int64]store.TaskProgress{}}
}

// track records that task id, dev's, is in_progress as this replica wrote it.
func (b *progressBuffer) track(id int64, dev ota.DeviceRef) {
	if b.interval <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.started[id]; !ok && len(b.started) >= b.max {
		clear(b.started) // what waits is still written; later reports go direct until tracked again
	}
	b.started[id] = dev
}

// hold keeps r for the next flush when its task is tracked for dev, and
// reports whether it did; flush is what runs it.
func (b *progressBuffer) hold(dev ota.DeviceRef, r store.TaskProgress, flush func()) bool {
	if b.interval <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if owner, ok := b.started[r.TaskID]; !ok || owner != dev {
		return false
	}
	b.pending[r.TaskID] = r
	if b.timer == nil {
		b.timer = time.AfterFunc(b.interval, flush)
	}
	return true
}

// forget drops task id: it ended, or this replica no longer knows its state.
func (b *progressBuffer) forget(ids ...int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		delete(b.started, id)
		delete(b.pending, id)
	}
}

// forgetAll drops every task: a bulk change ended some of them, and this
// replica cannot tell which.
func (b *progressBuffer) forgetAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.started)
	clear(b.pending)
}

// take empties the waiting reports and cancels the flush due for them.
func (b *progressBuffer) take() []store.TaskProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.pending) == 0 {
		return nil
	}
	out := make([]store.TaskProgress, 0, len(b.pending))
	for _, r := range b.pending {
		out = append(out, r)
	}
	clear(b.pending)
	return out
}

// updateTasks is store.Tasks.UpdateTasks for the service: a change that
// may have moved in-progress tasks makes this replica forget the tasks it
// tracks, so that their devices' next reports go to the store and hear the
// task's new state there.
func (s *Service) updateTasks(ctx context.Context, f store.TaskFilter, u store.TaskUpdate) (int64, error) {
	n, err := s.store.UpdateTasks(ctx, f, u)
	if n > 0 && (len(f.States) == 0 || slices.Contains(f.States, ota.TaskInProgress)) {
		s.progress.forgetAll()
	}
	return n, err
}

// FlushProgress writes the progress reports waiting in memory now (see
// progress.go). The server calls it on shutdown, after the device
// front-ends stopped and before the store closes; reads of tasks call it
// first.
func (s *Service) FlushProgress(ctx context.Context) error {
	b := s.progress
	b.flushing.Lock()
	defer b.flushing.Unlock()
	reports := b.take()
	for len(reports) > 0 {
		chunk := reports[:min(len(reports), maxProgressPerWrite)]
		written, err := s.store.SetTaskProgress(ctx, chunk)
		if err != nil {
			// Their devices' next reports go to the store directly and
			// hear its error there.
			b.forget(taskIDs(reports)...)
			return err
		}
		if len(written) < len(chunk) {
			// The others moved on: ended, or written later by another replica.
			slices.Sort(written)
			b.forget(slices.DeleteFunc(taskIDs(chunk), func(id int64) bool {
				_, wrote := slices.BinarySearch(written, id)
				return wrote
			})...)
		}
		reports = reports[len(chunk):]
	}
	return nil
}

func taskIDs(reports []store.TaskProgress) []int64 {
	ids := make([]int64, len(reports))
	for i, r := range reports {
		ids[i] = r.TaskID
	}
	return ids
}

// flushProgressLater is the timer's flush: its error is logged, the
// reports it concerned are dropped (they are percentages; the next report
// of each device carries a newer one).
func (s *Service) flushProgressLater() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.FlushProgress(ctx); err != nil {
		s.log.Warn("progress reports not written; each device's next report is written directly", "err", err)
	}
}

// flushProgressForRead flushes before a read of tasks, so that the read
// shows what devices reported to this replica. A failure is logged, not
// returned: the read itself is still right, only percentages may lag.
func (s *Service) flushProgressForRead(ctx context.Context) {
	if err := s.FlushProgress(ctx); err != nil {
		s.log.Warn("progress reports not written before a read of tasks", "err", err)
	}
}
