package service

// Job and package lifecycle operations the vendor dialects share: start a
// job created without starting (EnOS), change a job's settings (Alibaba
// UpdateOTAJob), change a package's descriptive fields (ModifyOTAFirmware),
// cancel tasks by state, by task id and by device across jobs. Owner:
// rollout engine.

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// heldReason is the StateReason of a job created without starting.
const heldReason = "created without starting: start it to run"

// StartJob starts a job created without starting (CreateJob with State
// JobPaused): it runs now, or at its schedule's start. A job that runs or
// waits for its start already is left as it is; one that has ended, or
// was paused after it started (use ResumeJob), is a CodeConflict.
func (s *Service) StartJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, id)
	if err != nil {
		return ota.Job{}, err
	}
	switch {
	case job.State == ota.JobRunning || job.State == ota.JobPlanned:
		return job, nil
	case job.State == ota.JobPaused && job.StartedAt.IsZero():
		return s.ResumeJob(ctx, p, id)
	}
	return ota.Job{}, ota.Errorf(ota.CodeConflict, "job %q is %s: only a job created without starting can be started", id, job.State)
}

// JobChange is an operator's change to a job; nil fields stay as they are.
type JobChange struct {
	Description    *string
	MaxConcurrency *int
	MaxPerMinute   *int
	TimeoutSeconds *int
	Tags           *[]ota.Tag
	// SourceVersions replaces the target's source versions. It narrows the
	// devices materialized and matched from now on; tasks that exist stay.
	SourceVersions *[]string
}

// UpdateJob changes a job that has not ended, within the same limits as a
// new job.
func (s *Service) UpdateJob(ctx context.Context, p Principal, id string, c JobChange) (ota.Job, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, id)
	if err != nil {
		return ota.Job{}, err
	}
	if job.State.Terminal() {
		return ota.Job{}, ota.Errorf(ota.CodeConflict, "job %q is %s: an ended job cannot be changed", id, job.State)
	}
	if c.Description != nil {
		job.Description = *c.Description
	}
	if c.MaxConcurrency != nil {
		job.MaxConcurrency = *c.MaxConcurrency
	}
	if c.MaxPerMinute != nil {
		job.MaxPerMinute = *c.MaxPerMinute
	}
	if c.TimeoutSeconds != nil {
		job.TimeoutSeconds = *c.TimeoutSeconds
	}
	if c.Tags != nil {
		job.Tags = slices.Clone(*c.Tags)
	}
	if c.SourceVersions != nil {
		job.Target.SourceVersions = slices.Clone(*c.SourceVersions)
	}
	now := s.clock.Now()
	// The schedule was checked when the job was created; its start may be
	// past by now, which Validate accepts.
	if err := job.Validate(now); err != nil {
		return ota.Job{}, err
	}
	job.UpdatedAt = now
	if err := s.store.UpdateJobSettings(s.audited(ctx, p, job.TenantID, "job.update", "job", job.ID, ""), job); err != nil {
		return ota.Job{}, err
	}
	return job, nil
}

// PackageChange is an operator's change to a package's descriptive fields;
// nil fields stay as they are. What a package installs never changes.
type PackageChange struct {
	Name        *string
	LocalNames  *map[string]string // replaces every translation; an empty map removes them
	Description *string
	CustomInfo  *string
	Tags        *[]ota.Tag
}

// UpdatePackage changes a package's name, local names, description, custom
// info or tags, within the limits of a new package.
func (s *Service) UpdatePackage(ctx context.Context, p Principal, id string, c PackageChange) (ota.Package, error) {
	pkg, err := s.GetPackage(ctx, p, id)
	if err != nil {
		return ota.Package{}, err
	}
	if c.Name != nil {
		pkg.Name = *c.Name
	}
	if c.LocalNames != nil {
		pkg.LocalNames = maps.Clone(*c.LocalNames)
	}
	if c.Description != nil {
		pkg.Description = *c.Description
	}
	if c.CustomInfo != nil {
		pkg.CustomInfo = *c.CustomInfo
	}
	if c.Tags != nil {
		pkg.Tags = slices.Clone(*c.Tags)
	}
	if err := pkg.Validate(); err != nil {
		return ota.Package{}, err
	}
	pkg.ModifiedAt = s.clock.Now()
	if err := s.store.UpdatePackageInfo(s.audited(ctx, p, pkg.TenantID, "package.update", "package", pkg.ID, ""), pkg); err != nil {
		return ota.Package{}, err
	}
	return pkg, nil
}

// CancelTasksWhere cancels a job's unfinished tasks in the given states
// (all unfinished states when none) and, when ids are given, only those
// tasks, in one store update; it returns how many were canceled. Alibaba's
// CancelOTATaskByJob flags and task-id cancels map onto it.
func (s *Service) CancelTasksWhere(ctx context.Context, p Principal, jobID string, states []ota.TaskState, ids []int64) (int64, error) {
	job, err := s.store.GetJob(ctx, p.TenantID, jobID)
	if err != nil {
		return 0, err
	}
	if job.State.Terminal() {
		return 0, ota.Errorf(ota.CodeConflict, "job %q is %s; it has no unfinished task to cancel", jobID, job.State)
	}
	if len(ids) > ota.MaxJobDevices {
		return 0, ota.Invalid("task_ids", "at most %d task ids per call, got %d", ota.MaxJobDevices, len(ids))
	}
	for _, st := range states {
		if !slices.Contains(ota.ActiveTaskStates, st) {
			return 0, ota.Invalid("states", "only unfinished tasks can be canceled; %q is not one of %v", st, ota.ActiveTaskStates)
		}
	}
	if len(states) == 0 {
		states = ota.ActiveTaskStates
	}
	detail := fmt.Sprintf("states %v", states)
	if len(ids) > 0 {
		detail += fmt.Sprintf(", %d task ids", len(ids))
	}
	return s.updateTasks(s.audited(ctx, p, job.TenantID, "tasks.cancel", "job", job.ID, detail),
		store.TaskFilter{TenantID: p.TenantID, JobID: jobID, States: states, IDs: ids},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Detail: "by the operator", Now: s.clock.Now()})
}

// CancelDeviceTasks cancels every unfinished task of a device, in any job
// and on any module (module "" = all), in one store update.
func (s *Service) CancelDeviceTasks(ctx context.Context, p Principal, productKey, device, module string) (int64, error) {
	if _, err := s.GetDevice(ctx, p, productKey, device); err != nil {
		return 0, err
	}
	detail := "every module"
	if module != "" {
		detail = "module " + module
	}
	return s.updateTasks(s.audited(ctx, p, p.TenantID, "device.cancel_tasks", "device", productKey+"/"+device, detail),
		store.TaskFilter{TenantID: p.TenantID, ProductKey: productKey, Module: module,
			Devices: []string{device}, States: ota.ActiveTaskStates},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Detail: "by the operator", Now: s.clock.Now()})
}
