package service

// Materialization: turning a job's target into tasks, a bounded batch at a
// time, so that a job on a million devices never holds them in memory and
// the API that creates it never waits. The engine calls materialize from
// Tick; the resume point is in the job row (MaterializeCursor), so a killed
// server, or another replica, carries on where the last batch ended.
//
// Rules (one place):
//   - A job on a device list (without gray sampling) gets every task in the
//     transaction that creates it (CreateJob, listTasks): each listed name
//     is a task, in the state ota.Job.Admit gives it — waiting, confirm,
//     queued, or skipped with the reason (not_found, already_on_version,
//     source_version_mismatch, downgrade; and busy_in_other_job from the
//     store when another job's task holds the module). The job is
//     materialized from the start.
//   - Any other target materializes here, a batch per store transaction
//     that also moves the job's cursor (store.MaterializeBatch): a batch is
//     stored exactly once, whatever crashes or replicas race on it.
//     Candidates are the target's devices (all of the product, or its
//     groups) that existed when the job started, narrowed in the store to
//     the package's and the target's source versions when they name some.
//     Each gets a task in the state Admit gives it, skipped ones included,
//     so the operator sees why a device was not upgraded.
//   - Gray sampling takes exactly GrayCount(N) of the N candidates, chosen by
//     selection sampling over the name order with a per-device hash
//     (ota.GrayPick), keeping only counters: N is counted once at the start.
//     Devices Admit skips are not candidates and get no task: they are not
//     part of the sample.
//   - A device that holds an active task of another job on the module keeps
//     it (overwrite mode keep: the new task is skipped, busy_in_other_job)
//     or loses it (mode overwrite: a confirm, queued, retry_wait or notified
//     task is canceled with ReasonOverwritten; an in-progress one is never
//     overwritten, and the new task is then skipped).

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
	f := store.DeviceFilter{TenantID: cs.job.TenantID, ProductKey: cs.job.ProductKey, Groups: cs.job.Target.Groups,
		Attributes: cs.job.Target.Attributes, Tags: cs.job.Target.Tags, Brief: true}
	if len(cs.versions) > 0 {
		f.Module, f.Versions = cs.job.Module, cs.versions
	}
	return f
}

// inInitialSet applies the creation-time rule the store filter cannot
// express: the initial device set is the one at the job's start; a dynamic
// job picks up later devices when they report their version
// (ReportVersion).
func (cs *candidateSource) inInitialSet(d *ota.Device) bool {
	return cs.job.StartedAt.IsZero() || !d.CreatedAt.After(cs.job.StartedAt)
}

// isCandidate reports whether a device may be sampled: in the initial set
// and not skipped.
func (cs *candidateSource) isCandidate(d *ota.Device) bool {
	if !cs.inInitialSet(d) {
		return false
	}
	state, _ := cs.job.Admit(cs.pkg, d)
	return state != ota.TaskSkipped
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

// materialize creates up to maxBatches batches of the job's tasks, each in
// one transaction with the new cursor. It returns the job as stored and how
// many tasks were stored. A CodeConflict means the job changed meanwhile
// (paused, canceled, another replica's batch): nothing of that batch was
// written, and the caller re-reads the job next tick.
func (s *Service) materialize(ctx context.Context, job ota.Job, pkg *ota.Package, maxBatches int) (ota.Job, int64, error) {
	batch := s.opts.MaterializeBatch
	gray := job.Target.GrayPercent > 0
	cur, err := parseCursor(job.MaterializeCursor, gray)
	if err != nil {
		return job, 0, ota.Internal(err, "materialize job "+job.ID)
	}
	// The source reads the job's target only, which materializing does not
	// change: it gets its own copy, since the next batch is read while this
	// one is written (below).
	target := job
	cs := newCandidateSource(s, &target, pkg)
	if gray && cur.candidates < 0 {
		n, err := cs.count(ctx, batch)
		if err != nil {
			return job, 0, err
		}
		cur.candidates = n
	}
	now := s.clock.Now()
	var stored int64
	done := false
	// The next batch of devices is read while this one is built and
	// written: reads and writes use different connections, and alternating
	// them left the database's second core idle.
	type candidates struct {
		devs []ota.Device
		last string
		end  bool
		err  error
	}
	fetch := func(after string) <-chan candidates {
		ch := make(chan candidates, 1)
		go func() {
			devs, last, end, err := cs.next(ctx, after, batch)
			ch <- candidates{devs, last, end, err}
		}()
		return ch
	}
	pending := fetch(cur.after)
	for b := 0; b < maxBatches && !done; b++ {
		got := <-pending
		devs, last, end, err := got.devs, got.last, got.end, got.err
		if err != nil {
			return job, stored, err
		}
		if !end && b+1 < maxBatches {
			pending = fetch(last)
		}
		tasks := make([]ota.Task, 0, len(devs))
		for i := range devs {
			d := &devs[i]
			if !cs.inInitialSet(d) {
				continue
			}
			state, reason := job.Admit(pkg, d)
			if gray {
				if state == ota.TaskSkipped {
					continue
				}
				take := ota.GrayPick(ota.GrayUniform(job.ID, d.Name), cur.seen, cur.picked, cur.candidates, job.Target.GrayCount(cur.candidates))
				cur.seen++
				if !take {
					continue
				}
				cur.picked++
			}
			tasks = append(tasks, s.targetTask(&job, pkg, d.Name, d.Version(job.Module), state, reason, now))
		}
		if job.Selection == ota.SelectDynamic {
			// A device the running job took when it reported a version
			// (matchDynamicJobs) keeps that task and gets no second one.
			if tasks, err = s.withoutTaskInJob(ctx, &job, tasks); err != nil {
				return job, stored, err
			}
		}
		if err := s.overwriteFor(ctx, &job, tasks, now); err != nil {
			return job, stored, err
		}
		expect := job.MaterializeCursor
		cur.after, done = last, end
		next := job
		next.MaterializeCursor, next.Materialized, next.UpdatedAt = cur.String(), done, now
		if err := s.store.MaterializeBatch(ctx, next, expect, tasks); err != nil {
			return job, stored, err
		}
		job = next
		stored += int64(len(tasks))
	}
	return job, stored, nil
}

// listTasks builds the tasks of a job on a device list (no gray sampling),
// one per listed name, reading the devices in pages.
func (s *Service) listTasks(ctx context.Context, job *ota.Job, pkg *ota.Package, now time.Time) ([]ota.Task, error) {
	names := job.Target.Devices
	tasks := make([]ota.Task, 0, len(names))
	for start := 0; start < len(names); start += taskActionPage {
		chunk := names[start:min(start+taskActionPage, len(names))]
		devs, _, err := s.store.ListDevices(ctx, store.DeviceFilter{TenantID: job.TenantID, ProductKey: job.ProductKey, Names: chunk},
			store.Page{Limit: len(chunk)}, false)
		if err != nil {
			return nil, err
		}
		byName := make(map[string]*ota.Device, len(devs))
		for i := range devs {
			byName[devs[i].Name] = &devs[i]
		}
		for _, name := range chunk {
			d := byName[name]
			state, reason := job.Admit(pkg, d)
			from := ""
			if d != nil {
				from = d.Version(job.Module)
			}
			tasks = append(tasks, s.targetTask(job, pkg, name, from, state, reason, now))
		}
	}
	return tasks, nil
}

// targetTask is a new task of the job in the state Admit gave it.
func (s *Service) targetTask(job *ota.Job, pkg *ota.Package, device, from string, state ota.TaskState, reason ota.Reason,
	now time.Time) ota.Task {
	t := ota.Task{
		JobID: job.ID, TenantID: job.TenantID, ProductKey: job.ProductKey, DeviceName: device, Module: job.Module,
		State: state, Reason: reason, FromVersion: from, ToVersion: pkg.Version, CreatedAt: now, UpdatedAt: now,
	}
	if state.Terminal() {
		t.FinishedAt = now
		t.Detail = skipDetail(reason, from, pkg.Version)
	}
	return t
}

// skipDetail says in words why a target was skipped.
func skipDetail(r ota.Reason, from, to string) string {
	switch r {
	case ota.ReasonNotFound:
		return "no such device in the product"
	case ota.ReasonAlreadyOnVersion:
		return fmt.Sprintf("the device already runs %q", from)
	case ota.ReasonSourceVersionMismatch:
		return fmt.Sprintf("the device runs %q, which is not a source version of the job or package", from)
	case ota.ReasonDowngrade:
		return fmt.Sprintf("the device runs %q, newer than %q: create the job with allow_downgrade to go back", from, to)
	}
	return ""
}

// overwriteFor applies overwrite mode replace to tasks about to be stored:
// other jobs' pending tasks on their devices are canceled.
func (s *Service) overwriteFor(ctx context.Context, job *ota.Job, tasks []ota.Task, now time.Time) error {
	if job.Overwrite != ota.OverwriteReplace {
		return nil
	}
	var names []string
	for i := range tasks {
		if tasks[i].State.Active() {
			names = append(names, tasks[i].DeviceName)
		}
	}
	for start := 0; start < len(names); start += taskActionPage {
		if err := s.overwrite(ctx, job, names[start:min(start+taskActionPage, len(names))], now); err != nil {
			return err
		}
	}
	return nil
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
	// A device that already had a task in this job keeps it and gets no
	// second one. The store skips active duplicates by itself.
	tasks, err := s.withoutTaskInJob(ctx, job, tasks)
	if err != nil {
		return 0, err
	}
	if job.Overwrite == ota.OverwriteReplace {
		if err := s.overwrite(ctx, job, names, now); err != nil {
			return 0, err
		}
	}
	return s.store.InsertTasks(ctx, tasks)
}

// withoutTaskInJob drops the tasks whose device already has a task in the
// job (at most a page of them: callers pass batches).
func (s *Service) withoutTaskInJob(ctx context.Context, job *ota.Job, tasks []ota.Task) ([]ota.Task, error) {
	if len(tasks) == 0 {
		return tasks, nil
	}
	names := make([]string, len(tasks))
	for i := range tasks {
		names[i] = tasks[i].DeviceName
	}
	had, _, err := s.store.ListTasks(ctx, store.TaskFilter{JobID: job.ID, Devices: names}, store.Page{Limit: len(names)}, false)
	if err != nil || len(had) == 0 {
		return tasks, err
	}
	seen := make(map[string]bool, len(had))
	for _, t := range had {
		seen[t.DeviceName] = true
	}
	return slices.DeleteFunc(tasks, func(t ota.Task) bool { return seen[t.DeviceName] }), nil
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
	_, err = s.updateTasks(ctx, store.TaskFilter{IDs: ids, States: overwritable}, store.TaskUpdate{
		State: ota.TaskCanceled, Reason: ota.ReasonOverwritten, Detail: "overwritten by job " + job.ID, Now: now})
	return err
}
