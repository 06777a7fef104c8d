package service

// Waiting tasks: a target device that is offline, or whose version of the
// module is not known yet, has a task in TaskWaiting. It holds the device's
// module but does not count against max_concurrency or max_per_minute, and
// no timeout runs. Device protocols tell the service when a device is back
// (DeviceConnected, ReportVersion, NextNotice all lead here), and the task
// is admitted again with ota.Job.Admit: due (queued, or confirm) when the
// device is online on a qualifying version, skipped when its version does
// not qualify, still waiting otherwise. A device that goes offline before
// it started its upgrade gives its due task back to waiting
// (DeviceUnavailable), so that it is notified again when it returns and its
// timeout clock runs only while it can answer.

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// maxWaitingPerDevice bounds the tasks one availability call looks at: a
// device has at most one active task per module.
const maxWaitingPerDevice = 100

// DeviceAvailable admits the device's waiting tasks again, now that it is
// online or has reported a version. Device protocols call it (through
// DeviceConnected and ReportVersion, or directly) whenever either changes.
// It reads the device as stored, so call it after recording the change.
func (s *Service) DeviceAvailable(ctx context.Context, dev ota.DeviceRef) error {
	// The common case (a connect storm, nothing waiting) costs one indexed
	// query; the device is read only when a task waits for it.
	tasks, _, err := s.store.ListTasks(ctx, store.TaskFilter{ProductKey: dev.ProductKey,
		Devices: []string{dev.Name}, States: []ota.TaskState{ota.TaskWaiting}, Limit: maxWaitingPerDevice},
		store.Page{Limit: maxWaitingPerDevice}, false)
	if err != nil || len(tasks) == 0 {
		return err
	}
	d, err := s.store.GetDevice(ctx, dev.ProductKey, dev.Name)
	if err != nil {
		return err
	}
	for i := range tasks {
		if err := s.admitTask(ctx, &tasks[i], &d); err != nil {
			return err
		}
	}
	return nil
}

// admitTask moves one waiting task where Admit says, if anywhere. A task
// that changed meanwhile (the engine, an operator) is left as it is.
func (s *Service) admitTask(ctx context.Context, t *ota.Task, d *ota.Device) error {
	job, err := s.store.GetJob(ctx, t.TenantID, t.JobID)
	if err != nil {
		return ignoreNotFound(err)
	}
	if job.State.Terminal() {
		return nil // its end cancels the task
	}
	pkg, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
	if err != nil {
		return ignoreNotFound(err) // the engine cancels a job whose package is gone
	}
	return s.admitIn(ctx, &job, &pkg, t, d)
}

// admitIn is admitTask with the job and package read: a waiting task
// becomes due or skipped (admission) and is written.
func (s *Service) admitIn(ctx context.Context, job *ota.Job, pkg *ota.Package, t *ota.Task, d *ota.Device) error {
	prev, changed, err := s.admission(job, pkg, t, d)
	if err != nil || !changed {
		return err
	}
	if err := s.store.UpdateTask(ctx, *t, prev); err != nil {
		return ignoreConflict(err)
	}
	s.log.Debug("task admitted", "job", job.ID, "device", t.DeviceName, "from", prev, "state", t.State, "reason", t.Reason)
	return nil
}

// admission is the one place a waiting task becomes due or skipped: it
// moves t (in memory only) where Admit says and returns the state t was in,
// for the caller's write to expect. d is nil for a device that does not
// exist (any more). changed is false when Admit keeps t where it is.
func (s *Service) admission(job *ota.Job, pkg *ota.Package, t *ota.Task, d *ota.Device) (prev ota.TaskState, changed bool, err error) {
	state, reason := job.Admit(pkg, d)
	prev = t.State
	if state == prev {
		return prev, false, nil
	}
	var from string
	if d != nil {
		from = d.Version(job.Module)
	}
	if err := t.Transition(state, s.clock.Now()); err != nil {
		return prev, false, err
	}
	t.FromVersion = from
	if state == ota.TaskSkipped {
		t.Reason, t.Detail = reason, skipDetail(reason, from, pkg.Version)
	}
	return prev, true, nil
}

// DeviceUnavailable gives the device's due tasks that it has not started
// (queued, notified) back to waiting: it went offline. Set-based: one
// store update for all its modules.
func (s *Service) DeviceUnavailable(ctx context.Context, dev ota.DeviceRef) error {
	_, err := s.updateTasks(ctx, store.TaskFilter{ProductKey: dev.ProductKey, Devices: []string{dev.Name},
		States: []ota.TaskState{ota.TaskQueued, ota.TaskNotified}},
		store.TaskUpdate{State: ota.TaskWaiting, Detail: "the device went offline", Now: s.clock.Now()})
	return err
}
