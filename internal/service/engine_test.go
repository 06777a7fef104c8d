package service_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func TestCreateJobRules(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	gated := r.pkg(func(p *ota.Package) { p.NeedVerify = true })
	open := r.pkg(nil)

	_, err := r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: gated.ID, Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeNotVerified, "must pass verification")

	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: "nope", Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeNotFound, "")
	other := service.Principal{TenantID: "other"}
	_, err = r.svc.CreateJob(r.ctx, other, ota.Job{PackageID: open.ID, Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeNotFound, "")

	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: open.ID, Target: ota.Target{All: true}, TimeoutSeconds: 299})
	errCode(t, err, ota.CodeInvalid, "timeout_seconds")
	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: gated.ID, Type: ota.JobVerify, Target: ota.Target{Devices: []string{"d-0000", "ghost"}}})
	errCode(t, err, ota.CodeInvalid, `"ghost"`)
	if jobs, n, err := r.svc.ListJobs(r.ctx, r.p, store.JobFilter{}, store.Page{}); err != nil || n != 0 || len(jobs) != 0 {
		t.Fatalf("rejected jobs left %d rows (%v)", n, err)
	}
	if p, _ := r.svc.GetPackage(r.ctx, r.p, gated.ID); p.VerifyStatus != ota.VerifyPending {
		t.Fatalf("a rejected verify job changed the package to %s", p.VerifyStatus)
	}

	// Created jobs return at once, without tasks: the engine makes them.
	j := r.job(open, nil)
	if j.State != ota.JobRunning || j.ProductKey != rolloutProduct || j.Module != ota.DefaultModule || j.StartedAt.IsZero() {
		t.Fatalf("job %+v", j)
	}
	r.wantCounts(j.ID, "")
	// Another tenant sees none of it.
	_, err = r.svc.GetJob(r.ctx, other, j.ID)
	errCode(t, err, ota.CodeNotFound, "")
	_, err = r.svc.PauseJob(r.ctx, other, j.ID)
	errCode(t, err, ota.CodeNotFound, "")
	_, _, err = r.svc.ListTasks(r.ctx, other, store.TaskFilter{JobID: j.ID}, store.Page{})
	errCode(t, err, ota.CodeNotFound, "")
	if jobs, n, _ := r.svc.ListJobs(r.ctx, other, store.JobFilter{}, store.Page{}); n != 0 || len(jobs) != 0 {
		t.Fatalf("other tenant lists %d jobs", n)
	}
	planned := r.job(open, func(j *ota.Job) { j.Schedule.Start = rolloutT0.Add(time.Hour) })
	if planned.State != ota.JobPlanned || !planned.StartedAt.IsZero() {
		t.Fatalf("future start: %s", planned.State)
	}

	v := r.job(gated, func(j *ota.Job) { j.Type = ota.JobVerify; j.Target = ota.Target{Devices: []string{"d-0000"}} })
	if p, _ := r.svc.GetPackage(r.ctx, r.p, gated.ID); p.VerifyStatus != ota.VerifyInProgress {
		t.Fatalf("verify job left the package %s", p.VerifyStatus)
	}
	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: gated.ID, Type: ota.JobVerify, Target: ota.Target{Devices: []string{"d-0001"}}})
	errCode(t, err, ota.CodeConflict, "verifying")
	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: gated.ID, Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeNotVerified, "verifying")
	_ = v
}

// TestTaskLifecycle walks one job through every device-driven transition.
func TestTaskLifecycle(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	pkg := r.pkg(func(p *ota.Package) { p.CustomInfo = "reboot=yes" })
	j := r.job(pkg, func(j *ota.Job) {
		j.Tags = []ota.Tag{{Key: "wave", Value: "1"}}
		j.ExtInfo = "ext"
	})
	rep := r.tick()
	if rep.Materialized != 3 || rep.Notified != 3 {
		t.Fatalf("first tick: %+v", rep)
	}
	r.wantCounts(j.ID, "notified=3")
	notices := r.rec.all()
	if len(notices) != 3 {
		t.Fatalf("%d notices", len(notices))
	}
	n := notices[0]
	if n.Version != "2.0" || n.FromVersion != "1.0" || n.URL == "" || n.Size != pkg.Size || n.SHA256 != pkg.SHA256 ||
		n.Sign == "" || n.CustomInfo != "reboot=yes" || n.JobID != j.ID || n.TaskID == 0 || n.ExtInfo != "ext" ||
		len(n.Tags) != 1 || !n.URLExpiresAt.After(rolloutT0) {
		t.Fatalf("notice %+v", n)
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskNotified)
	if task.Attempts != 1 || !task.NotifiedAt.Equal(rolloutT0) {
		t.Fatalf("claimed task %+v", task)
	}

	r.clock.Add(time.Minute)
	r.progress("d-0000", 0)
	task = r.wantState(j.ID, "d-0000", ota.TaskInProgress)
	if !task.StartedAt.Equal(rolloutT0.Add(time.Minute)) {
		t.Fatalf("started at %v", task.StartedAt)
	}
	r.clock.Add(time.Minute)
	r.progress("d-0000", 100)
	task = r.wantState(j.ID, "d-0000", ota.TaskInProgress) // 100 % is not success
	if task.Progress != 100 || !task.StartedAt.Equal(rolloutT0.Add(time.Minute)) {
		t.Fatalf("progress %d, started %v", task.Progress, task.StartedAt)
	}
	r.reportVersion("d-0000", "1.0") // a reconnect mid-upgrade reports the old version: no change
	r.wantState(j.ID, "d-0000", ota.TaskInProgress)
	r.reportVersion("d-0000", "2.0")
	task = r.wantState(j.ID, "d-0000", ota.TaskSucceeded)
	if task.FinishedAt.IsZero() {
		t.Fatal("no finish time")
	}
	err := r.svc.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 50})
	errCode(t, err, ota.CodeNotFound, "no unfinished task")

	// A device may succeed straight from notified; another fails.
	r.reportVersion("d-0001", "2.0")
	r.wantState(j.ID, "d-0001", ota.TaskSucceeded)
	r.progress("d-0002", 10)
	r.progress("d-0002", -3)
	task = r.wantState(j.ID, "d-0002", ota.TaskFailed)
	if task.Reason != ota.ReasonVerifyFailed {
		t.Fatalf("reason %s", task.Reason)
	}
	errCode(t, r.svc.ReportProgress(r.ctx, ref("d-0000"), service.Progress{Step: 101}), ota.CodeInvalid, "at most 100")

	r.tick()
	done := r.wantJobState(j.ID, ota.JobCompleted)
	if done.FinishedAt.IsZero() {
		t.Fatal("completed job without finish time")
	}
	r.wantCounts(j.ID, "succeeded=2 failed=1")
	if d, _ := r.svc.GetDevice(r.ctx, r.p, rolloutProduct, "d-0000"); d.Version(ota.DefaultModule) != "2.0" {
		t.Fatalf("device version %q", d.Version(ota.DefaultModule))
	}
}

func TestWrongVersionFailsInProgressTask(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.Retry = ota.Retry{Count: 1, Interval: time.Minute} })
	r.tick()
	r.progress("d-0000", 30)
	r.reportVersion("d-0000", "1.5")
	task := r.wantState(j.ID, "d-0000", ota.TaskRetryWait)
	if task.Reason != ota.ReasonWrongVersion || !strings.Contains(task.Detail, `"1.5"`) {
		t.Fatalf("task %+v", task)
	}
}

// TestMaterializeTargets checks who gets a task.
func TestMaterializeTargets(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("on-dest", 2, "2.0")
	r.devices("v10", 3, "1.0", "g1")
	r.devices("v09", 2, "0.9", "g2")
	r.devices("unknown", 1, "")

	full := r.pkg(nil)
	diff := r.pkg(func(p *ota.Package) { p.Differential = true; p.SourceVersions = []string{"1.0"} })
	listed := r.pkg(func(p *ota.Package) { p.SourceVersions = []string{"0.9", "1.0"} })

	// want: device → state, or state/reason for a skipped one.
	tests := []struct {
		name   string
		pkg    ota.Package
		target ota.Target
		want   map[string]string
	}{
		{"full package: every device, those on the destination skipped, the one without a version waiting", full, ota.Target{All: true},
			map[string]string{"on-dest-0000": "skipped/already_on_version", "on-dest-0001": "skipped/already_on_version",
				"unknown-0000": "waiting", "v09-0000": "confirm", "v09-0001": "confirm", "v10-0000": "confirm",
				"v10-0001": "confirm", "v10-0002": "confirm"}},
		{"differential: only its source version", diff, ota.Target{All: true},
			map[string]string{"v10-0000": "confirm", "v10-0001": "confirm", "v10-0002": "confirm"}},
		{"target source versions narrow", full, ota.Target{All: true, SourceVersions: []string{"0.9"}},
			map[string]string{"v09-0000": "confirm", "v09-0001": "confirm"}},
		{"source versions alone are a target", listed, ota.Target{SourceVersions: []string{"0.9"}},
			map[string]string{"v09-0000": "confirm", "v09-0001": "confirm"}},
		{"disjoint source versions: nobody", diff, ota.Target{All: true, SourceVersions: []string{"0.9"}}, map[string]string{}},
		{"groups", full, ota.Target{Groups: []string{"g2", "nogroup"}}, map[string]string{"v09-0000": "confirm", "v09-0001": "confirm"}},
		{"device list: every listed name is a task, with why it is skipped", diff,
			ota.Target{Devices: []string{"v10-0001", "ghost", "on-dest-0000", "v09-0000", "unknown-0000"}},
			map[string]string{"v10-0001": "confirm", "ghost": "skipped/not_found", "on-dest-0000": "skipped/already_on_version",
				"v09-0000": "skipped/source_version_mismatch", "unknown-0000": "waiting"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			j := r.job(tc.pkg, func(j *ota.Job) { j.Target = tc.target; j.NeedConfirm = true })
			r.tickUntilMaterialized(j.ID)
			got := map[string]string{}
			due := ""
			for _, task := range r.tasks(j.ID) {
				if task.ToVersion != "2.0" {
					t.Fatalf("task %+v", task)
				}
				got[task.DeviceName] = string(task.State)
				if task.State == ota.TaskSkipped {
					got[task.DeviceName] += "/" + string(task.Reason)
				}
				if task.State == ota.TaskConfirm && due == "" {
					due = task.DeviceName
				}
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("tasks %v, want %v", got, tc.want)
			}
			if due == "" {
				r.wantJobState(j.ID, ota.JobCompleted)
				return
			}
			// Free the devices for the next case.
			if _, err := r.svc.CancelJob(r.ctx, r.p, j.ID); err != nil {
				t.Fatal(err)
			}
			if task := r.task(j.ID, due); task.FromVersion != r.deviceVersion(due) {
				t.Fatalf("from version %q", task.FromVersion)
			}
		})
	}
}

func (r *rolloutEnv) deviceVersion(name string) string {
	d, err := r.st.GetDevice(r.ctx, rolloutProduct, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return d.Version(ota.DefaultModule)
}

func TestNoMatchingDeviceCompletesJob(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "2.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	done := r.wantJobState(j.ID, ota.JobCompleted)
	if done.StateReason != "no device matched the target" {
		t.Fatalf("reason %q", done.StateReason)
	}
}

// TestGrayPercent checks the exact sample size, across many small batches
// and a crash in the middle of materialization.
func TestGrayPercent(t *testing.T) {
	r := newRolloutEnv(t, service.Options{MaterializeBatch: 16})
	r.devices("d", 1000, "1.0")
	r.devices("new", 5, "2.0") // on the destination: not candidates, not counted
	pkg := r.pkg(nil)
	for _, tc := range []struct {
		percent float64
		want    int
	}{{33.3, 333}, {0.001, 1}, {12.345, 123}, {100, 1000}} {
		j := r.job(pkg, func(j *ota.Job) { j.Target.GrayPercent = tc.percent; j.NeedConfirm = true })
		r.tick() // 10 batches of 16
		if r.getJob(j.ID).Job.Materialized {
			t.Fatal("materialized in one tick: the test does not cover resuming")
		}
		r.crash()
		r.tickUntilMaterialized(j.ID)
		tasks := r.tasks(j.ID)
		if len(tasks) != tc.want {
			t.Fatalf("gray %v%% of 1000: %d tasks, want %d", tc.percent, len(tasks), tc.want)
		}
		if tc.want == 333 {
			// Spread over the whole name order, not the first names (the
			// sample differs with every job id: 0.5 ± 5.5 σ).
			var firstHalf int
			for _, task := range tasks {
				if task.DeviceName < "d-0500" {
					firstHalf++
				}
			}
			if share := float64(firstHalf) / float64(len(tasks)); share < 0.35 || share > 0.65 {
				t.Fatalf("%.2f of the sample in the first half of the fleet", share)
			}
		}
		if _, err := r.svc.CancelJob(r.ctx, r.p, j.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNeedConfirm(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.NeedConfirm = true })
	r.tick()
	r.wantCounts(j.ID, "confirm=3")
	if len(r.rec.all()) != 0 {
		t.Fatal("notified before confirmation")
	}
	res, err := r.svc.ConfirmTasks(r.ctx, r.p, j.ID, []string{"d-0001", "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].OK || res[1].OK || ota.ErrorCode(res[1].Err) != ota.CodeNotFound {
		t.Fatalf("results %+v", res)
	}
	res, _ = r.svc.ConfirmTasks(r.ctx, r.p, j.ID, []string{"d-0001"})
	if res[0].OK || ota.ErrorCode(res[0].Err) != ota.CodeConflict {
		t.Fatalf("confirming a queued task: %+v", res)
	}
	r.tick()
	if got := r.rec.devicesNotified(); !slices.Equal(got, []string{"d-0001"}) {
		t.Fatalf("notified %v", got)
	}
	n := r.rec.all()[0]
	if !n.NeedConfirm {
		t.Fatal("notice does not say the job needed confirmation")
	}
	res, _ = r.svc.ConfirmTasks(r.ctx, r.p, j.ID, nil) // all the rest
	if len(res) != 2 {
		t.Fatalf("confirm all: %+v", res)
	}
	r.tick()
	r.wantCounts(j.ID, "notified=3")
}

func TestConcurrencyCap(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 10, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 3 })
	r.tick()
	r.wantCounts(j.ID, "queued=7 notified=3")
	r.tick()
	r.wantCounts(j.ID, "queued=7 notified=3")
	r.progress("d-0000", 10) // in progress still counts
	r.tick()
	r.wantCounts(j.ID, "queued=7 notified=2 in_progress=1")
	r.reportVersion("d-0000", "2.0")
	r.progress("d-0001", -1) // failed: frees a slot
	r.tick()
	r.wantCounts(j.ID, "queued=5 notified=3 succeeded=1 failed=1")
	if got := len(r.rec.all()); got != 5 {
		t.Fatalf("%d notices", got)
	}
}

func TestPerMinuteRate(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 25, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxPerMinute = 10; j.MaxConcurrency = 1000 })
	steps := []struct {
		at   time.Duration
		want int
	}{
		{0, 10},
		{30 * time.Second, 10},
		{59 * time.Second, 10},
		{60 * time.Second, 10}, // the notices of t0 are still within the last minute (inclusive)
		{61 * time.Second, 20},
		{121 * time.Second, 20},
		{122 * time.Second, 25},
	}
	for _, s := range steps {
		r.clock.Set(rolloutT0.Add(s.at))
		r.tick()
		if got := len(r.rec.all()); got != s.want {
			t.Fatalf("at +%v: %d notices, want %d", s.at, got, s.want)
		}
	}
	_ = j
}

func TestDailyWindowGatesDispatch(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	pkg := r.pkg(nil)
	// 02:00–04:00 at UTC+8 is 18:00–20:00 UTC; t0 is 12:00 UTC.
	j := r.job(pkg, func(j *ota.Job) {
		j.Schedule.Window = &ota.DailyWindow{FromMinute: 120, ToMinute: 240, UTCOffsetMinutes: 480}
		j.Target = ota.Target{Devices: []string{"d-0000"}}
	})
	r.tick()
	r.wantCounts(j.ID, "queued=1") // materialized, not dispatched
	r.clock.Set(time.Date(2026, 3, 10, 17, 59, 59, 0, time.UTC))
	r.tick()
	r.wantCounts(j.ID, "queued=1")
	r.clock.Set(time.Date(2026, 3, 10, 18, 0, 0, 0, time.UTC))
	r.tick()
	r.wantCounts(j.ID, "notified=1")

	// 22:00–01:00 at UTC−5 spans midnight: 03:00–06:00 UTC.
	k := r.job(pkg, func(j *ota.Job) {
		j.Schedule.Window = &ota.DailyWindow{FromMinute: 22 * 60, ToMinute: 60, UTCOffsetMinutes: -300}
		j.Target = ota.Target{Devices: []string{"d-0001"}}
	})
	for _, step := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 11, 2, 59, 0, 0, time.UTC), "queued=1"},
		{time.Date(2026, 3, 11, 6, 0, 0, 0, time.UTC), "queued=1"},
		{time.Date(2026, 3, 11, 5, 59, 0, 0, time.UTC), "notified=1"}, // 00:59 local
	} {
		r.clock.Set(step.at)
		r.tick()
		r.wantCounts(k.ID, step.want)
	}
}

func TestRetriesWithInterval(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.Retry = ota.Retry{Count: 2, Interval: 10 * time.Minute} })
	r.tick()
	for attempt := 1; attempt <= 3; attempt++ {
		task := r.wantState(j.ID, "d-0000", ota.TaskNotified)
		if task.Attempts != attempt {
			t.Fatalf("attempt %d: task says %d", attempt, task.Attempts)
		}
		failedAt := r.clock.Add(time.Minute)
		r.progress("d-0000", 20)
		r.progress("d-0000", -2)
		if attempt == 3 {
			break
		}
		task = r.wantState(j.ID, "d-0000", ota.TaskRetryWait)
		if task.Reason != ota.ReasonDownloadFailed || !task.NextAttemptAt.Equal(failedAt.Add(10*time.Minute)) {
			t.Fatalf("retry_wait %+v", task)
		}
		r.clock.Set(failedAt.Add(10*time.Minute - time.Second))
		r.tick()
		r.wantState(j.ID, "d-0000", ota.TaskRetryWait)
		r.clock.Set(failedAt.Add(10 * time.Minute))
		rep := r.tick() // re-queued and notified in the same tick
		if rep.Requeued != 1 || rep.Notified != 1 {
			t.Fatalf("tick %+v", rep)
		}
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskFailed)
	if task.Attempts != 3 {
		t.Fatalf("attempts %d", task.Attempts)
	}
	notices := r.rec.all()
	if got := len(notices); got != 3 {
		t.Fatalf("%d notices for 1 + 2 retries", got)
	}
	for i, n := range notices {
		if n.Attempt != i+1 {
			t.Fatalf("notice %d says attempt %d", i+1, n.Attempt)
		}
	}
	r.tick()
	r.wantJobState(j.ID, ota.JobCompleted)
}

func TestTimeouts(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) {
		j.TimeoutSeconds = 300
		j.Retry = ota.Retry{Count: 5} // a timeout is never retried
	})
	r.tick() // both notified at t0
	r.clock.Set(rolloutT0.Add(100 * time.Second))
	r.progress("d-0001", 5) // d-0001's clock restarts at +100 s

	r.clock.Set(rolloutT0.Add(300 * time.Second))
	r.tick()
	r.wantState(j.ID, "d-0000", ota.TaskNotified)
	r.clock.Set(rolloutT0.Add(301 * time.Second))
	rep := r.tick()
	if rep.TimedOut != 1 {
		t.Fatalf("tick %+v", rep)
	}
	task := r.wantState(j.ID, "d-0000", ota.TaskFailed)
	if task.Reason != ota.ReasonTimeout || !strings.Contains(task.Detail, "300 s") {
		t.Fatalf("timed out %+v", task)
	}
	r.wantState(j.ID, "d-0001", ota.TaskInProgress)
	r.clock.Set(rolloutT0.Add(400 * time.Second))
	r.tick()
	r.wantState(j.ID, "d-0001", ota.TaskInProgress)
	r.clock.Set(rolloutT0.Add(401 * time.Second))
	r.tick()
	task = r.wantState(j.ID, "d-0001", ota.TaskFailed)
	if task.Reason != ota.ReasonTimeout {
		t.Fatalf("reason %s", task.Reason)
	}
	r.tick()
	r.wantJobState(j.ID, ota.JobCompleted)
	if got := len(r.rec.all()); got != 2 {
		t.Fatalf("%d notices: a timeout was retried", got)
	}
}

// TestRetryRestartsTimeoutClock: a retried attempt's timeout runs from its
// own first progress report, not from the failed attempt's.
func TestRetryRestartsTimeoutClock(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) {
		j.TimeoutSeconds = 300
		j.Retry = ota.Retry{Count: 1, Interval: time.Hour}
	})
	r.tick()
	r.progress("d-0000", 40)
	r.progress("d-0000", -2)
	task := r.wantState(j.ID, "d-0000", ota.TaskRetryWait)
	if !task.StartedAt.IsZero() || task.Progress != 0 {
		t.Fatalf("retry_wait keeps the failed attempt's clock: %+v", task)
	}
	r.clock.Set(rolloutT0.Add(time.Hour))
	if rep := r.tick(); rep.Requeued != 1 || rep.Notified != 1 {
		t.Fatalf("tick %+v", rep)
	}
	r.progress("d-0000", 10)
	task = r.wantState(j.ID, "d-0000", ota.TaskInProgress)
	if !task.StartedAt.Equal(rolloutT0.Add(time.Hour)) {
		t.Fatalf("second attempt started at %v", task.StartedAt)
	}
	r.clock.Add(299 * time.Second)
	if rep := r.tick(); rep.TimedOut != 0 {
		t.Fatalf("the second attempt timed out on the first attempt's clock: %+v", rep)
	}
	r.wantState(j.ID, "d-0000", ota.TaskInProgress)
	r.clock.Add(2 * time.Second)
	if rep := r.tick(); rep.TimedOut != 1 {
		t.Fatalf("tick %+v", rep)
	}
	r.wantState(j.ID, "d-0000", ota.TaskFailed)
}

func TestAbortThreshold(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 10, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.Abort = ota.Abort{FailurePercent: 50, MinFinished: 4} })
	r.tick()
	r.progress("d-0000", -1)
	r.progress("d-0001", -1)
	r.reportVersion("d-0002", "2.0")
	r.tick() // 2 of 3 failed, but fewer than 4 finished
	r.wantJobState(j.ID, ota.JobRunning)
	r.reportVersion("d-0003", "2.0")
	r.progress("d-0004", 10)
	r.tick() // 2 of 4: 50 % ≥ 50 %
	job := r.wantJobState(j.ID, ota.JobCanceled)
	if !strings.Contains(job.StateReason, "abort threshold") || !strings.Contains(job.StateReason, "2 of 4") {
		t.Fatalf("reason %q", job.StateReason)
	}
	r.wantCounts(j.ID, "succeeded=2 failed=2 canceled=6")
	task := r.wantState(j.ID, "d-0004", ota.TaskCanceled)
	if task.Reason != ota.ReasonJobCanceled {
		t.Fatalf("reason %s", task.Reason)
	}
	// The device keeps reporting; it is recorded, nothing else happens.
	r.reportVersion("d-0004", "2.0")
	r.wantState(j.ID, "d-0004", ota.TaskCanceled)
}

func TestPauseResumeCancel(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 6, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 2; j.TimeoutSeconds = 300 })
	r.tick()
	r.wantCounts(j.ID, "queued=4 notified=2")
	if _, err := r.svc.PauseJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	r.wantJobState(j.ID, ota.JobPaused)
	r.reportVersion("d-0000", "2.0") // notified devices may finish while paused
	r.tick()
	r.wantCounts(j.ID, "queued=4 notified=1 succeeded=1")
	r.clock.Add(301 * time.Second) // paused jobs still time out
	r.tick()
	r.wantCounts(j.ID, "queued=4 succeeded=1 failed=1")
	if _, err := r.svc.ResumeJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.wantCounts(j.ID, "queued=2 notified=2 succeeded=1 failed=1")
	_, err := r.svc.ResumeJob(r.ctx, r.p, j.ID)
	if err != nil {
		t.Fatalf("resuming a running job is a no-op: %v", err)
	}

	errCode(t, r.svc.DeleteJob(r.ctx, r.p, j.ID), ota.CodeConflict, "cancel it")
	canceled, err := r.svc.CancelJob(r.ctx, r.p, j.ID)
	if err != nil || canceled.State != ota.JobCanceled || canceled.FinishedAt.IsZero() {
		t.Fatalf("cancel: %+v %v", canceled, err)
	}
	r.wantCounts(j.ID, "succeeded=1 failed=1 canceled=4")
	if _, err := r.svc.CancelJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatalf("cancel twice: %v", err)
	}
	_, err = r.svc.PauseJob(r.ctx, r.p, j.ID)
	errCode(t, err, ota.CodeConflict, "only a planned or running job")
	_, err = r.svc.ResumeJob(r.ctx, r.p, j.ID)
	errCode(t, err, ota.CodeConflict, "only a paused job")
	_, err = r.svc.RetryTasks(r.ctx, r.p, j.ID, nil)
	errCode(t, err, ota.CodeConflict, "canceled")
	r.tick()
	if got := len(r.rec.all()); got != 4 {
		t.Fatalf("%d notices", got)
	}
	if err := r.svc.DeleteJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.GetJob(r.ctx, r.p, j.ID)
	errCode(t, err, ota.CodeNotFound, "")
}

func TestPlannedJobAndFinishTime(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) {
		j.Schedule.Start = rolloutT0.Add(time.Hour)
		j.Schedule.Finish = rolloutT0.Add(2 * time.Hour)
	})
	r.clock.Set(rolloutT0.Add(time.Hour - time.Second))
	r.tick()
	r.wantJobState(j.ID, ota.JobPlanned)
	r.wantCounts(j.ID, "")
	r.clock.Set(rolloutT0.Add(time.Hour))
	rep := r.tick()
	if rep.Started != 1 || rep.Notified != 3 {
		t.Fatalf("tick %+v", rep)
	}
	started := r.wantJobState(j.ID, ota.JobRunning)
	if !started.StartedAt.Equal(rolloutT0.Add(time.Hour)) {
		t.Fatalf("started at %v", started.StartedAt)
	}
	r.reportVersion("d-0000", "2.0")
	r.clock.Set(rolloutT0.Add(2 * time.Hour))
	r.tick()
	done := r.wantJobState(j.ID, ota.JobCompleted)
	if !strings.Contains(done.StateReason, "finish time") {
		t.Fatalf("reason %q", done.StateReason)
	}
	r.wantCounts(j.ID, "succeeded=1 canceled=2")
	if task := r.task(j.ID, "d-0001"); task.Reason != ota.ReasonJobFinished {
		t.Fatalf("reason %s", task.Reason)
	}
}

// TestPausedBeforeStartWaits: a planned job paused before its start time
// has not started; it takes no devices and does not complete until it is
// resumed and its start time has come.
func TestPausedBeforeStartWaits(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.Schedule.Start = rolloutT0.Add(time.Hour) })
	if _, err := r.svc.PauseJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.wantCounts(j.ID, "")
	r.clock.Set(rolloutT0.Add(2 * time.Hour)) // the start time passes while paused
	r.devices("late", 1, "1.0")
	r.tick()
	r.wantJobState(j.ID, ota.JobPaused)
	r.wantCounts(j.ID, "")
	if _, err := r.svc.ResumeJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	r.tick()
	// The device set is the one at the (resumed) start, the late device included.
	if got := r.taskDevices(j.ID); !slices.Equal(got, []string{"d-0000", "d-0001", "late-0000"}) {
		t.Fatalf("tasks for %v", got)
	}
	r.wantCounts(j.ID, "notified=3")
}

func TestOverwriteModes(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	pkg := r.pkg(nil)
	// Job A holds all three: d-0000 waits for confirmation, d-0001 is
	// notified, d-0002 in progress.
	a := r.job(pkg, func(j *ota.Job) { j.NeedConfirm = true })
	r.tick()
	if _, err := r.svc.ConfirmTasks(r.ctx, r.p, a.ID, []string{"d-0001", "d-0002"}); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.progress("d-0002", 40)
	r.wantCounts(a.ID, "confirm=1 notified=1 in_progress=1")

	pkg2 := r.pkg(func(p *ota.Package) { p.Version = "3.0" })
	keep := r.job(pkg2, func(j *ota.Job) { j.Overwrite = ota.OverwriteKeep })
	r.tick()
	r.wantCounts(keep.ID, "skipped=3") // visible, with why
	if task := r.task(keep.ID, "d-0000"); task.Reason != ota.ReasonBusyInOtherJob {
		t.Fatalf("kept device's task in the new job: %+v", task)
	}
	r.wantJobState(keep.ID, ota.JobCompleted)
	r.wantCounts(a.ID, "confirm=1 notified=1 in_progress=1")

	over := r.job(pkg2, func(j *ota.Job) { j.Overwrite = ota.OverwriteReplace })
	r.tick()
	if got := r.taskDevices(over.ID); !slices.Equal(got, []string{"d-0000", "d-0001", "d-0002"}) {
		t.Fatalf("overwrite's tasks %v", got)
	}
	if task := r.task(over.ID, "d-0002"); task.State != ota.TaskSkipped || task.Reason != ota.ReasonBusyInOtherJob {
		t.Fatalf("the device in progress elsewhere: %+v", task)
	}
	for _, d := range []string{"d-0000", "d-0001"} {
		task := r.wantState(a.ID, d, ota.TaskCanceled)
		if task.Reason != ota.ReasonOverwritten || !strings.Contains(task.Detail, over.ID) {
			t.Fatalf("overwritten task %+v", task)
		}
	}
	r.wantState(a.ID, "d-0002", ota.TaskInProgress) // in progress is never overwritten
	r.wantCounts(over.ID, "notified=2 skipped=1")
}

func TestDynamicJob(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	r.devices("old", 1, "0.9")
	pkg := r.pkg(func(p *ota.Package) { p.SourceVersions = []string{"1.0", "1.1"} })
	// One unfinished dynamic job per package: the older one is on another
	// package of the same module.
	olderDyn := r.job(r.pkg(func(p *ota.Package) { p.SourceVersions = []string{"1.0", "1.1"} }), func(j *ota.Job) {
		j.Selection = ota.SelectDynamic
		j.Target = ota.Target{SourceVersions: []string{"1.1"}}
	})
	r.clock.Add(time.Second)
	dyn := r.job(pkg, func(j *ota.Job) { j.Selection = ota.SelectDynamic })
	_, err := r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: pkg.ID, Selection: ota.SelectDynamic, Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeConflict, "already has an unfinished dynamic job")
	r.tick()
	if got := r.taskDevices(dyn.ID); !slices.Equal(got, []string{"d-0000", "d-0001", "d-0002"}) {
		t.Fatalf("initial tasks %v", got)
	}
	for _, d := range []string{"d-0000", "d-0001", "d-0002"} {
		r.reportVersion(d, "2.0")
	}
	r.tick()
	r.wantJobState(dyn.ID, ota.JobRunning) // dynamic jobs do not complete when all tasks are done

	// A device that reaches a source version later gets a task.
	r.reportVersion("old-0000", "0.8")
	r.wantCounts(dyn.ID, "succeeded=3")
	r.reportVersion("old-0000", "1.1") // both dynamic jobs match: the newest wins
	r.wantState(dyn.ID, "old-0000", ota.TaskQueued)
	r.wantCounts(olderDyn.ID, "")
	r.reportVersion("old-0000", "1.1") // reported again: still one task
	r.tick()
	r.wantState(dyn.ID, "old-0000", ota.TaskNotified)

	// A device created after the job started gets a task when it reports.
	r.clock.Add(time.Minute)
	r.devices("late", 1, "")
	r.tick()
	r.wantCounts(dyn.ID, "notified=1 succeeded=3")
	r.reportVersion("late-0000", "1.0")
	r.wantState(dyn.ID, "late-0000", ota.TaskQueued)

	// A failed device does not get a second task in the same job.
	r.tick()
	r.progress("old-0000", -1)
	r.reportVersion("old-0000", "1.1")
	r.wantState(dyn.ID, "old-0000", ota.TaskFailed)

	if _, err := r.svc.CancelJob(r.ctx, r.p, dyn.ID); err != nil {
		t.Fatal(err)
	}
	r.reportVersion("d-0000", "1.0") // rolled back: only running dynamic jobs take devices
	if got := r.taskDevices(dyn.ID); len(got) != 5 {
		t.Fatalf("tasks after cancel %v", got)
	}
}

func TestVerifyJob(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 4, "1.0")
	pkg := r.pkg(func(p *ota.Package) { p.NeedVerify = true })
	v := r.job(pkg, func(j *ota.Job) { j.Type = ota.JobVerify; j.Target = ota.Target{Devices: []string{"d-0000", "d-0001"}} })
	r.tick()
	r.reportVersion("d-0000", "2.0")
	r.tick()
	r.wantJobState(v.ID, ota.JobRunning)
	if p, _ := r.svc.GetPackage(r.ctx, r.p, pkg.ID); p.VerifyStatus != ota.VerifyInProgress {
		t.Fatalf("package %s while verifying", p.VerifyStatus)
	}
	r.reportVersion("d-0001", "2.0")
	r.tick()
	r.wantJobState(v.ID, ota.JobCompleted)
	if p, _ := r.svc.GetPackage(r.ctx, r.p, pkg.ID); p.VerifyStatus != ota.VerifyPassed {
		t.Fatalf("package %s after a passed verification", p.VerifyStatus)
	}
	_, err := r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: pkg.ID, Type: ota.JobVerify, Target: ota.Target{Devices: []string{"d-0002"}}})
	errCode(t, err, ota.CodeConflict, "verified")
	up := r.job(pkg, nil) // now allowed
	r.tick()
	r.wantCounts(up.ID, "notified=2 skipped=2") // d-0000 and d-0001 are on 2.0 already

	bad := r.pkg(func(p *ota.Package) {
		p.NeedVerify = true
		p.Version = "3.0"
		p.SourceVersions = []string{"1.0", "2.0"}
	})
	v2 := r.job(bad, func(j *ota.Job) { j.Type = ota.JobVerify; j.Target = ota.Target{Devices: []string{"d-0000", "d-0001"}} })
	r.tick()
	r.progress("d-0000", -4)
	r.tick()
	r.wantJobState(v2.ID, ota.JobRunning) // d-0001 still has its chance
	r.reportVersion("d-0001", "3.0")
	r.tick()
	r.wantJobState(v2.ID, ota.JobCompleted)
	if p, _ := r.svc.GetPackage(r.ctx, r.p, bad.ID); p.VerifyStatus != ota.VerifyFailed {
		t.Fatalf("package %s after a failed verification", p.VerifyStatus)
	}
	_, err = r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: bad.ID, Target: ota.Target{All: true}})
	errCode(t, err, ota.CodeNotVerified, "failed")

	// Retrying the failed device re-opens the job and the verification.
	res, err := r.svc.RetryTasks(r.ctx, r.p, v2.ID, []string{"d-0000"})
	if err != nil || !res[0].OK {
		t.Fatalf("retry: %+v %v", res, err)
	}
	r.wantJobState(v2.ID, ota.JobRunning)
	if p, _ := r.svc.GetPackage(r.ctx, r.p, bad.ID); p.VerifyStatus != ota.VerifyInProgress {
		t.Fatalf("package %s after a retry", p.VerifyStatus)
	}
	r.tick()
	r.reportVersion("d-0000", "3.0")
	r.tick()
	if p, _ := r.svc.GetPackage(r.ctx, r.p, bad.ID); p.VerifyStatus != ota.VerifyPassed {
		t.Fatalf("package %s after the retried device passed", p.VerifyStatus)
	}

	// Canceling a verification before any result leaves the package unverified.
	r.devices("e", 1, "1.0")
	third := r.pkg(func(p *ota.Package) { p.NeedVerify = true; p.Version = "4.0" })
	v3 := r.job(third, func(j *ota.Job) { j.Type = ota.JobVerify; j.Target = ota.Target{Devices: []string{"e-0000"}} })
	r.tick()
	if _, err := r.svc.CancelJob(r.ctx, r.p, v3.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.svc.GetPackage(r.ctx, r.p, third.ID); p.VerifyStatus != ota.VerifyPending {
		t.Fatalf("package %s after a canceled verification", p.VerifyStatus)
	}
}

func TestOperatorRetryAndCancelTasks(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	r.progress("d-0000", -5)
	res, err := r.svc.CancelTasks(r.ctx, r.p, j.ID, []string{"d-0001", "d-0000"})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].OK || res[1].OK || ota.ErrorCode(res[1].Err) != ota.CodeConflict {
		t.Fatalf("cancel results %+v", res)
	}
	task := r.wantState(j.ID, "d-0001", ota.TaskCanceled)
	if task.Reason != ota.ReasonCanceled {
		t.Fatalf("reason %s", task.Reason)
	}
	r.reportVersion("d-0002", "2.0")
	r.tick()
	r.wantJobState(j.ID, ota.JobCompleted)

	res, err = r.svc.RetryTasks(r.ctx, r.p, j.ID, nil) // every failed or canceled task
	if err != nil || len(res) != 2 || !res[0].OK || !res[1].OK {
		t.Fatalf("retry all: %+v %v", res, err)
	}
	r.wantJobState(j.ID, ota.JobRunning)
	r.wantCounts(j.ID, "queued=2 succeeded=1")
	r.tick()
	task = r.wantState(j.ID, "d-0000", ota.TaskNotified)
	if task.Attempts != 2 || task.Reason != ota.ReasonNone {
		t.Fatalf("retried task %+v", task)
	}
	res, _ = r.svc.RetryTasks(r.ctx, r.p, j.ID, []string{"d-0002"})
	if res[0].OK || ota.ErrorCode(res[0].Err) != ota.CodeConflict {
		t.Fatalf("retrying a succeeded task: %+v", res)
	}
}

// TestDevicePull covers jobs that do not push and device requests.
func TestDevicePull(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	pkg := r.pkg(nil)
	pull := r.job(pkg, func(j *ota.Job) { j.NeedPush = false; j.Target = ota.Target{Devices: []string{"d-0000"}} })
	r.tick()
	r.wantCounts(pull.ID, "queued=1")
	if len(r.rec.all()) != 0 {
		t.Fatal("a pull job pushed")
	}
	n, err := r.svc.NextNotice(r.ctx, ref("d-0000"), "")
	if err != nil || n == nil {
		t.Fatalf("pull: %v %v", n, err)
	}
	if n.JobID != pull.ID || n.URL == "" || n.Version != "2.0" {
		t.Fatalf("notice %+v", n)
	}
	again, err := r.svc.NextNotice(r.ctx, ref("d-0000"), "")
	if err != nil || again == nil || again.TaskID != n.TaskID {
		t.Fatalf("second poll: %v %v", again, err)
	}
	if task := r.wantState(pull.ID, "d-0000", ota.TaskNotified); task.Attempts != 1 {
		t.Fatalf("a repeated poll counted as an attempt: %d", task.Attempts)
	}

	// A pushing job held back by its concurrency cap: the device may ask
	// only when the job allows device requests.
	held := r.job(pkg, func(j *ota.Job) { j.MaxConcurrency = 1; j.Target = ota.Target{Devices: []string{"d-0001", "d-0002"}} })
	r.tick()
	r.wantCounts(held.ID, "queued=1 notified=1")
	queued := "d-0001"
	if r.task(held.ID, queued).State != ota.TaskQueued {
		queued = "d-0002"
	}
	if n, err := r.svc.NextNotice(r.ctx, ref(queued), ""); err != nil || n != nil {
		t.Fatalf("device request on a job that does not allow them: %v %v", n, err)
	}
	if _, err := r.svc.CancelJob(r.ctx, r.p, held.ID); err != nil {
		t.Fatal(err)
	}
	allow := r.job(pkg, func(j *ota.Job) {
		j.MaxConcurrency = 1
		j.AllowDeviceRequest = true
		j.Target = ota.Target{Devices: []string{"d-0001", "d-0002"}}
	})
	r.tick()
	r.wantCounts(allow.ID, "queued=1 notified=1")
	queued = "d-0001"
	if r.task(allow.ID, queued).State != ota.TaskQueued {
		queued = "d-0002"
	}
	n, err = r.svc.NextNotice(r.ctx, ref(queued), "")
	if err != nil || n == nil || n.JobID != allow.ID {
		t.Fatalf("device request: %v %v", n, err)
	}
	r.wantCounts(allow.ID, "notified=2")
	if n, err := r.svc.NextNotice(r.ctx, ref("ghost"), ""); err != nil || n != nil {
		t.Fatalf("unknown device: %v %v", n, err)
	}
}

func TestDeviceConnected(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	r.clock.Add(time.Minute)
	if err := r.svc.DeviceConnected(r.ctx, ref("d-0000"), true); err != nil {
		t.Fatal(err)
	}
	d, _ := r.st.GetDevice(r.ctx, rolloutProduct, "d-0000")
	if !d.Online || !d.LastSeen.Equal(rolloutT0.Add(time.Minute)) {
		t.Fatalf("device %+v", d)
	}
	if err := r.svc.DeviceConnected(r.ctx, ref("d-0000"), false); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.st.GetDevice(r.ctx, rolloutProduct, "d-0000"); d.Online {
		t.Fatal("still online")
	}
	errCode(t, r.svc.ReportVersion(r.ctx, ref("ghost"), "", "1.0"), ota.CodeNotFound, "")
	errCode(t, r.svc.ReportVersion(r.ctx, ref("d-0000"), "", "1 0"), ota.CodeInvalid, "")
}

// TestResumeAfterCrash kills the service in the middle of materialization
// and dispatch, twice, and checks that every device is notified exactly once
// and no task is lost.
func TestResumeAfterCrash(t *testing.T) {
	r := newRolloutEnv(t, service.Options{MaterializeBatch: 10, ClaimBatch: 7})
	const fleet = 250
	r.devices("d", fleet, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 40 })
	var all []string
	collect := func() { all = append(all, r.rec.devicesNotified()...) }

	r.tick() // 100 tasks, 40 notified
	if v := r.getJob(j.ID); v.Job.Materialized || v.Counts.Total() != 100 || v.Counts[ota.TaskNotified] != 40 {
		t.Fatalf("after the first tick: %s, materialized %v", countsString(v.Counts), v.Job.Materialized)
	}
	collect()
	r.crash()
	for round := 0; round < 100; round++ {
		// Devices finish what they were told; every 3rd round the server dies.
		for _, task := range r.tasks(j.ID) {
			if task.State == ota.TaskNotified {
				r.reportVersion(task.DeviceName, "2.0")
			}
		}
		r.clock.Add(time.Second)
		r.tick()
		if round%3 == 2 {
			collect()
			r.crash()
		}
		if r.getJob(j.ID).Job.State == ota.JobCompleted {
			break
		}
	}
	collect()
	r.wantJobState(j.ID, ota.JobCompleted)
	r.wantCounts(j.ID, fmt.Sprintf("succeeded=%d", fleet))
	slices.Sort(all)
	if len(all) != fleet || len(slices.Compact(slices.Clone(all))) != fleet {
		t.Fatalf("%d notices for %d devices (%d distinct)", len(all), fleet, len(slices.Compact(slices.Clone(all))))
	}
}

// TestRemainingTransitions covers the transitions of ota's table that the
// scenarios above do not: device reports on tasks not yet notified or
// waiting for a retry, and an operator's retry into confirm.
func TestRemainingTransitions(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("q", 4, "1.0")
	r.devices("c", 1, "1.0")
	r.devices("n", 2, "1.0")
	pkg := r.pkg(nil)

	// Queued tasks of a pull job (nothing claims them) hear from devices
	// that still hold an earlier notice.
	pull := r.job(pkg, func(j *ota.Job) {
		j.NeedPush = false
		j.Retry = ota.Retry{Count: 1, Interval: time.Hour}
		j.Target = ota.Target{Devices: []string{"q-0000", "q-0001", "q-0002", "q-0003"}}
	})
	r.tick()
	r.wantCounts(pull.ID, "queued=4")
	r.progress("q-0000", 10)
	r.wantState(pull.ID, "q-0000", ota.TaskInProgress) // queued → in_progress
	r.reportVersion("q-0001", "2.0")
	r.wantState(pull.ID, "q-0001", ota.TaskSucceeded) // queued → succeeded
	r.progress("q-0002", -1)
	task := r.wantState(pull.ID, "q-0002", ota.TaskRetryWait) // queued → retry_wait
	r.reportVersion("q-0002", "2.0")
	r.wantState(pull.ID, "q-0002", ota.TaskSucceeded) // retry_wait → succeeded
	r.progress("q-0003", -1)
	r.wantState(pull.ID, "q-0003", ota.TaskRetryWait)
	if _, err := r.svc.CancelTasks(r.ctx, r.p, pull.ID, []string{"q-0003"}); err != nil {
		t.Fatal(err)
	}
	r.wantState(pull.ID, "q-0003", ota.TaskCanceled) // retry_wait → canceled
	_ = task

	// Without a retry policy a failure from queued is final.
	noRetry := r.job(pkg, func(j *ota.Job) { j.NeedPush = false; j.Target = ota.Target{Devices: []string{"q-0003"}} })
	r.tick()
	r.progress("q-0003", -2)
	r.wantState(noRetry.ID, "q-0003", ota.TaskFailed) // queued → failed

	// confirm → succeeded, and failed → confirm by an operator's retry.
	conf := r.job(pkg, func(j *ota.Job) { j.NeedConfirm = true; j.Target = ota.Target{Devices: []string{"c-0000"}} })
	r.tick()
	r.reportVersion("c-0000", "2.0")
	r.wantState(conf.ID, "c-0000", ota.TaskSucceeded)
	conf2 := r.job(r.pkg(func(p *ota.Package) { p.Version = "3.0" }), func(j *ota.Job) {
		j.NeedConfirm = true
		j.Target = ota.Target{Devices: []string{"c-0000"}}
	})
	r.tick()
	if res, err := r.svc.ConfirmTasks(r.ctx, r.p, conf2.ID, nil); err != nil || len(res) != 1 || !res[0].OK {
		t.Fatalf("confirm: %+v %v", res, err)
	}
	r.tick()
	r.progress("c-0000", -1)
	r.wantState(conf2.ID, "c-0000", ota.TaskFailed)
	if res, err := r.svc.RetryTasks(r.ctx, r.p, conf2.ID, []string{"c-0000"}); err != nil || !res[0].OK {
		t.Fatalf("retry: %+v %v", res, err)
	}
	r.wantState(conf2.ID, "c-0000", ota.TaskConfirm) // failed → confirm

	// notified → retry_wait: a failure before any progress.
	notif := r.job(pkg, func(j *ota.Job) {
		j.Retry = ota.Retry{Count: 1}
		j.Target = ota.Target{Devices: []string{"n-0000"}}
	})
	r.tick()
	r.wantState(notif.ID, "n-0000", ota.TaskNotified)
	r.progress("n-0000", -5)
	task = r.wantState(notif.ID, "n-0000", ota.TaskRetryWait)
	if task.Reason != ota.ReasonDeviceRejected {
		t.Fatalf("reason %s", task.Reason)
	}
	// Progress is refused for tasks that wait (confirm, retry_wait).
	errCode(t, r.svc.ReportProgress(r.ctx, ref("n-0000"), service.Progress{Step: 5}), ota.CodeConflict, "retry_wait")
	// A progress report naming another device's task is refused.
	errCode(t, r.svc.ReportProgress(r.ctx, ref("n-0001"), service.Progress{TaskID: task.ID, Step: 5}), ota.CodeNotFound, "")
}

// TestSweepAfterCrashInEndJob simulates a server killed after a job was
// written canceled but before its tasks were: the restarted engine frees the
// devices.
func TestSweepAfterCrashInEndJob(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	job := r.getJob(j.ID).Job
	job.State, job.StateReason = ota.JobCanceled, "canceled by the operator"
	if err := r.st.UpdateJob(r.ctx, job, ota.JobRunning); err != nil {
		t.Fatal(err)
	}
	r.wantCounts(j.ID, "notified=3")
	r.crash()
	r.tick()
	r.wantCounts(j.ID, "canceled=3")
	if task := r.task(j.ID, "d-0000"); task.Reason != ota.ReasonJobCanceled {
		t.Fatalf("reason %s", task.Reason)
	}
	// The devices are free for a new job.
	k := r.job(r.pkg(func(p *ota.Package) { p.Version = "3.0" }), nil)
	r.tick()
	r.wantCounts(k.ID, "notified=3")
}

// TestTickReportsMore: a tick says More exactly when a per-tick budget, not
// the job's own limits, left work for the next one.
func TestTickReportsMore(t *testing.T) {
	r := newRolloutEnv(t, service.Options{MaterializeBatch: 10, ClaimBatch: 7})
	r.devices("d", 250, "1.0") // 10 batches of 10 per tick: 3 ticks to materialize
	capped := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 40 })
	advance := r.tick
	for i := 1; i <= 2; i++ {
		if rep := advance(); !rep.More || rep.Materialized != 100 {
			t.Fatalf("tick %d: %+v, want 100 materialized and More", i, rep)
		}
	}
	// Materialized; the job's concurrency (40), not the claim budget (70),
	// stops the dispatch: nothing for an early tick to do.
	if rep := advance(); rep.More || rep.Materialized != 50 {
		t.Fatalf("tick 3: %+v, want 50 materialized, no More", rep)
	}
	if v := r.getJob(capped.ID); v.Counts[ota.TaskNotified] != 40 {
		t.Fatalf("after 3 ticks: %s, want 40 notified", countsString(v.Counts))
	}
	if _, err := r.svc.CancelJob(r.ctx, r.p, capped.ID); err != nil {
		t.Fatal(err)
	}
	advance() // its end cancels its tasks

	// Without a cap the claim budget (10 claims of 7) is what stops it.
	open := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 1000 })
	ticks := 0
	for rep := advance(); ; rep = advance() {
		ticks++
		v := r.getJob(open.ID)
		if !rep.More {
			if v.Counts[ota.TaskNotified] != 250 {
				t.Fatalf("tick %d without More, but %s", ticks, countsString(v.Counts))
			}
			break
		}
		if ticks > 10 {
			t.Fatalf("still More after %d ticks: %s", ticks, countsString(v.Counts))
		}
	}
	if ticks != 4 { // 3 to materialize, each also claiming 70, then 40
		t.Fatalf("%d ticks to notify 250 devices, want 4", ticks)
	}
}
