package service_test

import (
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func ptrTo[T any](v T) *T { return &v }

// TestJobCreatedWithoutStarting: a job created held (EnOS create, then
// start) has its tasks but notifies nobody until StartJob.
func TestJobCreatedWithoutStarting(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) {
		j.State = ota.JobPaused
		j.Target = ota.Target{Devices: []string{"d-0000", "d-0001"}}
	})
	r.wantCounts(j.ID, "queued=2")
	r.tick()
	r.wantJobState(j.ID, ota.JobPaused)
	r.wantCounts(j.ID, "queued=2")
	if _, err := r.svc.StartJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.wantJobState(j.ID, ota.JobRunning)
	r.wantCounts(j.ID, "notified=2")
	// A job paused after it started is resumed, not started.
	if _, err := r.svc.PauseJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	_, err := r.svc.StartJob(r.ctx, r.p, j.ID)
	errCode(t, err, ota.CodeConflict, "created without starting")
}

// TestUpdateJobSettings: rate, timeout, tags and source versions change on
// a live job within the limits of a new one; an ended job refuses.
func TestUpdateJobSettings(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.NeedConfirm = true })
	got, err := r.svc.UpdateJob(r.ctx, r.p, j.ID, service.JobChange{MaxPerMinute: ptrTo(20), TimeoutSeconds: ptrTo(600),
		Tags: &[]ota.Tag{{Key: "wave", Value: "2"}}, SourceVersions: &[]string{"1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	stored := r.getJob(j.ID).Job
	if stored.MaxPerMinute != 20 || stored.TimeoutSeconds != 600 || len(stored.Tags) != 1 || stored.Tags[0].Value != "2" ||
		len(stored.Target.SourceVersions) != 1 || got.MaxPerMinute != 20 {
		t.Fatalf("stored job %+v", stored)
	}
	_, err = r.svc.UpdateJob(r.ctx, r.p, j.ID, service.JobChange{TimeoutSeconds: ptrTo(ota.MaxTimeoutSeconds + 1)})
	errCode(t, err, ota.CodeInvalid, "timeout_seconds")
	_, err = r.svc.UpdateJob(r.ctx, r.p, j.ID, service.JobChange{MaxPerMinute: ptrTo(ota.MinPerMinuteLimit - 1)})
	errCode(t, err, ota.CodeInvalid, "max_per_minute")
	if _, err := r.svc.CancelJob(r.ctx, r.p, j.ID); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.UpdateJob(r.ctx, r.p, j.ID, service.JobChange{MaxPerMinute: ptrTo(30)})
	errCode(t, err, ota.CodeConflict, "ended job")
}

// TestUpdatePackageInfo: name, description and custom info change; the
// verify status the engine owns does not move with them.
func TestUpdatePackageInfo(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	pkg := r.pkg(func(p *ota.Package) { p.NeedVerify = true })
	other := r.pkg(nil)
	got, err := r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{Name: ptrTo("renamed"), Description: ptrTo("new text"),
		CustomInfo: ptrTo(`{"reboot":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := r.svc.GetPackage(r.ctx, r.p, pkg.ID)
	if err != nil || stored.Name != "renamed" || stored.Description != "new text" || stored.CustomInfo != `{"reboot":true}` ||
		stored.VerifyStatus != ota.VerifyPending || got.Name != "renamed" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	_, err = r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{Name: ptrTo(other.Name)})
	errCode(t, err, ota.CodeConflict, "already exists")
	_, err = r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{CustomInfo: ptrTo(string(make([]byte, ota.MaxCustomInfoLen+1)))})
	errCode(t, err, ota.CodeInvalid, "custom_info")
}

// TestPackageLocalNames: an operator's change replaces the translations
// (within the limits of a new package) and a listing finds a package by its
// name in a locale; a malformed locale is refused, not passed to the store.
func TestPackageLocalNames(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	pkg := r.pkg(nil)
	r.pkg(nil)
	names := map[string]string{"en_US": "Spring-build", "zh_CN": "春季版"}
	if _, err := r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{LocalNames: &names}); err != nil {
		t.Fatal(err)
	}
	list, total, err := r.svc.ListPackages(r.ctx, r.p, store.PackageFilter{NameLocale: "zh_CN", NameContains: "春季"}, store.Page{})
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != pkg.ID || list[0].LocalNames["en_US"] != "Spring-build" {
		t.Fatalf("by zh_CN name: %+v (%d), %v", list, total, err)
	}
	bad := map[string]string{"en-US": "x"}
	_, err = r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{LocalNames: &bad})
	errCode(t, err, ota.CodeInvalid, "en-US")
	_, _, err = r.svc.ListPackages(r.ctx, r.p, store.PackageFilter{NameLocale: `en_US"`, NameContains: "x"}, store.Page{})
	errCode(t, err, ota.CodeInvalid, "locale")
	_, _, err = r.svc.ListJobs(r.ctx, r.p, store.JobFilter{NameLocale: "$.en", NameContains: "x"}, store.Page{})
	errCode(t, err, ota.CodeInvalid, "locale")
	none := map[string]string{}
	if got, err := r.svc.UpdatePackage(r.ctx, r.p, pkg.ID, service.PackageChange{LocalNames: &none}); err != nil || len(got.LocalNames) != 0 {
		t.Fatalf("clearing local names: %+v, %v", got.LocalNames, err)
	}
}

// TestCancelTasksByStateIDAndDevice: set-based cancels by state (Alibaba's
// flags), by task id, and by device across jobs.
func TestCancelTasksByStateIDAndDevice(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 4, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.NeedConfirm = true; j.MaxConcurrency = 1 })
	r.tick()
	if _, err := r.svc.ConfirmTasks(r.ctx, r.p, j.ID, []string{"d-0000", "d-0001"}); err != nil {
		t.Fatal(err)
	}
	r.tick()
	r.wantCounts(j.ID, "confirm=2 queued=1 notified=1")
	n, err := r.svc.CancelTasksWhere(r.ctx, r.p, j.ID, []ota.TaskState{ota.TaskConfirm}, nil)
	if err != nil || n != 2 {
		t.Fatalf("cancel confirm tasks: %d, %v", n, err)
	}
	r.wantCounts(j.ID, "queued=1 notified=1 canceled=2")
	_, err = r.svc.CancelTasksWhere(r.ctx, r.p, j.ID, []ota.TaskState{ota.TaskSucceeded}, nil)
	errCode(t, err, ota.CodeInvalid, "unfinished")
	queued := r.task(j.ID, "d-0001")
	if queued.State != ota.TaskQueued {
		queued = r.task(j.ID, "d-0000")
	}
	n, err = r.svc.CancelTasksWhere(r.ctx, r.p, j.ID, nil, []int64{queued.ID})
	if err != nil || n != 1 {
		t.Fatalf("cancel by id: %d, %v", n, err)
	}
	r.wantCounts(j.ID, "notified=1 canceled=3")

	// By device, across jobs and modules.
	r.devices("m", 1, "1.0")
	if _, err := r.svc.CreateModule(r.ctx, r.p, ota.Module{ProductKey: rolloutProduct, Name: "wifi"}); err != nil {
		t.Fatal(err)
	}
	a := r.job(r.pkg(nil), func(j *ota.Job) { j.Target = ota.Target{Devices: []string{"m-0000"}} })
	b := r.job(r.pkg(func(p *ota.Package) { p.Kind, p.Module = ota.KindModule, "wifi" }), func(j *ota.Job) {
		j.Target = ota.Target{Devices: []string{"m-0000"}}
	})
	r.wantState(b.ID, "m-0000", ota.TaskWaiting) // no version of wifi known yet
	n, err = r.svc.CancelDeviceTasks(r.ctx, r.p, rolloutProduct, "m-0000", "")
	if err != nil || n != 2 {
		t.Fatalf("cancel by device: %d, %v", n, err)
	}
	r.wantState(a.ID, "m-0000", ota.TaskCanceled)
	r.wantState(b.ID, "m-0000", ota.TaskCanceled)
}

// TestWaitingDevices: an offline device's task waits (no notice, no
// timeout, not counted against concurrency), becomes due when the device
// connects, and gives a due task back when it disconnects before starting.
func TestWaitingDevices(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("on", 1, "1.0")
	r.devices("off", 2, "1.0")
	for _, d := range []string{"off-0000", "off-0001"} {
		if err := r.svc.DeviceConnected(r.ctx, ref(d), false); err != nil {
			t.Fatal(err)
		}
	}
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.MaxConcurrency = 1 })
	r.tick()
	r.wantCounts(j.ID, "waiting=2 notified=1")
	r.clock.Add(3 * time.Hour) // past the 2 h timeout: only the notified one times out
	r.tick()
	r.wantCounts(j.ID, "waiting=2 failed=1")

	if err := r.svc.DeviceConnected(r.ctx, ref("off-0000"), true); err != nil {
		t.Fatal(err)
	}
	r.wantState(j.ID, "off-0000", ota.TaskQueued)
	r.tick()
	r.wantState(j.ID, "off-0000", ota.TaskNotified)
	// Gone again before it started: back to waiting, its clock stopped.
	if err := r.svc.DeviceConnected(r.ctx, ref("off-0000"), false); err != nil {
		t.Fatal(err)
	}
	r.wantState(j.ID, "off-0000", ota.TaskWaiting)
	r.clock.Add(3 * time.Hour)
	r.tick()
	r.wantState(j.ID, "off-0000", ota.TaskWaiting)
	// A device that polls is there: its waiting task is claimed at once.
	n, err := r.svc.NextNotice(r.ctx, ref("off-0001"), "")
	if err != nil {
		t.Fatal(err)
	}
	task := r.task(j.ID, "off-0001")
	if n != nil || task.State != ota.TaskQueued { // a pushing job: the engine sends it
		t.Fatalf("after a poll: notice %v, task %s", n, task.State)
	}
	// Back online on a version the job does not apply to: skipped.
	r.reportVersion("off-0000", "2.5")
	task = r.wantState(j.ID, "off-0000", ota.TaskSkipped)
	if task.Reason != ota.ReasonDowngrade {
		t.Fatalf("reason %s", task.Reason)
	}
}

// TestTimeoutFromInProgress: with TimeoutFrom in_progress (EnOS) a notified
// task does not time out; the clock starts at the first progress report.
func TestTimeoutFromInProgress(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	j := r.job(r.pkg(nil), func(j *ota.Job) { j.TimeoutFrom = ota.TimeoutFromInProgress; j.TimeoutSeconds = 600 })
	r.tick()
	r.clock.Add(time.Hour)
	r.tick()
	r.wantState(j.ID, "d-0000", ota.TaskNotified)
	r.progress("d-0000", 10)
	r.clock.Add(11 * time.Minute)
	r.tick()
	task := r.wantState(j.ID, "d-0000", ota.TaskFailed)
	if task.Reason != ota.ReasonTimeout {
		t.Fatalf("reason %s", task.Reason)
	}
}

// TestRetryOfflineDeviceWaits: an operator's retry admits the task like a new
// target: an offline device's task waits (no notice, no timeout clock), an
// online one's is due, and the waiting one is due once its device is back.
func TestRetryOfflineDeviceWaits(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	j := r.job(r.pkg(nil), nil)
	r.tick()
	r.wantCounts(j.ID, "notified=2")
	r.progress("d-0000", -1)
	r.progress("d-0001", -1)
	r.wantCounts(j.ID, "failed=2")
	if err := r.svc.DeviceConnected(r.ctx, ref("d-0001"), false); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.RetryTasks(r.ctx, r.p, j.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if !x.OK {
			t.Fatalf("retry of %s: %v", x.Device, x.Err)
		}
	}
	// Read at once, as a caller would.
	r.wantState(j.ID, "d-0000", ota.TaskQueued)
	r.wantState(j.ID, "d-0001", ota.TaskWaiting)
	r.clock.Add(3 * time.Hour) // no timeout runs for the waiting one
	r.tick()
	r.wantState(j.ID, "d-0001", ota.TaskWaiting)
	if err := r.svc.DeviceConnected(r.ctx, ref("d-0001"), true); err != nil {
		t.Fatal(err)
	}
	r.wantState(j.ID, "d-0001", ota.TaskQueued)
}

// TestDynamicJobRevivesSkipped: a dynamic job that skipped a device (on a
// newer version) takes it when the device later reports one the job
// applies to; a static job keeps its skip.
func TestDynamicJobRevivesSkipped(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "2.5")
	pkg := r.pkg(nil)
	dyn := r.job(pkg, func(j *ota.Job) {
		j.Selection = ota.SelectDynamic
		j.Target = ota.Target{All: true}
	})
	r.tickUntilMaterialized(dyn.ID)
	task := r.wantState(dyn.ID, "d-0000", ota.TaskSkipped)
	if task.Reason != ota.ReasonDowngrade {
		t.Fatalf("reason %s, want %s", task.Reason, ota.ReasonDowngrade)
	}
	r.reportVersion("d-0000", "1.0")
	task = r.wantState(dyn.ID, "d-0000", ota.TaskQueued)
	if task.FromVersion != "1.0" || task.Reason != ota.ReasonNone || !task.FinishedAt.IsZero() {
		t.Fatalf("revived task: from %q reason %q finished %v", task.FromVersion, task.Reason, task.FinishedAt)
	}
	r.tick()
	r.wantState(dyn.ID, "d-0000", ota.TaskNotified)
	r.reportVersion("d-0000", pkg.Version)
	r.wantState(dyn.ID, "d-0000", ota.TaskSucceeded)

	// A static job's skip is final.
	r.devices("s", 1, "3.5")
	pkg2 := r.pkg(func(p *ota.Package) { p.Version = "3.0" })
	st := r.job(pkg2, func(j *ota.Job) { j.Target = ota.Target{Devices: []string{"s-0000"}} })
	r.tickUntilMaterialized(st.ID)
	r.wantState(st.ID, "s-0000", ota.TaskSkipped)
	r.reportVersion("s-0000", "2.0")
	r.wantState(st.ID, "s-0000", ota.TaskSkipped)
}

// TestDeviceSeenKeepsOnline: a device-HTTP request records a sighting
// without making the device online.
func TestDeviceSeenKeepsOnline(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 1, "1.0")
	if err := r.svc.DeviceConnected(r.ctx, ref("d-0000"), false); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(time.Minute)
	if err := r.svc.DeviceSeen(r.ctx, ref("d-0000")); err != nil {
		t.Fatal(err)
	}
	d, err := r.st.GetDevice(r.ctx, rolloutProduct, "d-0000")
	if err != nil {
		t.Fatal(err)
	}
	if d.Online || !d.LastSeen.Equal(r.clock.Now()) {
		t.Fatalf("after a sighting: online %v, last seen %v (want %v)", d.Online, d.LastSeen, r.clock.Now())
	}
}

// TestUnclaimedUploadsRemoved: an upload no package claims within its time
// is removed by the engine (once a minute per replica); a claimed one and
// one still within its time stay.
func TestUnclaimedUploadsRemoved(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	put := func(key string) {
		t.Helper()
		if _, err := r.svc.PutUpload(r.ctx, r.p, "uploads", key, strings.NewReader("firmware "+key), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := r.blobs.Stat(r.ctx, "uploads", key)
		return err == nil
	}
	put("orphan.bin")
	put("claimed.bin")
	if _, err := r.svc.RegisterObject(r.ctx, r.p, ota.Package{ProductKey: rolloutProduct, Name: "claims", Version: "2.0"},
		"uploads", "claimed.bin"); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(30 * time.Minute)
	put("late.bin")
	r.tick()
	if !exists("orphan.bin") {
		t.Fatal("an upload was removed before its hour was up")
	}
	r.clock.Add(31 * time.Minute) // orphan.bin's hour is up; late.bin's is not
	r.tick()
	if exists("orphan.bin") || !exists("claimed.bin") || !exists("late.bin") {
		t.Fatalf("after an hour: orphan %v (want gone), claimed %v, late %v (want kept)", exists("orphan.bin"), exists("claimed.bin"), exists("late.bin"))
	}
	r.clock.Add(time.Hour)
	r.tick()
	if exists("late.bin") || !exists("claimed.bin") {
		t.Fatalf("later: late %v (want gone), claimed %v (want kept)", exists("late.bin"), exists("claimed.bin"))
	}
}
