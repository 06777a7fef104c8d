package service

// Jobs, tasks and the rollout engine's tick. Owner: rollout engine.

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// JobView is a job with its task counts.
type JobView struct {
	Job    ota.Job
	Counts ota.TaskCounts
}

// TaskResult is the outcome of an operator action on one device's task.
type TaskResult struct {
	Device string
	OK     bool
	Err    error
}

// CreateJob validates and records a job and starts materializing its tasks in
// batches (never holding all devices in memory). A rejected job leaves nothing.
func (s *Service) CreateJob(ctx context.Context, p Principal, in ota.Job) (ota.Job, error) {
	panic("not implemented")
}

// GetJob returns a job with its task counts.
func (s *Service) GetJob(ctx context.Context, p Principal, id string) (JobView, error) {
	panic("not implemented")
}

// ListJobs lists the caller's jobs, newest first.
func (s *Service) ListJobs(ctx context.Context, p Principal, f store.JobFilter, page store.Page) ([]ota.Job, int64, error) {
	panic("not implemented")
}

// PauseJob stops dispatching new notices.
func (s *Service) PauseJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	panic("not implemented")
}

// ResumeJob continues a paused job.
func (s *Service) ResumeJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	panic("not implemented")
}

// CancelJob cancels a job and all its unfinished tasks.
func (s *Service) CancelJob(ctx context.Context, p Principal, id string) (ota.Job, error) {
	panic("not implemented")
}

// DeleteJob removes a finished or canceled job and its tasks.
func (s *Service) DeleteJob(ctx context.Context, p Principal, id string) error {
	panic("not implemented")
}

// ListTasks pages a job's tasks.
func (s *Service) ListTasks(ctx context.Context, p Principal, f store.TaskFilter, page store.Page) ([]ota.Task, int64, error) {
	panic("not implemented")
}

// RetryTasks sends failed or canceled tasks of the given devices (all, when
// devices is empty) back to queued (or confirm).
func (s *Service) RetryTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	panic("not implemented")
}

// CancelTasks cancels unfinished tasks of the given devices (all when empty).
func (s *Service) CancelTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	panic("not implemented")
}

// ConfirmTasks moves tasks waiting in confirm to queued.
func (s *Service) ConfirmTasks(ctx context.Context, p Principal, jobID string, devices []string) ([]TaskResult, error) {
	panic("not implemented")
}

// Tick advances every planned or running job once: starts due jobs,
// materializes tasks, re-queues retries, times tasks out, applies the abort
// threshold, claims due tasks within window, concurrency and rate and hands
// them to the Notifier, and completes finished jobs. The rollout package calls
// it on a ticker in every replica.
func (s *Service) Tick(ctx context.Context) error {
	panic("not implemented")
}
