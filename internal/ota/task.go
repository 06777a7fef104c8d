package ota

import (
	"slices"
	"time"
)

// TaskState is where one device stands in one job.
type TaskState string

const (
	// TaskWaiting waits for its device: offline, or no version of the module
	// known yet. It holds the device's module but does not count against
	// max_concurrency or max_per_minute, and no timeout runs.
	TaskWaiting    TaskState = "waiting"
	TaskConfirm    TaskState = "confirm"     // waits for an operator to confirm (need_confirm)
	TaskQueued     TaskState = "queued"      // due for a notice when window, concurrency and rate allow
	TaskNotified   TaskState = "notified"    // the notice was sent (or is waiting for the device to connect/poll)
	TaskInProgress TaskState = "in_progress" // the device reported progress; the timeout clock runs
	TaskSucceeded  TaskState = "succeeded"   // the device reported the destination version
	TaskFailed     TaskState = "failed"
	TaskCanceled   TaskState = "canceled"
	TaskRetryWait  TaskState = "retry_wait" // failed, re-queued at NextAttemptAt
	// TaskSkipped is terminal: the device is a target of the job but does
	// not qualify (Reason says why: ReasonNotFound, ReasonAlreadyOnVersion…).
	TaskSkipped TaskState = "skipped"
)

// TaskStates lists every state, in lifecycle order (for counts and docs).
var TaskStates = []TaskState{TaskWaiting, TaskConfirm, TaskQueued, TaskNotified, TaskInProgress, TaskRetryWait, TaskSucceeded,
	TaskFailed, TaskCanceled, TaskSkipped}

// ActiveTaskStates are the unfinished states: a device has at most one task
// in them per module.
var ActiveTaskStates = []TaskState{TaskWaiting, TaskConfirm, TaskQueued, TaskNotified, TaskInProgress, TaskRetryWait}

// Terminal reports whether the task is over.
func (s TaskState) Terminal() bool {
	return s == TaskSucceeded || s == TaskFailed || s == TaskCanceled || s == TaskSkipped
}

// Active reports whether the task holds its device's module: a device has at
// most one active task per module.
func (s TaskState) Active() bool { return !s.Terminal() }

// DispatchedTaskStates are the states that count against a job's max
// concurrency: the task's notice has gone out and the device has not
// finished. The stores' paced claims (store.ClaimRequest) count these.
var DispatchedTaskStates = []TaskState{TaskNotified, TaskInProgress}

// Dispatched reports whether the task counts against max concurrency.
func (s TaskState) Dispatched() bool { return slices.Contains(DispatchedTaskStates, s) }

// transitions is the one table of allowed task state changes. The service
// moves tasks only along it, and the stores' compare-and-set updates take
// their expected states from SourcesOf.
//
//   - waiting → queued (or confirm) when its device is online and on a
//     version the job applies to (DeviceAvailable); → skipped when the
//     version it reports does not qualify; → succeeded when it reports the
//     destination; → canceled.
//   - queued | notified → waiting when the device goes offline before it
//     started: the notice is given again when it is back, and its timeout
//     clock does not run meanwhile.
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
//   - failed | canceled → waiting by an operator's retry; the retried task
//     is admitted again at once (Job.Admit), so an offline device's task
//     waits instead of being notified.
//   - skipped → waiting, queued or confirm when a dynamic job takes the
//     device after all: it came to match the job (its version qualifies now).
var transitions = map[TaskState][]TaskState{
	TaskWaiting:    {TaskQueued, TaskConfirm, TaskSucceeded, TaskSkipped, TaskCanceled},
	TaskConfirm:    {TaskQueued, TaskSucceeded, TaskCanceled},
	TaskQueued:     {TaskNotified, TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled, TaskWaiting},
	TaskNotified:   {TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled, TaskQueued, TaskWaiting},
	TaskInProgress: {TaskInProgress, TaskSucceeded, TaskFailed, TaskRetryWait, TaskCanceled},
	TaskRetryWait:  {TaskQueued, TaskSucceeded, TaskCanceled},
	TaskFailed:     {TaskWaiting}, // operator retry
	TaskCanceled:   {TaskWaiting}, // operator retry
	TaskSucceeded:  nil,
	TaskSkipped:    {TaskWaiting, TaskQueued, TaskConfirm}, // a dynamic job takes the device after all
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
	case to == TaskQueued || to == TaskConfirm || to == TaskRetryWait || to == TaskWaiting:
		// retry_wait ends the failed attempt here: the engine re-queues it
		// with a bulk store update that never passes through Transition, and
		// the next attempt's timeout clock must not start from this one's.
		t.FinishedAt, t.StartedAt, t.Progress = time.Time{}, time.Time{}, 0
	}
	if to != TaskRetryWait {
		t.NextAttemptAt = time.Time{}
	}
	if to == TaskWaiting {
		t.NotifiedAt = time.Time{} // the clock of a notice given offline does not run
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
	ReasonNone           Reason = ""
	ReasonDownloadFailed Reason = "download_failed"
	ReasonVerifyFailed   Reason = "verify_failed"
	ReasonInstallFailed  Reason = "install_failed"
	ReasonUpgradeFailed  Reason = "upgrade_failed" // generic device failure
	ReasonDeviceRejected Reason = "rejected"       // the device declined (busy, low battery, ignored…)
	ReasonTimeout        Reason = "timeout"
	ReasonCanceled       Reason = "canceled"      // by an operator
	ReasonJobCanceled    Reason = "job_canceled"  // the job was canceled
	ReasonJobFinished    Reason = "job_finished"  // the schedule's finish time passed
	ReasonOverwritten    Reason = "overwritten"   // a newer job took the device (overwrite mode)
	ReasonWrongVersion   Reason = "wrong_version" // the device reported a version other than the destination

	// Why a target was skipped (TaskSkipped), or, for ReasonAlreadyOnVersion,
	// why a device declined a notice.
	ReasonNotFound              Reason = "not_found"               // listed in the target but not registered
	ReasonAlreadyOnVersion      Reason = "already_on_version"      // the device runs the destination already
	ReasonSourceVersionMismatch Reason = "source_version_mismatch" // the device's version is not a source version
	ReasonBusyInOtherJob        Reason = "busy_in_other_job"       // another job's active task holds the module
	ReasonDowngrade             Reason = "downgrade"               // the destination is older and the job does not allow downgrades
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
		ReasonNotFound, ReasonAlreadyOnVersion, ReasonSourceVersionMismatch, ReasonBusyInOtherJob, ReasonDowngrade:
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
	return c[TaskSucceeded] + c[TaskFailed] + c[TaskCanceled] + c[TaskSkipped]
}

// Active sums the unfinished states.
func (c TaskCounts) Active() int64 { return c.Total() - c.Finished() }

// Dispatched sums the states that count against max concurrency.
func (c TaskCounts) Dispatched() int64 {
	var n int64
	for _, st := range DispatchedTaskStates {
		n += c[st]
	}
	return n
}

// SkipBusy turns a task that lost its device's module to another job's
// active task into a skipped one, finished at now.
func (t *Task) SkipBusy(now time.Time) {
	t.State, t.Reason, t.Detail = TaskSkipped, ReasonBusyInOtherJob, "another job's unfinished task holds the device's module"
	t.FinishedAt, t.UpdatedAt = now, now
}

// JobOutcome is how a finished job went, as the vendors report it (Huawei
// Success/PartialSuccess/Fail, Alibaba and EnOS job results).
type JobOutcome string

const (
	OutcomeNone      JobOutcome = ""          // the job has not ended
	OutcomeSucceeded JobOutcome = "succeeded" // every task succeeded
	OutcomePartial   JobOutcome = "partial"   // some succeeded, some did not (failed, skipped, canceled)
	OutcomeFailed    JobOutcome = "failed"    // none succeeded (also: no task at all)
	OutcomeCanceled  JobOutcome = "canceled"  // the job was canceled
)

// Outcome of a job in state with these task counts. A skipped task is not a
// success: the device was not upgraded by this job.
func Outcome(state JobState, c TaskCounts) JobOutcome {
	switch {
	case state == JobCanceled:
		return OutcomeCanceled
	case !state.Terminal():
		return OutcomeNone
	case c[TaskSucceeded] > 0 && c[TaskSucceeded] == c.Total():
		return OutcomeSucceeded
	case c[TaskSucceeded] > 0:
		return OutcomePartial
	}
	return OutcomeFailed
}
