package ota

import "time"

// TaskState is where one device stands in one job.
type TaskState string

const (
	TaskConfirm    TaskState = "confirm"     // waits for an operator to confirm (need_confirm)
	TaskQueued     TaskState = "queued"      // due for a notice when window, concurrency and rate allow
	TaskNotified   TaskState = "notified"    // the notice was sent (or is waiting for the device to connect/poll)
	TaskInProgress TaskState = "in_progress" // the device reported progress; the timeout clock runs
	TaskSucceeded  TaskState = "succeeded"   // the device reported the destination version
	TaskFailed     TaskState = "failed"
	TaskCanceled   TaskState = "canceled"
	TaskRetryWait  TaskState = "retry_wait" // failed, re-queued at NextAttemptAt
)

// TaskStates lists every state, in lifecycle order (for counts and docs).
var TaskStates = []TaskState{TaskConfirm, TaskQueued, TaskNotified, TaskInProgress, TaskRetryWait, TaskSucceeded, TaskFailed, TaskCanceled}

// Terminal reports whether the task is over.
func (s TaskState) Terminal() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCanceled
}

// Active reports whether the task holds its device's module: a device has at
// most one active task per module.
func (s TaskState) Active() bool { return !s.Terminal() }

// Dispatched reports whether the task counts against max concurrency.
func (s TaskState) Dispatched() bool { return s == TaskNotified || s == TaskInProgress }

// transitions is the one table of allowed task state changes. The service
// moves tasks only along it, and the stores' compare-and-set updates take
// their expected states from SourcesOf.
//
//   - confirm → queued when an operator confirms; → succeeded when the device
//     reports the destination version anyway.
//   - queued → notified when the engine (or the device's own request) claims
//     it; a device that already holds an earlier notice may report progress,
//     success or failure straight from queued.
//   - notified → in_progress on the first progress report (the timeout clock
//     restarts there); → queued is a claim given back.
//   - notified | in_progress → retry_wait on a retryable failure with retries
//     left, else → failed. Timeouts fail without retry.
//   - retry_wait → queued at NextAttemptAt.
//   - any unfinished state → canceled (operator, job cancel, finish time,
//     overwrite).
//   - failed | canceled → queued or confirm by an operator's retry.
var transitions = map[TaskState][]TaskState{
	TaskConfirm:    {TaskQueued, TaskSucceeded, TaskCanceled},
	TaskQueued:     {TaskNotified, TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled},
	TaskNotified:   {TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled, TaskQueued},
	TaskInProgress: {TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled},
	TaskRetryWait:  {TaskQueued, TaskSucceeded, TaskCanceled},
	TaskFailed:     {TaskQueued, TaskConfirm}, // operator retry
	TaskCanceled:   {TaskQueued, TaskConfirm}, // operator retry
	TaskSucceeded:  nil,
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to TaskState) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition moves t to state to at now, keeping its times consistent:
// FinishedAt is set on a terminal state and cleared otherwise, StartedAt is
// set on the first move to in_progress and cleared when the attempt ends in
// retry_wait or the task starts over, NextAttemptAt is cleared unless the task waits for a retry. A move
// the table forbids is a CodeConflict naming both states.
func (t *Task) Transition(to TaskState, now time.Time) error {
	if !CanTransition(t.State, to) {
		return Errorf(CodeConflict, "task of device %q is %s and cannot become %s", t.DeviceName, t.State, to)
	}
	t.State = to
	t.UpdatedAt = now
	switch {
	case to.Terminal():
		t.FinishedAt = now
	case to == TaskInProgress:
		if t.StartedAt.IsZero() {
			t.StartedAt = now
		}
	case to == TaskQueued || to == TaskConfirm || to == TaskRetryWait:
		// retry_wait ends the failed attempt here: the engine re-queues it
		// with a bulk store update that never passes through Transition, and
		// the next attempt's timeout clock must not start from this one's.
		t.FinishedAt, t.StartedAt, t.Progress = time.Time{}, time.Time{}, 0
	}
	if to != TaskRetryWait {
		t.NextAttemptAt = time.Time{}
	}
	if !to.Terminal() && to != TaskRetryWait {
		t.Reason, t.Detail = ReasonNone, ""
	}
	return nil
}

// SourcesOf returns every state that may move to `to`, for compare-and-set
// updates in the stores.
func SourcesOf(to TaskState) []TaskState {
	var out []TaskState
	for _, from := range TaskStates {
		if CanTransition(from, to) {
			out = append(out, from)
		}
	}
	return out
}

// Reason says why a task failed or was canceled. Vendors' progress codes map
// onto these (Alibaba/EnOS negative steps, Huawei result_code).
type Reason string

const (
	ReasonNone            Reason = ""
	ReasonDownloadFailed  Reason = "download_failed"
	ReasonVerifyFailed    Reason = "verify_failed"
	ReasonInstallFailed   Reason = "install_failed"
	ReasonUpgradeFailed   Reason = "upgrade_failed" // generic device failure
	ReasonDeviceRejected  Reason = "rejected"       // the device declined (busy, low battery, ignored…)
	ReasonTimeout         Reason = "timeout"
	ReasonCanceled        Reason = "canceled"         // by an operator
	ReasonJobCanceled     Reason = "job_canceled"     // the job was canceled
	ReasonJobFinished     Reason = "job_finished"     // the schedule's finish time passed
	ReasonOverwritten     Reason = "overwritten"      // a newer job took the device (overwrite mode)
	ReasonWrongVersion    Reason = "wrong_version"    // the device reported a version other than the destination
	ReasonNotApplicable   Reason = "not_applicable"   // the device's version is not a source version
	ReasonDeviceNotFound  Reason = "device_not_found" // listed in the target but not registered
	ReasonTaskConflict    Reason = "task_conflict"    // another active task holds the module
	ReasonAlreadyUpToDate Reason = "already_latest"
)

// ReasonForStep maps a negative progress step (Alibaba/EnOS/native) to a reason.
func ReasonForStep(step int) Reason {
	switch step {
	case -2:
		return ReasonDownloadFailed
	case -3:
		return ReasonVerifyFailed
	case -4:
		return ReasonInstallFailed
	case -5:
		return ReasonDeviceRejected
	}
	return ReasonUpgradeFailed
}

// Retryable reports whether automatic retry applies to a failure. A timeout
// is not retried (Alibaba: "a timeout failure is not retried"), nor is a
// cancellation.
func (r Reason) Retryable() bool {
	switch r {
	case ReasonTimeout, ReasonCanceled, ReasonJobCanceled, ReasonJobFinished, ReasonOverwritten,
		ReasonNotApplicable, ReasonDeviceNotFound, ReasonTaskConflict, ReasonAlreadyUpToDate:
		return false
	}
	return true
}

// Task is one device's part in one job.
type Task struct {
	ID          int64 // store-assigned, increasing in creation order
	JobID       string
	TenantID    string
	ProductKey  string
	DeviceName  string
	Module      string
	State       TaskState
	FromVersion string
	ToVersion   string
	Progress    int // 0–100
	Attempts    int // notices sent, including retries
	Reason      Reason
	Detail      string // free text from the device or the engine

	NotifiedAt    time.Time
	StartedAt     time.Time // first progress report: the timeout clock
	FinishedAt    time.Time
	NextAttemptAt time.Time // for retry_wait
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TaskCounts is the number of tasks per state.
type TaskCounts map[TaskState]int64

// Total sums all states.
func (c TaskCounts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Finished sums the terminal states.
func (c TaskCounts) Finished() int64 {
	return c[TaskSucceeded] + c[TaskFailed] + c[TaskCanceled]
}

// Active sums the unfinished states.
func (c TaskCounts) Active() int64 { return c.Total() - c.Finished() }

// Dispatched sums the states that count against max concurrency.
func (c TaskCounts) Dispatched() int64 { return c[TaskNotified] + c[TaskInProgress] }
