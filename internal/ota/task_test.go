package ota

import (
	"slices"
	"testing"
	"time"
)

// TestTransitions lists every pair of states: the allowed ones are exactly
// the task lifecycle of DESIGN.md §1.3 and the vendors' state machines.
func TestTransitions(t *testing.T) {
	allowed := map[[2]TaskState]bool{}
	for _, p := range [][2]TaskState{
		{TaskConfirm, TaskQueued}, {TaskConfirm, TaskSucceeded}, {TaskConfirm, TaskCanceled},
		{TaskQueued, TaskNotified}, {TaskQueued, TaskInProgress}, {TaskQueued, TaskSucceeded},
		{TaskQueued, TaskFailed}, {TaskQueued, TaskRetryWait}, {TaskQueued, TaskCanceled},
		{TaskNotified, TaskInProgress}, {TaskNotified, TaskSucceeded}, {TaskNotified, TaskFailed},
		{TaskNotified, TaskRetryWait}, {TaskNotified, TaskCanceled}, {TaskNotified, TaskQueued},
		{TaskInProgress, TaskInProgress}, {TaskInProgress, TaskSucceeded}, {TaskInProgress, TaskFailed},
		{TaskInProgress, TaskRetryWait}, {TaskInProgress, TaskCanceled},
		{TaskRetryWait, TaskQueued}, {TaskRetryWait, TaskSucceeded}, {TaskRetryWait, TaskCanceled},
		// An operator's retry: back to waiting, then admitted like a new target.
		{TaskFailed, TaskWaiting}, {TaskCanceled, TaskWaiting},
		// A dynamic job takes a device it skipped once the device qualifies.
		{TaskSkipped, TaskWaiting}, {TaskSkipped, TaskQueued}, {TaskSkipped, TaskConfirm},
		// Waiting for the device: admitted, skipped, done by itself, canceled;
		// a device gone offline before it started gives its task back.
		{TaskWaiting, TaskQueued}, {TaskWaiting, TaskConfirm}, {TaskWaiting, TaskSucceeded},
		{TaskWaiting, TaskSkipped}, {TaskWaiting, TaskCanceled},
		{TaskQueued, TaskWaiting}, {TaskNotified, TaskWaiting},
	} {
		allowed[p] = true
	}
	for _, from := range TaskStates {
		for _, to := range TaskStates {
			want := allowed[[2]TaskState{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	if CanTransition("bogus", TaskQueued) || CanTransition(TaskQueued, "bogus") {
		t.Error("unknown states must not transition")
	}
}

func TestSourcesOf(t *testing.T) {
	tests := map[TaskState][]TaskState{
		TaskNotified:  {TaskQueued},
		TaskQueued:    {TaskWaiting, TaskConfirm, TaskNotified, TaskRetryWait, TaskSkipped},
		TaskRetryWait: {TaskQueued, TaskNotified, TaskInProgress},
		TaskCanceled:  {TaskWaiting, TaskConfirm, TaskQueued, TaskNotified, TaskInProgress, TaskRetryWait},
		TaskSucceeded: {TaskWaiting, TaskConfirm, TaskQueued, TaskNotified, TaskInProgress, TaskRetryWait},
		TaskConfirm:   {TaskWaiting, TaskSkipped},
		TaskWaiting:   {TaskQueued, TaskNotified, TaskFailed, TaskCanceled, TaskSkipped},
		TaskSkipped:   {TaskWaiting},
	}
	for to, want := range tests {
		got := SourcesOf(to)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("SourcesOf(%s) = %v, want %v", to, got, want)
		}
	}
	// Nothing leaves a terminal state except by an operator's retry or a
	// dynamic job's second look (both to waiting, skipped to due as well).
	for _, s := range []TaskState{TaskSucceeded, TaskFailed, TaskCanceled, TaskSkipped} {
		for _, to := range TaskStates {
			if CanTransition(s, to) && to != TaskWaiting && !(s == TaskSkipped && (to == TaskQueued || to == TaskConfirm)) {
				t.Errorf("terminal %s may move to %s", s, to)
			}
		}
	}
}

func TestTaskStatePredicates(t *testing.T) {
	for _, s := range TaskStates {
		terminal := s == TaskSucceeded || s == TaskFailed || s == TaskCanceled || s == TaskSkipped
		if s.Terminal() != terminal || s.Active() == terminal {
			t.Errorf("%s: Terminal=%v Active=%v", s, s.Terminal(), s.Active())
		}
		dispatched := s == TaskNotified || s == TaskInProgress
		if s.Dispatched() != dispatched {
			t.Errorf("%s: Dispatched=%v", s, s.Dispatched())
		}
	}
	if len(TaskStates) != 10 {
		t.Errorf("TaskStates lists %d states", len(TaskStates))
	}
}

func TestTaskTransitionTimes(t *testing.T) {
	t0 := mustTime("2026-03-10T12:00:00Z")
	task := Task{DeviceName: "d1", State: TaskQueued}
	step := func(to TaskState, at time.Time) {
		t.Helper()
		if err := task.Transition(to, at); err != nil {
			t.Fatal(err)
		}
	}
	step(TaskNotified, t0)
	step(TaskInProgress, t0.Add(time.Minute))
	if !task.StartedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("started at %v", task.StartedAt)
	}
	step(TaskInProgress, t0.Add(2*time.Minute))
	if !task.StartedAt.Equal(t0.Add(time.Minute)) {
		t.Fatal("later progress moved the timeout clock")
	}
	task.Reason = ReasonDownloadFailed
	task.NextAttemptAt = t0.Add(time.Hour)
	step(TaskRetryWait, t0.Add(3*time.Minute))
	if task.Reason != ReasonDownloadFailed || task.NextAttemptAt.IsZero() || !task.FinishedAt.IsZero() {
		t.Fatalf("retry_wait keeps the reason and next attempt: %+v", task)
	}
	if !task.StartedAt.IsZero() || task.Progress != 0 {
		t.Fatalf("retry_wait ends the attempt and its timeout clock: %+v", task)
	}
	step(TaskQueued, t0.Add(time.Hour))
	if !task.StartedAt.IsZero() || !task.NextAttemptAt.IsZero() || task.Reason != ReasonNone {
		t.Fatalf("queued again must start over: %+v", task)
	}
	step(TaskNotified, t0.Add(time.Hour))
	step(TaskSucceeded, t0.Add(2*time.Hour))
	if !task.FinishedAt.Equal(t0.Add(2*time.Hour)) || !task.UpdatedAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("finished at %v", task.FinishedAt)
	}
	err := task.Transition(TaskQueued, t0)
	if ErrorCode(err) != CodeConflict {
		t.Fatalf("succeeded → queued: %v", err)
	}
	if task.State != TaskSucceeded {
		t.Fatal("a refused transition changed the task")
	}
}

func TestReasons(t *testing.T) {
	steps := map[int]Reason{-1: ReasonUpgradeFailed, -2: ReasonDownloadFailed, -3: ReasonVerifyFailed,
		-4: ReasonInstallFailed, -5: ReasonDeviceRejected, -99: ReasonUpgradeFailed}
	for step, want := range steps {
		if got := ReasonForStep(step); got != want {
			t.Errorf("ReasonForStep(%d) = %s, want %s", step, got, want)
		}
	}
	for _, r := range []Reason{ReasonTimeout, ReasonCanceled, ReasonJobCanceled, ReasonJobFinished, ReasonOverwritten} {
		if r.Retryable() {
			t.Errorf("%s must not be retried", r)
		}
	}
	for _, r := range []Reason{ReasonDownloadFailed, ReasonVerifyFailed, ReasonInstallFailed, ReasonUpgradeFailed, ReasonDeviceRejected} {
		if !r.Retryable() {
			t.Errorf("%s should be retried", r)
		}
	}
}

func TestTaskCounts(t *testing.T) {
	c := TaskCounts{TaskConfirm: 1, TaskQueued: 2, TaskNotified: 3, TaskInProgress: 4, TaskRetryWait: 5,
		TaskSucceeded: 6, TaskFailed: 7, TaskCanceled: 8}
	if c.Total() != 36 || c.Finished() != 21 || c.Active() != 15 || c.Dispatched() != 7 {
		t.Fatalf("total %d finished %d active %d dispatched %d", c.Total(), c.Finished(), c.Active(), c.Dispatched())
	}
}
