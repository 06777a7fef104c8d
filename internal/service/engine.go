package service

// The rollout engine's tick: every rule about when a job starts, dispatches,
// retries, times out, aborts and ends. internal/rollout only calls Tick on a
// ticker. All state is in the store: a tick can run in any replica, and a
// server killed between two ticks (or in the middle of one) resumes exactly
// where the store says it was.
//
// Decisions (documented here once):
//   - Dispatch = claim (queued → notified, attempts+1, in one store call that
//     no two replicas can both win) and then hand the notices to the
//     Notifier. A notice lost between the two (crash, offline device) is not
//     sent again by the engine; the device gets it from NextNotice when it
//     connects or polls. So no task is ever notified twice by the engine.
//   - The engine pushes only jobs with NeedPush; a job without it leaves its
//     queued tasks for the devices to pull (NextNotice claims them).
//   - Pace: per tick and job, claims ≤ min(MaxConcurrency − (notified +
//     in_progress), MaxPerMinute − notices in the last 60 s inclusive,
//     queued, ClaimBatch × claimBatchesPerTick). The store counts and claims
//     in one atomic step per job (store.ClaimRequest), so the cap and the
//     rate hold with any number of replicas, not only within one. Device
//     requests claim through the same call (NextNotice).
//   - Timeouts: a notified task with no progress more than TimeoutSeconds
//     after NotifiedAt (unless the job's TimeoutFrom is in_progress), and an in-progress task not on the destination
//     version more than TimeoutSeconds after its first progress (StartedAt),
//     fail with ReasonTimeout. A timeout is never retried.
//   - Abort threshold: the job is canceled (not paused: a paused job resumed
//     would trip again at once), StateReason says why, unfinished tasks are
//     canceled with ReasonJobCanceled. Devices already installing carry on;
//     their later version reports are still recorded.
//   - A paused job still times out, re-queues retries, materializes and
//     completes; it only dispatches nothing. Outside the schedule's daily
//     window the same holds. A job paused before it ever started does
//     nothing (but end at its finish time) until it is resumed.
//   - A static job completes when it is materialized and no task is active
//     (StateReason "no device matched the target" when it has no task); a
//     dynamic job runs until canceled or its finish time. At the finish time
//     any job completes and its unfinished tasks are canceled with
//     ReasonJobFinished.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

const (
	// materializeBatchesPerTick bounds the tasks one job creates per tick
	// (× Options.MaterializeBatch), so that one huge job does not hold up
	// the others' dispatch for long.
	materializeBatchesPerTick = 10
	// claimBatchesPerTick bounds the notices one job sends per tick (×
	// Options.ClaimBatch).
	claimBatchesPerTick = 10
	// tickJobPage is how many jobs are read per store call.
	tickJobPage = 200
)

// engineState is the engine's per-replica memory. It holds hints only: a
// fresh replica (or a restarted one) without it is just as correct.
type engineState struct {
	mu sync.Mutex
	// swept is set once this replica has checked ended jobs for unfinished
	// tasks (sweepEndedJobs).
	swept bool
	// claimAfter is, per job, the id of the last task this replica claimed:
	// the next claim starts after it (keyset), which keeps claims flat as a
	// job progresses (research/perf-baselines.md §5).
	claimAfter map[string]int64
}

func (e *engineState) after(jobID string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.claimAfter[jobID]
}

func (e *engineState) setAfter(jobID string, id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.claimAfter == nil {
		e.claimAfter = map[string]int64{}
	}
	if id == 0 {
		delete(e.claimAfter, jobID)
		return
	}
	e.claimAfter[jobID] = id
}

func (e *engineState) isSwept() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.swept
}

func (e *engineState) setSwept() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.swept = true
}

// sweepEndedJobs cancels unfinished tasks of completed and canceled jobs.
// Ending a job writes the job, then its tasks (endJob); a server killed
// between the two leaves tasks that would hold their devices' modules
// forever. Each replica sweeps once when its engine starts.
func (s *Service) sweepEndedJobs(ctx context.Context) error {
	now := s.clock.Now()
	page := store.Page{Limit: tickJobPage}
	for {
		jobs, _, err := s.store.ListJobs(ctx, store.JobFilter{States: []ota.JobState{ota.JobCompleted, ota.JobCanceled}}, page, false)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			n, err := s.updateTasks(ctx, store.TaskFilter{JobID: j.ID, States: ota.ActiveTaskStates},
				store.TaskUpdate{State: ota.TaskCanceled, Reason: endReason(j), Detail: j.StateReason, Now: now})
			if err != nil {
				return err
			}
			if n > 0 {
				s.log.Warn("rollout: canceled tasks left unfinished by an ended job", "job", j.ID, "tasks", n)
			}
		}
		if len(jobs) < tickJobPage {
			return nil
		}
		page.BeforeID = jobs[len(jobs)-1].ID
	}
}

// TickReport says what one tick did, for logs and metrics.
type TickReport struct {
	Jobs         int   // planned, running and paused jobs looked at
	Started      int   // planned jobs that started
	Ended        int   // jobs completed or canceled (finish time, abort, all done)
	Materialized int64 // tasks created
	Requeued     int64 // retry_wait → queued
	TimedOut     int64
	Notified     int64 // tasks claimed and handed to the notifier
	Failed       int   // jobs whose step failed (logged; retried next tick)
	// More is set when a per-tick budget, not the job's own limits, left
	// work for the next tick (a job not fully materialized, or queued tasks
	// left after the claim budget with room under the job's concurrency):
	// the engine then ticks again at once instead of after its interval.
	More bool
}

// DidWork reports whether the tick changed anything.
func (r TickReport) DidWork() bool {
	return r.Started+r.Ended > 0 || r.Materialized+r.Requeued+r.TimedOut+r.Notified > 0
}

// Tick advances every planned, running or paused job once: starts due jobs,
// materializes tasks, re-queues retries, times tasks out, applies the abort
// threshold, claims due tasks within window, concurrency and rate and hands
// them to the Notifier, and completes finished jobs. The rollout package
// calls it on a ticker in every replica.
func (s *Service) Tick(ctx context.Context) error {
	_, err := s.Advance(ctx)
	return err
}

// Advance is Tick with a report of what it did. A job whose step fails is
// logged and skipped; the others still advance, and the errors are returned
// joined.
func (s *Service) Advance(ctx context.Context) (TickReport, error) {
	var rep TickReport
	var errs []error
	s.sweepUploads(ctx)
	if !s.engine.isSwept() {
		if err := s.sweepEndedJobs(ctx); err != nil {
			errs = append(errs, err)
		} else {
			s.engine.setSwept()
		}
	}
	page := store.Page{Limit: tickJobPage}
	for {
		jobs, _, err := s.store.ListJobs(ctx, store.JobFilter{
			States: []ota.JobState{ota.JobPlanned, ota.JobRunning, ota.JobPaused}}, page, false)
		if err != nil {
			return rep, err
		}
		for _, j := range jobs {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Jobs++
			if err := s.advanceJob(ctx, j, &rep); err != nil {
				rep.Failed++
				s.log.Error("rollout: job step failed", "job", j.ID, "err", err)
				errs = append(errs, fmt.Errorf("job %s: %w", j.ID, err))
			}
		}
		if len(jobs) < tickJobPage {
			break
		}
		page.BeforeID = jobs[len(jobs)-1].ID
	}
	return rep, errors.Join(errs...)
}

func (s *Service) advanceJob(ctx context.Context, job ota.Job, rep *TickReport) error {
	now := s.clock.Now()
	if job.Schedule.Over(now) {
		ended, err := s.endJob(ctx, job, ota.JobCompleted, ota.ReasonJobFinished, "the schedule's finish time passed")
		if ended {
			rep.Ended++
		}
		return err
	}
	if job.State == ota.JobPlanned {
		if !job.Schedule.Started(now) {
			return nil
		}
		job.State, job.StartedAt, job.UpdatedAt = ota.JobRunning, now, now
		if err := s.store.UpdateJob(ctx, job, ota.JobPlanned); err != nil {
			return ignoreConflict(err)
		}
		rep.Started++
	}
	if job.StartedAt.IsZero() {
		// Paused before it ever started: its device set is the one at its
		// start (ResumeJob sets StartedAt), so there is nothing to do yet.
		return nil
	}

	var pkg *ota.Package
	loadPackage := func() error {
		if pkg != nil {
			return nil
		}
		p, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
		if err != nil {
			return err
		}
		pkg = &p
		return nil
	}
	if !job.Materialized {
		if err := loadPackage(); err != nil {
			return s.packageGone(ctx, job, err, rep)
		}
		var n int64
		var err error
		job, n, err = s.materialize(ctx, job, pkg, materializeBatchesPerTick)
		rep.Materialized += n
		if err != nil {
			return ignoreConflict(err)
		}
		rep.More = rep.More || !job.Materialized
	}

	// Counted once, before the bulk updates, so that a job with nothing
	// waiting for a retry and nothing dispatched costs no write; the
	// updates' results then keep the counts current.
	counts, err := s.store.CountTasks(ctx, job.ID)
	if err != nil {
		return err
	}
	if counts == nil {
		counts = ota.TaskCounts{}
	}
	if counts[ota.TaskRetryWait] > 0 {
		n, err := s.updateTasks(ctx, store.TaskFilter{JobID: job.ID, States: []ota.TaskState{ota.TaskRetryWait},
			NextAttemptBefore: now}, store.TaskUpdate{State: ota.TaskQueued, Now: now})
		if err != nil {
			return err
		}
		rep.Requeued += n
		counts[ota.TaskRetryWait] -= n
		counts[ota.TaskQueued] += n
		if n > 0 {
			s.engine.setAfter(job.ID, 0) // re-queued tasks sit below the keyset
		}
	}
	timedOut, err := s.timeOut(ctx, &job, counts, now)
	if err != nil {
		return err
	}
	rep.TimedOut += timedOut

	if job.Abort.Tripped(counts) {
		why := fmt.Sprintf("abort threshold reached: %d of %d finished tasks failed (limit %v%% once %d have finished)",
			counts[ota.TaskFailed], counts[ota.TaskFailed]+counts[ota.TaskSucceeded], job.Abort.FailurePercent, job.Abort.MinFinished)
		ended, err := s.endJob(ctx, job, ota.JobCanceled, ota.ReasonJobCanceled, why)
		if ended {
			rep.Ended++
		}
		return err
	}
	if job.Materialized && job.Selection == ota.SelectStatic && counts.Active() == 0 {
		why := ""
		if counts.Total() == counts[ota.TaskSkipped] {
			why = "no device matched the target"
		}
		ended, err := s.endJob(ctx, job, ota.JobCompleted, ota.ReasonNone, why)
		if ended {
			rep.Ended++
		}
		return err
	}
	if job.State != ota.JobRunning || !job.NeedPush || counts[ota.TaskQueued] == 0 || !job.Schedule.InWindow(now) {
		return nil
	}
	if err := loadPackage(); err != nil {
		return s.packageGone(ctx, job, err, rep)
	}
	sent, more, err := s.dispatch(ctx, &job, pkg, counts, now)
	rep.Notified += sent
	rep.More = rep.More || more
	return err
}

// timeOut fails the job's notified and in-progress tasks whose time is up,
// skipping a state counts say is empty, and moves what it failed in counts.
func (s *Service) timeOut(ctx context.Context, job *ota.Job, counts ota.TaskCounts, now time.Time) (int64, error) {
	limit := job.Timeout()
	var total int64
	for _, step := range []struct {
		state  ota.TaskState
		filter store.TaskFilter
		detail string
	}{
		{ota.TaskNotified, store.TaskFilter{NotifiedBefore: now.Add(-limit)},
			fmt.Sprintf("no progress report within %d s of the notice", job.TimeoutSeconds)},
		{ota.TaskInProgress, store.TaskFilter{StartedBefore: now.Add(-limit)},
			fmt.Sprintf("destination version not reported within %d s of the first progress report", job.TimeoutSeconds)},
	} {
		if counts[step.state] == 0 {
			continue
		}
		if step.state == ota.TaskNotified && job.TimeoutFrom == ota.TimeoutFromInProgress {
			continue // the clock starts when the device starts the upgrade
		}
		step.filter.JobID, step.filter.States = job.ID, []ota.TaskState{step.state}
		n, err := s.updateTasks(ctx, step.filter, store.TaskUpdate{State: ota.TaskFailed, Reason: ota.ReasonTimeout,
			Detail: step.detail, Now: now})
		if err != nil {
			return total, err
		}
		counts[step.state] -= n
		counts[ota.TaskFailed] += n
		total += n
		if n > 0 {
			s.opts.TasksFinished(ota.TaskFailed, ota.ReasonTimeout, n)
		}
	}
	return total, nil
}

// dispatch claims due queued tasks within the job's pace and notifies them;
// more reports that the tick's claim budget, not the pace, stopped it.
// The pace is the store's (store.ClaimRequest): each claim counts and claims
// in one atomic step, so replicas claiming side by side never overshoot it.
// counts (read earlier in the tick) only spare a claim that cannot succeed.
func (s *Service) dispatch(ctx context.Context, job *ota.Job, pkg *ota.Package, counts ota.TaskCounts, now time.Time) (sent int64, more bool, err error) {
	if counts.Dispatched() >= int64(job.MaxConcurrency) {
		// Full when the tick began; room that device reports made since is
		// used by the next tick. Spares a claim transaction per full job.
		return 0, false, nil
	}
	perTick := int64(s.opts.ClaimBatch * claimBatchesPerTick)
	budget := min(counts[ota.TaskQueued], perTick)
	if budget <= 0 {
		return 0, false, nil
	}
	// Sign the URL before claiming: a claimed task whose notice cannot be
	// built would wait for its device to poll.
	url, err := s.PackageURL(ctx, *pkg)
	if err != nil {
		return 0, false, err
	}
	wrapped := false
	for budget > 0 {
		after := s.engine.after(job.ID)
		res, err := s.store.ClaimTasks(ctx, store.ClaimRequest{JobID: job.ID, AfterID: after,
			Limit: int(min(budget, int64(s.opts.ClaimBatch))), MaxActive: job.MaxConcurrency,
			MaxPerMinute: job.MaxPerMinute, Now: now})
		if err != nil {
			return sent, false, err
		}
		tasks := res.Tasks
		if len(tasks) == 0 {
			// Nothing queued above the keyset: tasks re-queued by an operator
			// or another replica may sit below it. Look once from the start.
			if res.Full || after == 0 || wrapped {
				break
			}
			wrapped = true
			s.engine.setAfter(job.ID, 0)
			continue
		}
		s.engine.setAfter(job.ID, tasks[len(tasks)-1].ID)
		budget -= int64(len(tasks))
		// A job canceled or completed while these were claimed must not
		// send them: its end canceled what was unfinished before our claim,
		// so cancel what we claimed after it.
		cur, err := s.store.GetJob(ctx, job.TenantID, job.ID)
		if err != nil {
			return sent, false, err
		}
		if cur.State.Terminal() {
			ids := make([]int64, len(tasks))
			for i, t := range tasks {
				ids[i] = t.ID
			}
			_, err := s.updateTasks(ctx, store.TaskFilter{IDs: ids, States: []ota.TaskState{ota.TaskNotified}},
				store.TaskUpdate{State: ota.TaskCanceled, Reason: endReason(cur), Now: now})
			return sent, false, err
		}
		notices := make([]ota.Notice, len(tasks))
		for i := range tasks {
			notices[i] = s.notice(&tasks[i], job, pkg, url, now)
		}
		if err := s.notifier.Notify(ctx, notices); err != nil {
			s.log.Warn("rollout: notifier failed; devices will get the notices when they connect or poll",
				"job", job.ID, "tasks", len(notices), "err", err)
		}
		sent += int64(len(tasks))
		if res.Full {
			return sent, false, nil
		}
	}
	return sent, sent == perTick && counts[ota.TaskQueued] > sent, nil
}

func endReason(j ota.Job) ota.Reason {
	if j.State == ota.JobCompleted {
		return ota.ReasonJobFinished
	}
	return ota.ReasonJobCanceled
}

// notice builds what a device is told about its task.
func (s *Service) notice(t *ota.Task, job *ota.Job, pkg *ota.Package, url string, now time.Time) ota.Notice {
	sign := pkg.Sign
	if sign == "" {
		sign = pkg.ExpectedSign()
	}
	return ota.Notice{
		TaskID: t.ID, Attempt: t.Attempts, JobID: job.ID, PackageID: pkg.ID, TenantID: job.TenantID, ProductKey: t.ProductKey, DeviceName: t.DeviceName,
		Module: t.Module, Version: pkg.Version, FromVersion: t.FromVersion, URL: url,
		URLExpiresAt: now.Add(s.opts.DownloadURLTTL), FileName: pkg.FileName, Size: pkg.Size, SHA256: pkg.SHA256,
		MD5: pkg.MD5, SignMethod: pkg.SignMethod, Sign: sign, CustomInfo: pkg.CustomInfo,
		Differential: pkg.Differential, Tags: job.Tags, ExtInfo: job.ExtInfo, NeedConfirm: job.NeedConfirm,
	}
}

// endJob moves a job to completed or canceled, cancels its unfinished tasks
// with taskReason, and settles a verify job's package. The job is written
// first, so that a claim racing with it sees the end (see dispatch). ended
// is false when the job had already changed state (another replica, an
// operator): nothing is done then.
func (s *Service) endJob(ctx context.Context, job ota.Job, state ota.JobState, taskReason ota.Reason, why string) (ended bool, err error) {
	now := s.clock.Now()
	prev := job.State
	// The outcome is of the counts once the unfinished tasks are canceled.
	counts, err := s.store.CountTasks(ctx, job.ID)
	if err != nil {
		return false, err
	}
	final := ota.TaskCounts{ota.TaskCanceled: counts.Active()}
	for _, st := range []ota.TaskState{ota.TaskSucceeded, ota.TaskFailed, ota.TaskCanceled, ota.TaskSkipped} {
		final[st] += counts[st]
	}
	job.State, job.StateReason, job.FinishedAt, job.UpdatedAt = state, why, now, now
	job.Outcome = ota.Outcome(state, final)
	if err := s.store.UpdateJob(pendingAudit(ctx), job, prev); err != nil {
		return false, ignoreConflict(err)
	}
	s.engine.setAfter(job.ID, 0)
	if _, err := s.updateTasks(ctx, store.TaskFilter{JobID: job.ID, States: ota.ActiveTaskStates},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: taskReason, Detail: why, Now: now}); err != nil {
		return true, err
	}
	if job.Type == ota.JobVerify {
		return true, s.settleVerification(ctx, job)
	}
	return true, nil
}

// settleVerification sets a verify job's package status from its outcome:
// verified when every task succeeded (and there was at least one), failed
// when any task failed, else back to where it was before verification
// (nothing was proven either way: no device, or canceled before any result).
func (s *Service) settleVerification(ctx context.Context, job ota.Job) error {
	counts, err := s.store.CountTasks(ctx, job.ID)
	if err != nil {
		return err
	}
	pkg, err := s.store.GetPackage(ctx, job.TenantID, job.PackageID)
	if err != nil {
		return ignoreNotFound(err)
	}
	if pkg.VerifyStatus != ota.VerifyInProgress {
		return nil
	}
	switch {
	case counts.Total() > 0 && counts[ota.TaskSucceeded] == counts.Total():
		pkg.VerifyStatus = ota.VerifyPassed
	case counts[ota.TaskFailed] > 0 || (job.State == ota.JobCompleted && counts.Total() > 0):
		pkg.VerifyStatus = ota.VerifyFailed
	default:
		pkg.VerifyStatus = ota.NewPackageStatus(pkg.NeedVerify)
	}
	pkg.ModifiedAt = s.clock.Now()
	return s.store.UpdatePackage(ctx, pkg)
}

// packageGone cancels a job whose package was deleted under it.
func (s *Service) packageGone(ctx context.Context, job ota.Job, err error, rep *TickReport) error {
	if ota.ErrorCode(err) != ota.CodeNotFound {
		return err
	}
	ended, err := s.endJob(ctx, job, ota.JobCanceled, ota.ReasonJobCanceled, "the job's package was deleted")
	if ended {
		rep.Ended++
	}
	return err
}

func ignoreConflict(err error) error {
	if ota.ErrorCode(err) == ota.CodeConflict {
		return nil
	}
	return err
}

func ignoreNotFound(err error) error {
	if ota.ErrorCode(err) == ota.CodeNotFound {
		return nil
	}
	return err
}
