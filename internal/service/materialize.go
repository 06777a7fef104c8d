package service

// Materialization: turning a job's target into tasks, a bounded batch at a
// time, so that a job on a million devices never holds them in memory and
// the API that creates it never waits. The engine calls materialize from
// Tick; the resume point is in the job row (MaterializeCursor), so a killed
// server, or another replica, carries on where the last batch ended.
//
// Rules (one place):
//   - Candidates are the target's devices (all of the product, its groups, or
//     the listed names) that existed when the job started (static and the
//     initial pass of a dynamic job), on a version the package applies to
//     (ota.Package.AppliesTo: never the destination, only a source version
//     when the package names some) and on one of target.SourceVersions when
//     the target names some.
//   - A device that is not a candidate gets no task, listed or not: unknown
//     names, devices already on the destination, devices on a version the
//     package does not apply to. Every task materialization creates is
//     active, which keeps a re-run batch idempotent (the store refuses a
//     second active task per device and module), so two replicas, or a
//     restart in the middle of a batch, never duplicate a task. The job's
//     counts show how many devices did get one.
//   - Gray sampling takes exactly GrayCount(N) of the N candidates, chosen by
//     selection sampling over the name order with a per-device hash
//     (ota.GrayPick), keeping only counters: N is counted once at the start.
//   - A device that holds an active task of another job on the module keeps
//     it (overwrite mode keep: the new task is skipped) or loses it (mode
//     overwrite: a confirm, queued, retry_wait or notified task is canceled
//     with ReasonOverwritten; an in-progress one is never overwritten, and the
//     new task is then skipped).

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// materializeCursor is the decoded Job.MaterializeCursor. A job without gray
// sampling stores the last device name processed; a gray job stores
// "gray/N/seen/picked/last-name" ('/' never occurs in device names).
type materializeCursor struct {
	after      string
	gray       bool
	candidates int64 // N; -1 until counted
	seen       int64
	picked     int64
}

func parseCursor(s string, gray bool) (materializeCursor, error) {
	c := materializeCursor{gray: gray, candidates: -1}
	if !gray {
		c.after = s
		return c, nil
	}
	if s == "" {
		return c, nil
	}
	parts := strings.SplitN(s, "/", 5)
	if len(parts) != 5 || parts[0] != "gray" {
		return c, fmt.Errorf("gray materialize cursor %q is malformed", s)
	}
	nums := make([]int64, 3)
	for i := range nums {
		n, err := strconv.ParseInt(parts[i+1], 10, 64)
		if err != nil {
			return c, fmt.Errorf("gray materialize cursor %q is malformed", s)
		}
		nums[i] = n
	}
	c.candidates, c.seen, c.picked, c.after = nums[0], nums[1], nums[2], parts[4]
	return c, nil
}

func (c materializeCursor) String() string {
	if !c.gray {
		return c.after
	}
	return fmt.Sprintf("gray/%d/%d/%d/%s", c.candidates, c.seen, c.picked, c.after)
}

// candidateSource walks a job's candidate devices in name order.
type candidateSource struct {
	s        *Service
	job      *ota.Job
	pkg      *ota.Package
	versions []string // effective source-version filter; nil = none
	none     bool     // the package's and the target's source versions do not overlap
	names    []string // sorted target.Devices, when the target is a list
}

func newCandidateSource(s *Service, job *ota.Job, pkg *ota.Package) *candidateSource {
	cs := &candidateSource{s: s, job: job, pkg: pkg}
	switch pv, tv := pkg.SourceVersions, job.Target.SourceVersions; {
	case len(pv) > 0 && len(tv) > 0:
		for _, v := range tv {
			if slices.Contains(pv, v) {
				cs.versions = append(cs.versions, v)
			}
		}
		cs.none = len(cs.versions) == 0
	case len(pv) > 0:
		cs.versions = pv
	case len(tv) > 0:
		cs.versions = tv
	}
	if len(job.Target.Devices) > 0 {
		cs.names = slices.Clone(job.Target.Devices)
		sort.Strings(cs.names)
	}
	return cs
}

func (cs *candidateSource) filter() store.DeviceFilter {
	f := store.DeviceFilter{TenantID: cs.job.TenantID, ProductKey: cs.job.ProductKey, Groups: cs.job.Target.Groups}
	if len(cs.versions) > 0 {
		f.Module, f.Versions = cs.job.Module, cs.versions
	}
	return f
}

// isCandidate applies the per-device rules the store filter cannot express.
func (cs *candidateSource) isCandidate(d *ota.Device) bool {
	// The initial device set is the one at the start; a dynamic job picks up
	// later devices when they report their version (ReportVersion).
	if !cs.job.StartedAt.IsZero() && d.CreatedAt.After(cs.job.StartedAt) {
		return false
	}
	v := d.Version(cs.job.Module)
	if !cs.pkg.AppliesTo(v) {
		return false
	}
	return len(cs.job.Target.SourceVersions) == 0 || slices.Contains(cs.job.Target.SourceVersions, v)
}

// next returns the devices after `after` (one batch of at most limit
// examined), the last name examined, and whether the walk is over.
func (cs *candidateSource) next(ctx context.Context, after string, limit int) ([]ota.Device, string, bool, error) {
	if cs.none {
		return nil, after, true, nil
	}
	f := cs.filter()
	if cs.names != nil {
		i := sort.SearchStrings(cs.names, after)
		if i < len(cs.names) && cs.names[i] == after {
			i++
		}
		end := min(i+limit, len(cs.names))
		if i >= end {
			return nil, after, true, nil
		}
		f.Names = cs.names[i:end]
		devs, _, err := cs.s.store.ListDevices(ctx, f, store.Page{Limit: end - i}, false)
		if err != nil {
			return nil, after, false, err
		}
		return devs, cs.names[end-1], end == len(cs.names), nil
	}
	f.AfterName, f.Limit = after, limit
	devs, _, err := cs.s.store.ListDevices(ctx, f, store.Page{Limit: limit}, false)
	if err != nil {
		return nil, after, false, err
	}
	if len(devs) == 0 {
		return nil, after, true, nil
	}
	return devs, devs[len(devs)-1].Name, len(devs) < limit, nil
}

// count returns N, the number of candidates, without holding them: store
// counts for a fleet-wide target, a walk over the (≤30 000) names for a list.
func (cs *candidateSource) count(ctx context.Context, batch int) (int64, error) {
	if cs.none {
		return 0, nil
	}
	if cs.names != nil {
		var n int64
		after := ""
		for {
			devs, last, done, err := cs.next(ctx, after, batch)
			if err != nil {
				return 0, err
			}
			for i := range devs {
				if cs.isCandidate(&devs[i]) {
					n++
				}
			}
			if done {
				return n, nil
			}
			after = last
		}
	}
	// Only the creation-time and destination rules are outside the filter;
	// the first cannot apply yet (the job starts now) and the second is
	// subtracted with one more count.
	_, n, err := cs.s.store.ListDevices(ctx, cs.filter(), store.Page{Limit: 1}, true)
	if err != nil {
		return 0, err
	}
	if len(cs.versions) == 0 {
		f := cs.filter()
		f.Module, f.Versions = cs.job.Module, []string{cs.pkg.Version}
		_, onDest, err := cs.s.store.ListDevices(ctx, f, store.Page{Limit: 1}, true)
		if err != nil {
			return 0, err
		}
		n -= onDest
	}
	return n, nil
}

// materialize creates up to maxBatches batches of the job's tasks and
// records the new cursor. It returns the job as stored and how many tasks
// were inserted. A CodeConflict from UpdateJob means the job changed state
// meanwhile (paused, canceled): the caller re-reads it next tick.
func (s *Service) materialize(ctx context.Context, job ota.Job, pkg *ota.Package, maxBatches int) (ota.Job, int64, error) {
	batch := s.opts.MaterializeBatch
	gray := job.Target.GrayPercent > 0
	cur, err := parseCursor(job.MaterializeCursor, gray)
	if err != nil {
		return job, 0, ota.Internal(err, "materialize job "+job.ID)
	}
	cs := newCandidateSource(s, &job, pkg)
	if gray && cur.candidates < 0 {
		n, err := cs.count(ctx, batch)
		if err != nil {
			return job, 0, err
		}
		cur.candidates = n
	}
	now := s.clock.Now()
	var inserted int64
	done := false
	for b := 0; b < maxBatches && !done; b++ {
		devs, last, end, err := cs.next(ctx, cur.after, batch)
		if err != nil {
			return job, inserted, err
		}
		tasks := make([]ota.Task, 0, len(devs))
		for i := range devs {
			d := &devs[i]
			if !cs.isCandidate(d) {
				continue
			}
			if gray {
				take := ota.GrayPick(ota.GrayUniform(job.ID, d.Name), cur.seen, cur.picked, cur.candidates, job.Target.GrayCount(cur.candidates))
				cur.seen++
				if !take {
					continue
				}
				cur.picked++
			}
			tasks = append(tasks, s.newTask(&job, pkg, d.Name, d.Version(job.Module), now))
		}
		n, err := s.insertTasks(ctx, &job, tasks, now)
		if err != nil {
			return job, inserted, err
		}
		inserted += n
		cur.after, done = last, end
		job.MaterializeCursor = cur.String()
		job.Materialized = done
		job.UpdatedAt = now
		if err := s.store.UpdateJob(ctx, job, job.State); err != nil {
			return job, inserted, s.endedWhileMaterializing(ctx, job, err)
		}
	}
	return job, inserted, nil
}

// endedWhileMaterializing handles a failed cursor write: when the job was
// canceled or completed meanwhile, its end may have canceled its unfinished
// tasks before this batch's were inserted, and those would hold their
// devices' modules for good; they are canceled here. err is returned as is.
func (s *Service) endedWhileMaterializing(ctx context.Context, job ota.Job, err error) error {
	if ota.ErrorCode(err) != ota.CodeConflict {
		return err
	}
	cur, gerr := s.store.GetJob(ctx, job.TenantID, job.ID)
	if gerr != nil {
		if ota.ErrorCode(gerr) == ota.CodeNotFound {
			return err // deleted with its tasks
		}
		return gerr
	}
	if cur.State.Terminal() {
		if _, uerr := s.store.UpdateTasks(ctx, store.TaskFilter{JobID: job.ID, States: activeStates},
			store.TaskUpdate{State: ota.TaskCanceled, Reason: endReason(cur), Detail: cur.StateReason, Now: s.clock.Now()}); uerr != nil {
			return uerr
		}
	}
	return err
}

func (s *Service) newTask(job *ota.Job, pkg *ota.Package, device, from string, now time.Time) ota.Task {
	return ota.Task{
		JobID: job.ID, TenantID: job.TenantID, ProductKey: job.ProductKey, DeviceName: device, Module: job.Module,
		State: job.FirstTaskState(), FromVersion: from, ToVersion: pkg.Version, CreatedAt: now, UpdatedAt: now,
	}
}

// insertTasks applies the overwrite mode and the one-task-per-job rule to a
// batch and inserts what is left.
func (s *Service) insertTasks(ctx context.Context, job *ota.Job, tasks []ota.Task, now time.Time) (int64, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	names := make([]string, len(tasks))
	for i := range tasks {
		names[i] = tasks[i].DeviceName
	}
	// A device that already had a task in this job (a batch run again after
	// a crash, or by a second replica) keeps it and gets no second one. The
	// store skips active duplicates by itself; finished ones are found here.
	done, _, err := s.store.ListTasks(ctx, store.TaskFilter{JobID: job.ID, Devices: names,
		States: []ota.TaskState{ota.TaskSucceeded, ota.TaskFailed, ota.TaskCanceled}}, store.Page{Limit: len(names)}, false)
	if err != nil {
		return 0, err
	}
	if len(done) > 0 {
		had := make(map[string]bool, len(done))
		for _, t := range done {
			had[t.DeviceName] = true
		}
		tasks = slices.DeleteFunc(tasks, func(t ota.Task) bool { return had[t.DeviceName] })
	}
	if job.Overwrite == ota.OverwriteReplace {
		if err := s.overwrite(ctx, job, names, now); err != nil {
			return 0, err
		}
	}
	return s.store.InsertTasks(ctx, tasks)
}

// overwritable are the states a newer job may take a device's task from.
var overwritable = []ota.TaskState{ota.TaskConfirm, ota.TaskQueued, ota.TaskRetryWait, ota.TaskNotified}

// overwrite cancels other jobs' pending tasks on these devices' module.
func (s *Service) overwrite(ctx context.Context, job *ota.Job, names []string, now time.Time) error {
	active, _, err := s.store.ListTasks(ctx, store.TaskFilter{TenantID: job.TenantID, ProductKey: job.ProductKey,
		Module: job.Module, Devices: names, States: overwritable}, store.Page{Limit: len(names)}, false)
	if err != nil {
		return err
	}
	var ids []int64
	for _, t := range active {
		if t.JobID != job.ID {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = s.store.UpdateTasks(ctx, store.TaskFilter{IDs: ids, States: overwritable}, store.TaskUpdate{
		State: ota.TaskCanceled, Reason: ota.ReasonOverwritten, Detail: "overwritten by job " + job.ID, Now: now})
	return err
}
