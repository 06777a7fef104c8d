package service

// Jobs, tasks and the operator's actions on them. Owner: rollout engine. The
// engine's tick is in engine.go, materialization in materialize.go.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// JobView is a job with its task counts.
type JobView struct {
	Job    ota.Job
	Counts ota.TaskCounts
}

// Initializing reports whether the job's tasks are still being created in
// the background (Counts then shows those created so far).
func (v JobView) Initializing() bool { return !v.Job.Materialized }

// Outcome is how the job went once it has ended: as stored when it ended,
// else (a job ended before outcomes were stored) from its counts.
func (v JobView) Outcome() ota.JobOutcome {
	if v.Job.Outcome != ota.OutcomeNone {
		return v.Job.Outcome
	}
	return ota.Outcome(v.Job.State, v.Counts)
}

// TaskResult is the outcome of an operator action on one device's task.
type TaskResult struct {
	Device string
	OK     bool
	Err    error
}

// CreateJob validates and records a job. Every target is a task from the
// moment the job exists: a job on a device list (at most ota.MaxJobDevices,
// without gray sampling) is stored with all its tasks in one transaction;
// any other target is materialized by the engine in batches (never holding
// all devices in memory), and the job says so (JobView.Initializing) until
// it is done. A rejected job leaves nothing.
//
// An upgrade job needs a package that does not need verification or has
// passed it (CodeNotVerified). A verify job needs a package not verified and
// not being verified (CodeConflict) and listed devices that exist; it moves
// the package to verifying, and its outcome to verified or failed. A job
// given with State JobPaused is created without starting: it does nothing
// until StartJob. At most one dynamic job per package is unfinished at a
// time (CodeConflict).
func (s *Service) CreateJob(ctx context.Context, p Principal, in ota.Job) (ota.Job, error) {
	now := s.clock.Now()
	in.Normalize()
	if err := in.Validate(now); err != nil {
		return ota.Job{}, err
	}
	if in.PackageID == "" {
		return ota.Job{}, ota.Invalid("package_id", "package_id is required")
	}
	pkg, err := s.store.GetPackage(ctx, p.TenantID, in.PackageID)
	if err != nil {
		return ota.Job{}, err
	}
	if err := s.checkQuota(ctx, p.TenantID, quotaRunningJobs, 0); err != nil {
		return ota.Job{}, err
	}
	switch in.Type {
	case ota.JobUpgrade:
		if pkg.NeedVerify && pkg.VerifyStatus != ota.VerifyPassed {
			return ota.Job{}, &ota.Error{Code: ota.CodeNotVerified, Field: "package_id", Message: fmt.Sprintf(
				"package %q must pass verification before an upgrade job may use it (its status is %s): create a verify job on a few devices first",
				pkg.ID, pkg.VerifyStatus)}
		}
	case ota.JobVerify:
		if pkg.VerifyStatus == ota.VerifyPassed || pkg.VerifyStatus == ota.VerifyInProgress {
			return ota.Job{}, ota.Errorf(ota.CodeConflict, "package %q is already %s: a package is verified once", pkg.ID, pkg.VerifyStatus)
		}
		for _, name := range in.Target.Devices {
			d, err := s.store.GetDevice(ctx, pkg.ProductKey, name)
			if ota.ErrorCode(err) == ota.CodeNotFound || (err == nil && d.TenantID != p.TenantID) {
				return ota.Job{}, ota.Invalid("target.devices", "device %q is not a device of product %q", name, pkg.ProductKey)
			}
			if err != nil {
				return ota.Job{}, err
			}
		}
	}

	if in.Selection == ota.SelectDynamic {
		// Alibaba: one dynamic job per package; a second would only compete
		// with the first for the same devices.
		live, _, err := s.store.ListJobs(ctx, store.JobFilter{TenantID: p.TenantID, PackageID: pkg.ID, Selection: ota.SelectDynamic,
			States: unfinishedJobStates}, store.Page{Limit: 1}, false)
		if err != nil {
			return ota.Job{}, err
		}
		if len(live) > 0 {
			return ota.Job{}, ota.Errorf(ota.CodeConflict, "package %q already has an unfinished dynamic job %q: cancel it first, or change its settings",
				pkg.ID, live[0].ID)
		}
	}

	job := in
	job.ID = ota.NewID(now)
	job.TenantID = p.TenantID
	job.ProductKey, job.Module, job.PackageKind = pkg.ProductKey, pkg.TargetModule(), pkg.Kind
	job.CreatedAt, job.UpdatedAt = now, now
	job.StateReason, job.Materialized, job.MaterializeCursor = "", false, ""
	job.StartedAt, job.FinishedAt = time.Time{}, time.Time{}
	switch {
	case in.State == ota.JobPaused: // created without starting (StartJob)
		job.State, job.StateReason = ota.JobPaused, heldReason
	case job.Schedule.Started(now):
		job.State, job.StartedAt = ota.JobRunning, now
	default:
		job.State = ota.JobPlanned
	}
	var tasks []ota.Task
	if len(job.Target.Devices) > 0 && job.Target.GrayPercent == 0 {
		if tasks, err = s.listTasks(ctx, &job, &pkg, now); err != nil {
			return ota.Job{}, err
		}
		if err := s.overwriteFor(ctx, &job, tasks, now); err != nil {
			return ota.Job{}, err
		}
		job.Materialized = true
	}
	// The store re-checks the package in the job's transaction: deleted
	// meanwhile is CodeNotFound, and of concurrent verify jobs one wins.
	if err := s.store.CreateJobWithTasks(s.audited(ctx, p, job.TenantID, "job.create", "job", job.ID, "package "+job.PackageID), job, tasks); err != nil {
		return ota.Job{}, err
	}
	s.log.Info("job created", "job", job.ID, "tenant", job.TenantID, "package", job.PackageID, "type", job.Type,
		"selection", job.Selection, "state", job.State)
	s.wakeEngine() // start it now, not at the next tick
	return job, nil
}

// GetJob returns a job with its task counts.
func (s *Service) GetJob(ctx context.Context, p Principal, id string) (JobView, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, id)
	if err != nil {
		return JobView{}, err
	}
	counts, err := s.store.CountTasks(ctx, id)
	if err != nil {
		return JobView{}, err
	}
	return JobView{Job: job, Counts: counts}, nil
}

// ListJobs lists the caller's jobs, newest first.
func (s *Service) ListJobs(ctx context.Context, p Principal, f store.JobFilter, page store.Page) ([]ota.Job, int64, error) {
	f.TenantID = p.TenantID
	if f.NameLocale != "" {
		if err := ota.CheckLocale("name_locale", f.NameLocale); err != nil {
			return nil, 0, err
		}
	}
	return s.store.ListJobs(ctx, f, page, true)
}

// PauseJob stops dispatching new notices. Devices already notified may
// finish; timeouts and retries still run.
func (s *Service) PauseJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	return s.changeJob(ctx, p, id, func(j *ota.Job) error {
		switch j.State {
		case ota.JobPaused:
			return nil
		case ota.JobPlanned, ota.JobRunning:
			j.State, j.StateReason = ota.JobPaused, "paused by the operator"
			return nil
		}
		return ota.Errorf(ota.CodeConflict, "job %q is %s; only a planned or running job can be paused", j.ID, j.State)
	})
}

// ResumeJob continues a paused job: running again, or planned when its start
// time has not come yet.
func (s *Service) ResumeJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	now := s.clock.Now()
	return s.changeJob(ctx, p, id, func(j *ota.Job) error {
		switch j.State {
		case ota.JobPlanned, ota.JobRunning:
			return nil
		case ota.JobPaused:
			j.StateReason = ""
			if j.Schedule.Started(now) {
				j.State = ota.JobRunning
				if j.StartedAt.IsZero() {
					j.StartedAt = now
				}
			} else {
				j.State = ota.JobPlanned
			}
			return nil
		}
		return ota.Errorf(ota.CodeConflict, "job %q is %s; only a paused job can be resumed", j.ID, j.State)
	})
}

// changeJob applies change to the stored job with a compare-and-set on its
// state, re-reading and trying again when the engine or another replica
// changed the state meanwhile.
func (s *Service) changeJob(ctx context.Context, p Principal, id string, change func(*ota.Job) error) (ota.Job, error) {
	for attempt := 0; ; attempt++ {
		job, err := s.store.GetJob(ctx, p.TenantID, id)
		if err != nil {
			return ota.Job{}, err
		}
		prev, neverStarted := job.State, job.StartedAt.IsZero()
		if err := change(&job); err != nil {
			return ota.Job{}, err
		}
		if job.State == prev {
			return job, nil
		}
		job.UpdatedAt = s.clock.Now()
		action := jobStateAction(job.State)
		if action == "job.resume" && neverStarted {
			action = "job.start" // a job created held (StartJob), or paused before its start time
		}
		err = s.store.UpdateJob(s.audited(ctx, p, job.TenantID, action, "job", job.ID, string(prev)+" -> "+string(job.State)), job, prev)
		if ota.ErrorCode(err) == ota.CodeConflict && attempt < 3 {
			continue
		}
		if err != nil {
			return ota.Job{}, err
		}
		s.log.Info("job state changed", "job", id, "from", prev, "to", job.State)
		return job, nil
	}
}

// CancelJob cancels a job and all its unfinished tasks (ReasonJobCanceled).
// A verify job's package goes back to unverified unless a task had failed.
func (s *Service) CancelJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	for attempt := 0; ; attempt++ {
		job, err := s.store.GetJob(ctx, p.TenantID, id)
		if err != nil {
			return ota.Job{}, err
		}
		switch job.State {
		case ota.JobCanceled:
			return job, nil
		case ota.JobCompleted:
			return ota.Job{}, ota.Errorf(ota.CodeConflict, "job %q is already completed", id)
		}
		ended, err := s.endJob(withPendingAudit(ctx, s.entry(ctx, p, job.TenantID, "job.cancel", "job", job.ID, string(job.State)+" -> canceled")), job, ota.JobCanceled, ota.ReasonJobCanceled, "canceled by the operator")
		if err != nil {
			return ota.Job{}, err
		}
		if ended || attempt >= 3 {
			return s.store.GetJob(ctx, p.TenantID, id)
		}
	}
}

// DeleteJob removes a finished or canceled job and its tasks.
func (s *Service) DeleteJob(ctx context.Context, p Principal, id string) error {
	job, err := s.store.GetJob(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	if !job.State.Terminal() {
		return ota.Errorf(ota.CodeConflict, "job %q is %s: cancel it before deleting it", id, job.State)
	}
	return s.store.DeleteJob(s.audited(ctx, p, p.TenantID, "job.delete", "job", id, ""), p.TenantID, id)
}

// ListTasks pages the caller's tasks (f.JobID for one job's).
func (s *Service) ListTasks(ctx context.Context, p Principal, f store.TaskFilter, page store.Page) ([]ota.Task, int64, error) {
	f.TenantID = p.TenantID
	if f.JobID != "" {
		if _, err := s.store.GetJob(ctx, p.TenantID, f.JobID); err != nil {
			return nil, 0, err
		}
	}
	s.flushProgressForRead(ctx)
	return s.store.ListTasks(ctx, f, page, true)
}

// taskAction is one operator action on tasks: the states it applies to and
// the state it moves them to.
type taskAction struct {
	verb   string
	from   []ota.TaskState
	to     ota.TaskState
	reason ota.Reason
	// admit sends the task through ota.Job.Admit after the move, as a new
	// target would be: a retried task is due only if its device is online
	// on a version the job applies to, and waits (or is skipped) otherwise.
	admit bool
}

var (
	retryAction   = taskAction{verb: "retry", from: []ota.TaskState{ota.TaskFailed, ota.TaskCanceled}, to: ota.TaskWaiting, admit: true}
	cancelAction  = taskAction{verb: "cancel", from: ota.ActiveTaskStates, to: ota.TaskCanceled, reason: ota.ReasonCanceled}
	confirmAction = taskAction{verb: "confirm", from: []ota.TaskState{ota.TaskConfirm}, to: ota.TaskQueued}
)

// RetryTasks sends failed or canceled tasks of the given devices (all, when
// devices is empty) back to the start: queued (or confirm when the job needs
// confirmation) when the device is online on a qualifying version, waiting
// when it is offline or its version is unknown (ota.Job.Admit decides). A completed job runs again; a canceled one refuses. The
// attempts count is kept, so automatic retries already used are not renewed.
func (s *Service) RetryTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, jobID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	switch {
	case job.State == ota.JobCanceled:
		return nil, ota.Errorf(ota.CodeConflict, "job %q is canceled; its tasks cannot be retried", jobID)
	case job.State == ota.JobCompleted && job.Schedule.Over(now):
		return nil, ota.Errorf(ota.CodeConflict, "job %q has passed its finish time; its tasks cannot be retried", jobID)
	}
	results, err := s.applyTaskAction(ctx, p, &job, devices, retryAction)
	if err != nil {
		return results, err
	}
	if job.State == ota.JobCompleted && slices.ContainsFunc(results, func(r TaskResult) bool { return r.OK }) {
		if err := s.reopen(ctx, job); err != nil {
			return results, err
		}
	}
	s.engine.setAfter(jobID, 0)
	return results, nil
}

// reopen runs a completed job again after an operator retried some of its
// tasks; a verify job's package is being verified again.
func (s *Service) reopen(ctx context.Context, job ota.Job) error {
	now := s.clock.Now()
	job.State, job.StateReason, job.FinishedAt, job.UpdatedAt, job.Outcome = ota.JobRunning, "", time.Time{}, now, ota.OutcomeNone
	if err := s.store.UpdateJob(ctx, job, ota.JobCompleted); err != nil {
		return ignoreConflict(err)
	}
	if job.Type != ota.JobVerify {
		return nil
	}
	pkg, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
	if err != nil {
		return ignoreNotFound(err)
	}
	pkg.VerifyStatus, pkg.ModifiedAt = ota.VerifyInProgress, now
	return s.store.UpdatePackage(ctx, pkg)
}

// CancelTasks cancels unfinished tasks of the given devices (all when empty)
// with ReasonCanceled.
func (s *Service) CancelTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, jobID)
	if err != nil {
		return nil, err
	}
	if job.State.Terminal() {
		return nil, ota.Errorf(ota.CodeConflict, "job %q is %s; it has no unfinished task to cancel", jobID, job.State)
	}
	return s.applyTaskAction(ctx, p, &job, devices, cancelAction)
}

// ConfirmTasks moves tasks waiting in confirm to queued (all when devices is
// empty).
func (s *Service) ConfirmTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, jobID)
	if err != nil {
		return nil, err
	}
	if job.State.Terminal() {
		return nil, ota.Errorf(ota.CodeConflict, "job %q is %s; its tasks cannot be confirmed", jobID, job.State)
	}
	return s.applyTaskAction(ctx, p, &job, devices, confirmAction)
}

// taskActionPage is how many tasks an operator action reads per store call.
const taskActionPage = 500

// applyTaskAction moves the named devices' tasks (every task in a from state
// when devices is empty) one at a time with a compare-and-set, reporting per
// device.
func (s *Service) applyTaskAction(ctx context.Context, p Principal, job *ota.Job, devices []string, a taskAction) ([]TaskResult, error) {
	if len(devices) > ota.MaxJobDevices {
		return nil, ota.Invalid("devices", "at most %d devices per call, got %d", ota.MaxJobDevices, len(devices))
	}
	var pkg *ota.Package
	if a.admit {
		p, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
		if err != nil {
			return nil, err
		}
		pkg = &p
	}
	var results []TaskResult
	if len(devices) == 0 {
		var after int64
		for {
			tasks, _, err := s.store.ListTasks(ctx, store.TaskFilter{JobID: job.ID, States: a.from, AfterID: after,
				Limit: taskActionPage}, store.Page{Limit: taskActionPage}, false)
			if err != nil {
				return results, err
			}
			for i := range tasks {
				results = append(results, s.applyToTask(ctx, p, job, pkg, &tasks[i], a))
			}
			if len(tasks) < taskActionPage {
				return results, nil
			}
			after = tasks[len(tasks)-1].ID
		}
	}
	for start := 0; start < len(devices); start += taskActionPage {
		chunk := devices[start:min(start+taskActionPage, len(devices))]
		tasks, _, err := s.store.ListTasks(ctx, store.TaskFilter{JobID: job.ID, Devices: chunk},
			store.Page{Limit: len(chunk)}, false)
		if err != nil {
			return results, err
		}
		byDevice := make(map[string]*ota.Task, len(tasks))
		for i := range tasks {
			byDevice[tasks[i].DeviceName] = &tasks[i]
		}
		for _, d := range chunk {
			t := byDevice[d]
			if t == nil {
				results = append(results, TaskResult{Device: d, Err: ota.Errorf(ota.CodeNotFound,
					"device %q has no task in job %q", d, job.ID)})
				continue
			}
			results = append(results, s.applyToTask(ctx, p, job, pkg, t, a))
		}
	}
	return results, nil
}

// applyToTask moves one task; pkg is the job's package when a.admit. Each
// task moved is one audit entry ("task.retry", "task.cancel",
// "task.confirm"), written with the task's own compare-and-set.
func (s *Service) applyToTask(ctx context.Context, p Principal, job *ota.Job, pkg *ota.Package, t *ota.Task, a taskAction) TaskResult {
	res := TaskResult{Device: t.DeviceName}
	if !slices.Contains(a.from, t.State) {
		res.Err = ota.Errorf(ota.CodeConflict, "the task of device %q is %s; only %v tasks can be %s", t.DeviceName, t.State,
			a.from, pastTense(a.verb))
		return res
	}
	prev := t.State
	if err := t.Transition(a.to, s.clock.Now()); err != nil {
		res.Err = err
		return res
	}
	if a.reason != ota.ReasonNone {
		t.Reason, t.Detail = a.reason, "by the operator"
	}
	audited := s.audited(ctx, p, job.TenantID, "task."+a.verb, "task", strconv.FormatInt(t.ID, 10),
		fmt.Sprintf("job %s device %s/%s: %s -> %s", job.ID, t.ProductKey, t.DeviceName, prev, t.State))
	if err := s.store.UpdateTask(audited, *t, prev); err != nil {
		res.Err = err
		return res
	}
	s.progress.forget(t.ID)
	if a.admit {
		d, err := s.store.GetDevice(ctx, t.ProductKey, t.DeviceName)
		var dev *ota.Device
		switch ota.ErrorCode(err) {
		case "":
			dev = &d
		case ota.CodeNotFound: // deleted meanwhile: Admit skips it as not_found
		default:
			res.Err = err
			return res
		}
		if err := s.admitIn(ctx, job, pkg, t, dev); err != nil {
			res.Err = err
			return res
		}
	}
	res.OK = true
	return res
}

func pastTense(verb string) string {
	switch verb {
	case "retry":
		return "retried"
	case "cancel":
		return "canceled"
	}
	return verb + "ed"
}
