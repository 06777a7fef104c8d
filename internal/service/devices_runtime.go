package service

// What devices say and ask, whatever protocol carries it (MQTT, device HTTP,
// vendor topics). Owner: rollout engine.
//
// Decisions:
//   - Success comes only from a reported version equal to the task's
//     destination (a progress step of 100 is just progress), in any
//     unfinished state: a device that got there by itself is done too.
//   - A device in progress that reports a version that is neither the
//     destination nor the one it started from fails (ReasonWrongVersion);
//     reporting the start version again is normal (reconnects mid-download)
//     and changes nothing: the timeout catches an upgrade that never lands.
//   - A queued task is claimed by the device itself (NextNotice) when its
//     job is running, inside its window, and either allows device requests
//     or does not push (devices must pull). Such claims are not paced by
//     max_concurrency or max_per_minute: the devices' own polling paces them.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Progress is a device's progress report on its current task.
type Progress struct {
	Module string // "" = default
	TaskID int64  // 0 = the device's active task on Module
	Step   int    // 0–100, or negative: a failure (see ota.ReasonForStep)
	Reason ota.Reason
	Detail string
}

func moduleOrDefault(m string) string {
	if m == "" {
		return ota.DefaultModule
	}
	return m
}

// CurrentTask is the device's unfinished task on module (any of
// ota.ActiveTaskStates), nil if none: the one task a device protocol reports
// progress against or picks a reported version for. Protocols ask this
// rather than listing tasks themselves.
func (s *Service) CurrentTask(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Task, error) {
	return s.activeTask(ctx, dev, moduleOrDefault(module))
}

// PushNotice is what a front-end sends a device that has just connected or
// started listening: NextNotice, but only for a job that pushes (NeedPush).
// A pull-only job's notice goes to a device only when it asks (NextNotice).
func (s *Service) PushNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error) {
	module = moduleOrDefault(module)
	t, err := s.activeTask(ctx, dev, module)
	if err != nil || t == nil {
		return nil, err
	}
	job, err := s.store.GetJob(ctx, t.TenantID, t.JobID)
	if err != nil {
		return nil, err
	}
	if !job.NeedPush {
		return nil, nil
	}
	return s.NextNotice(ctx, dev, module)
}

// activeTask returns the device's unfinished task on module, nil if none.
func (s *Service) activeTask(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Task, error) {
	tasks, _, err := s.store.ListTasks(ctx, store.TaskFilter{ProductKey: dev.ProductKey, Module: module,
		Devices: []string{dev.Name}, States: ota.ActiveTaskStates, Limit: 1}, store.Page{Limit: 1}, false)
	if err != nil || len(tasks) == 0 {
		return nil, err
	}
	return &tasks[0], nil
}

// ReportVersion records the version a device runs on a module. It completes
// the device's active task when the version is the destination, whatever
// unfinished state the task is in (or fails it when the device is in
// progress and reports a version it neither came from nor is going to), and
// creates a task for the newest running dynamic job that now matches.
//
// It is idempotent, and a report is never lost to a race: when the task
// changes between this call's read and its write (another replica handled
// the same device's progress report meanwhile), the task is read again and
// the report applied to what it is now (see reapply).
func (s *Service) ReportVersion(ctx context.Context, dev ota.DeviceRef, module, version string) error {
	module = moduleOrDefault(module)
	if err := ota.CheckModuleName("module", module); err != nil {
		return err
	}
	if err := ota.CheckVersion("version", version); err != nil {
		return err
	}
	return s.reapply(ctx, "version report", func() error { return s.reportVersion(ctx, dev, module, version) })
}

// reportVersion records the version and, in the same store call
// (store.Tasks.ApplyVersionReport), completes the device's active task
// when the version is its destination: the report a rollout ends with is
// one write. What needs more than the task (the job's retry policy, the
// device's groups) is decided afterwards, on what that call returned.
func (s *Service) reportVersion(ctx context.Context, dev ota.DeviceRef, module, version string) error {
	now := s.clock.Now()
	succeeded := false
	applied, err := s.store.ApplyVersionReport(ctx, store.VersionReport{ProductKey: dev.ProductKey, DeviceName: dev.Name,
		Module: module, Version: version, At: now}, func(t *ota.Task) error {
		succeeded = version == t.ToVersion
		if !succeeded {
			return nil
		}
		t.Progress = 100
		return t.Transition(ota.TaskSucceeded, now)
	})
	if err != nil {
		return err
	}
	t := applied.Task
	if t != nil && succeeded {
		s.progress.forget(t.ID) // its 100 % supersedes any waiting percentage
		s.opts.TasksFinished(t.State, t.Reason, 1)
		t = nil // the module is free for a dynamic job
	}
	if t != nil {
		switch {
		// A task created before the device ever reported has no FromVersion:
		// its first report mid-upgrade is where it started, not a wrong result.
		case t.State == ota.TaskInProgress && t.FromVersion != "" && version != t.FromVersion:
			return s.failTask(ctx, t, ota.ReasonWrongVersion,
				fmt.Sprintf("the device reported version %q, not the destination %q", version, t.ToVersion))
		case t.State == ota.TaskWaiting:
			// Read after the version was written: admission sees it.
			d, err := s.store.GetDevice(ctx, dev.ProductKey, dev.Name)
			if err != nil {
				return err
			}
			return s.admitTask(ctx, t, &d)
		}
		return nil
	}
	if !applied.DynamicJobs {
		return nil
	}
	return s.matchDynamicJobs(ctx, dev, module, version, now)
}

// maxReapply bounds how often a device report is read and applied again
// after its task changed under it. Each retry follows a change another
// writer committed, so a handful suffices; more means a storm of writers on
// one task, and the report is then left for its carrier to redeliver.
const maxReapply = 8

// staleTask is a task write refused because the task's state changed since
// it was read (store.Tasks.UpdateTask's CodeConflict).
type staleTask struct{ err error }

func (e *staleTask) Error() string { return e.err.Error() }
func (e *staleTask) Unwrap() error { return e.err }

// updateTask writes t if its stored state is still expect; a refusal
// because it changed is a *staleTask, which reapply handles.
func (s *Service) updateTask(ctx context.Context, t ota.Task, expect ota.TaskState) error {
	err := s.store.UpdateTask(ctx, t, expect)
	if ota.ErrorCode(err) == ota.CodeConflict {
		return &staleTask{err}
	}
	if err == nil && (t.State == ota.TaskSucceeded || t.State == ota.TaskFailed) {
		s.opts.TasksFinished(t.State, t.Reason, 1)
	}
	return err
}

// reapply runs apply, a device report's read-decide-write, again from the
// read whenever its write found the task changed meanwhile. Replicas share
// a device's messages (an external broker's shared subscription hands its
// progress and version reports to different replicas), so this race is
// normal, and a report must be applied to the task as it now is rather than
// dropped. Still stale after maxReapply attempts, the report is refused as
// CodeUnavailable: transient, so a carrier leaves it for redelivery.
func (s *Service) reapply(ctx context.Context, what string, apply func() error) error {
	var err error
	for attempt := 1; attempt <= maxReapply; attempt++ {
		err = apply()
		var stale *staleTask
		if !errors.As(err, &stale) {
			return err
		}
		s.log.Debug("device report raced another writer; applying it again", "report", what, "attempt", attempt, "err", err)
	}
	return &ota.Error{Code: ota.CodeUnavailable, Err: err,
		Message: fmt.Sprintf("the %s could not be applied: the device's task kept changing (%d attempts); send it again", what, maxReapply)}
}

// matchDynamicJobs gives the device a task in the newest running dynamic job
// on the module whose target it now matches ("the latest one wins"). It is
// called only when the version report's store call saw such a job running
// (most reports see none); the device (its groups and labels) is read after
// the report's version was written, so it has it.
func (s *Service) matchDynamicJobs(ctx context.Context, dev ota.DeviceRef, module, version string, now time.Time) error {
	// A product belongs to one tenant: its key selects the tenant's jobs.
	jobs, _, err := s.store.ListJobs(ctx, store.JobFilter{ProductKey: dev.ProductKey, Module: module,
		Selection: ota.SelectDynamic, States: []ota.JobState{ota.JobRunning}}, store.Page{Limit: 100}, false)
	if err != nil || len(jobs) == 0 {
		return err
	}
	d, err := s.store.GetDevice(ctx, dev.ProductKey, dev.Name)
	if err != nil {
		return err
	}
	for i := range jobs {
		job := &jobs[i]
		if !dynamicTargetMatches(&job.Target, &d) {
			continue
		}
		if len(job.Target.SourceVersions) > 0 && !slices.Contains(job.Target.SourceVersions, version) {
			continue
		}
		pkg, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
		if ota.ErrorCode(err) == ota.CodeNotFound {
			continue
		}
		if err != nil {
			return err
		}
		state, _ := job.Admit(&pkg, &d)
		if state == ota.TaskSkipped {
			continue
		}
		n, err := s.insertTasks(ctx, job, []ota.Task{s.targetTask(job, &pkg, d.Name, version, state, ota.ReasonNone, now)}, now)
		if err != nil {
			return err
		}
		if n == 0 {
			// The device has a task in this job already; one the job skipped
			// before (another version, or unknown then) gets its turn now.
			if n, err = s.reviveSkipped(ctx, job, &pkg, &d); err != nil {
				return err
			}
		}
		if n == 1 {
			// A job canceled while we inserted must not keep the task.
			cur, err := s.store.GetJob(ctx, job.TenantID, job.ID)
			if err != nil {
				return err
			}
			if cur.State.Terminal() {
				_, err := s.updateTasks(ctx, store.TaskFilter{JobID: job.ID, Devices: []string{d.Name}, States: ota.ActiveTaskStates},
					store.TaskUpdate{State: ota.TaskCanceled, Reason: endReason(cur), Now: now})
				return err
			}
			s.log.Debug("dynamic job took a device", "job", job.ID, "device", d.Name, "version", version)
		}
		// Inserted, or the device already had a task (this job's or
		// another's): older dynamic jobs do not get it either.
		return nil
	}
	return nil
}

// reviveSkipped admits the device's skipped task in a dynamic job again
// (ota.Job.Admit decides its state) and reports whether it did.
func (s *Service) reviveSkipped(ctx context.Context, job *ota.Job, pkg *ota.Package, d *ota.Device) (int64, error) {
	tasks, _, err := s.store.ListTasks(ctx, store.TaskFilter{JobID: job.ID, Devices: []string{d.Name},
		States: []ota.TaskState{ota.TaskSkipped}, Limit: 1}, store.Page{Limit: 1}, false)
	if err != nil || len(tasks) == 0 {
		return 0, err
	}
	t := &tasks[0]
	if err := s.admitIn(ctx, job, pkg, t, d); err != nil {
		return 0, err
	}
	if t.State == ota.TaskSkipped {
		return 0, nil
	}
	s.log.Debug("dynamic job took a device it had skipped", "job", job.ID, "device", d.Name, "state", t.State)
	return 1, nil
}

func dynamicTargetMatches(t *ota.Target, d *ota.Device) bool {
	if !t.MatchesLabels(d) {
		return false
	}
	switch {
	case t.All:
		return true
	case len(t.Groups) > 0:
		for _, g := range d.Groups {
			if slices.Contains(t.Groups, g) {
				return true
			}
		}
		return false
	case len(t.Devices) > 0:
		return slices.Contains(t.Devices, d.Name)
	}
	return true // a source-version target: checked by the caller
}

// failTask fails a task, or puts it in retry_wait when the job retries.
func (s *Service) failTask(ctx context.Context, t *ota.Task, reason ota.Reason, detail string) error {
	job, err := s.store.GetJob(ctx, t.TenantID, t.JobID)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	state, next := job.AfterFailure(*t, reason, now)
	prev := t.State
	if err := t.Transition(state, now); err != nil {
		return err
	}
	t.Reason, t.Detail, t.NextAttemptAt = reason, detail, next
	s.progress.forget(t.ID)
	return s.updateTask(ctx, *t, prev)
}

// ReportProgress moves the device's task to in_progress (starting the timeout
// clock at the first report) or, on a negative step, fails it (with
// automatic retry if the job allows it). Like ReportVersion, a report that
// raced another writer of the task is applied again to the task as it now
// is. One on a task that has ended (its version report was handled first)
// is a CodeConflict: late, not worth retrying.
func (s *Service) ReportProgress(ctx context.Context, dev ota.DeviceRef, pr Progress) error {
	if pr.Step > 100 {
		return ota.Invalid("step", "progress step must be at most 100 (or negative for a failure), got %d", pr.Step)
	}
	return s.reapply(ctx, "progress report", func() error { return s.reportProgress(ctx, dev, pr) })
}

func (s *Service) reportProgress(ctx context.Context, dev ota.DeviceRef, pr Progress) error {
	module := moduleOrDefault(pr.Module)
	id := pr.TaskID
	if id == 0 {
		t, err := s.activeTask(ctx, dev, module)
		if err != nil {
			return err
		}
		if t == nil {
			return ota.Errorf(ota.CodeNotFound, "device %q has no unfinished task on module %q", dev.Name, module)
		}
		id = t.ID
	}
	if pr.Step < 0 {
		// A failure: what follows (retry or not) is the job's to say.
		t, err := s.store.GetTask(ctx, id)
		if err != nil {
			return err
		}
		if err := acceptsProgress(&t, dev); err != nil {
			return err
		}
		reason := pr.Reason
		if reason == ota.ReasonNone {
			reason = ota.ReasonForStep(pr.Step)
		}
		detail := pr.Detail
		if detail == "" {
			detail = fmt.Sprintf("the device reported step %d", pr.Step)
		}
		return s.failTask(ctx, &t, reason, detail)
	}
	// A task this replica already wrote in_progress only moves its
	// percentage: the report waits to be written with others (progress.go).
	now := s.clock.Now()
	if s.progress.hold(dev, store.TaskProgress{TaskID: id, Progress: pr.Step, Detail: pr.Detail, At: now}, s.flushProgressLater) {
		return nil
	}
	// Otherwise it is one write that reads the task where it writes it
	// (store.ModifyTask): no other writer can come between its check and
	// its write.
	t, err := s.store.ModifyTask(ctx, id, func(t *ota.Task) error {
		if err := acceptsProgress(t, dev); err != nil {
			return err
		}
		if err := t.Transition(ota.TaskInProgress, now); err != nil {
			return err
		}
		t.Progress, t.Detail = pr.Step, pr.Detail
		return nil
	})
	if err == nil {
		s.progress.track(t.ID, dev)
	}
	return err
}

// acceptsProgress refuses a progress report on a task that is not the
// device's (CodeNotFound, as for a task that does not exist) or not yet
// notified or already ended (CodeConflict).
func acceptsProgress(t *ota.Task, dev ota.DeviceRef) error {
	if t.ProductKey != dev.ProductKey || t.DeviceName != dev.Name {
		return ota.Errorf(ota.CodeNotFound, "task %d not found for device %q", t.ID, dev.Name)
	}
	switch t.State {
	case ota.TaskQueued, ota.TaskNotified, ota.TaskInProgress:
		return nil
	}
	return ota.Errorf(ota.CodeConflict, "the task of device %q is %s; progress is accepted only once it has been notified", dev.Name, t.State)
}

// NextNotice returns the notice for the device's active task on module (nil
// when there is none, or when it is not the device's turn yet). A queued
// task is claimed to notified here when its job is running, in its window,
// and accepts device requests (ota.Job.AcceptsDeviceRequests). Devices call
// it when they connect or poll; a notified or in-progress task's notice is
// returned again, with a fresh URL.
func (s *Service) NextNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error) {
	module = moduleOrDefault(module)
	t, err := s.activeTask(ctx, dev, module)
	if err != nil || t == nil {
		return nil, err
	}
	job, err := s.store.GetJob(ctx, t.TenantID, t.JobID)
	if err != nil {
		if t.State == ota.TaskWaiting {
			return nil, ignoreNotFound(err) // left waiting; nothing to send
		}
		return nil, err
	}
	var pkg *ota.Package
	loadPackage := func() error {
		if pkg == nil {
			p, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
			if err != nil {
				return err
			}
			pkg = &p
		}
		return nil
	}
	now := s.clock.Now()
	// The state the write below expects the task to be in; a waiting task
	// is admitted (the device is asking, so it is there) and, when the job
	// lets a device pull, notified in the same write.
	expect := t.State
	switch t.State {
	case ota.TaskWaiting:
		if job.State.Terminal() {
			return nil, nil // its end cancels the task
		}
		if err := loadPackage(); err != nil {
			return nil, ignoreNotFound(err) // the engine cancels a job whose package is gone
		}
		d, err := s.store.GetDevice(ctx, dev.ProductKey, dev.Name)
		if err != nil {
			return nil, err
		}
		d.Online = true
		if _, _, err := s.admission(&job, pkg, t, &d); err != nil {
			return nil, err
		}
	case ota.TaskQueued, ota.TaskNotified, ota.TaskInProgress:
	default:
		return nil, nil
	}
	if t.State == ota.TaskQueued && job.State == ota.JobRunning && job.AcceptsDeviceRequests() && job.Schedule.InWindow(now) {
		if err := t.Transition(ota.TaskNotified, now); err != nil {
			return nil, err
		}
		t.Attempts++
		t.NotifiedAt = now
	}
	if t.State != expect {
		if err := s.store.UpdateTask(ctx, *t, expect); err != nil {
			if ota.ErrorCode(err) == ota.CodeConflict {
				// The engine claimed or admitted it meanwhile: read it again.
				return s.NextNotice(ctx, dev, module)
			}
			return nil, err
		}
	}
	if t.State != ota.TaskNotified && t.State != ota.TaskInProgress {
		return nil, nil // still waiting, skipped, or queued for the engine to notify
	}
	if err := loadPackage(); err != nil {
		return nil, err
	}
	url, err := s.PackageURL(ctx, *pkg)
	if err != nil {
		return nil, err
	}
	n := s.notice(t, &job, pkg, url, now)
	return &n, nil
}

// seenResolution is how stale a polling device's last sighting may get in
// the store: a fleet polling every few seconds costs one write per device
// and half this interval, not one per request. The store refreshes a
// sighting older than half of it (DeviceSeen), and a DeviceView skips the
// store for half of it after each call, so the two halves add up to it.
const seenResolution = 30 * time.Second

// DeviceSeen records that a device without a connection (device HTTP) was
// just heard from: LastSeen moves, Online does not (an HTTP device is never
// "connected"; its polls admit its waiting tasks through NextNotice).
func (s *Service) DeviceSeen(ctx context.Context, dev ota.DeviceRef) error {
	now := s.clock.Now()
	return s.store.SetDeviceSeen(ctx, dev.ProductKey, dev.Name, now, now.Add(-seenResolution/2))
}

// DeviceConnected records that a device came online (true) or went offline,
// and admits its waiting tasks (DeviceAvailable) or gives its due ones back
// to waiting (DeviceUnavailable). Front-ends call NextNotice after a connect
// to deliver what is due.
func (s *Service) DeviceConnected(ctx context.Context, dev ota.DeviceRef, online bool) error {
	_, err := s.DevicePresence(ctx, dev, online, 0)
	return err
}

// maxPresenceSince bounds a status's connection stamp (Unix ms) so that
// its store stamp (twice it, plus one) fits an int64 with room to spare.
const maxPresenceSince = 1 << 60

// DevicePresence is DeviceConnected for a status stamped with its
// connection (Unix ms; 0: unordered). The order is one rule: connections
// by their stamp, and within one connection its online before its offline
// (its will), so the store stamp is since×2, plus 1 when offline. A status
// older than the last one applied changes nothing (applied false).
func (s *Service) DevicePresence(ctx context.Context, dev ota.DeviceRef, online bool, since int64) (bool, error) {
	if since < 0 || since >= maxPresenceSince {
		return false, ota.Invalid("since", "since %d is not a connection time in Unix milliseconds", since)
	}
	stamp := since * 2
	if stamp != 0 && !online {
		stamp++
	}
	applied, err := s.store.SetDeviceOnline(ctx, dev.ProductKey, dev.Name, online, s.clock.Now(), stamp)
	if err != nil || !applied {
		return false, err
	}
	if online {
		return true, s.DeviceAvailable(ctx, dev)
	}
	return true, s.DeviceUnavailable(ctx, dev)
}
