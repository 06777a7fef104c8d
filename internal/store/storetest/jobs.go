package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// newJob is a minimal valid job whose id sorts by created.
func newJob(tenant, packageID, product string, created time.Time) ota.Job {
	return ota.Job{
		ID: ota.NewID(created), TenantID: tenant, PackageID: packageID, ProductKey: product, Module: ota.DefaultModule,
		Name: "job", Type: ota.JobUpgrade, Selection: ota.SelectStatic, Target: ota.Target{All: true},
		MaxConcurrency: ota.DefaultMaxConcurrency, TimeoutSeconds: ota.DefaultTimeoutSeconds, Overwrite: ota.OverwriteKeep,
		NeedPush: true, State: ota.JobPlanned, CreatedAt: created, UpdatedAt: created,
	}
}

func mustJob(t *testing.T, s store.Store, j ota.Job) ota.Job {
	t.Helper()
	mustOK(t, s.CreateJob(t.Context(), j), "CreateJob "+j.ID)
	return j
}

func jobIDs(js []ota.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID
	}
	return out
}

func testJobCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	full := ota.Job{
		ID: ota.NewID(base), TenantID: "acme", PackageID: ota.NewID(base.Add(-time.Hour)), ProductKey: "pk1", Module: "mcu",
		Name: "Rollout 第一波 ✓", Description: "two\nlines", Type: ota.JobUpgrade, Selection: ota.SelectDynamic,
		Target: ota.Target{Groups: []string{"g1", "g2"}, GrayPercent: 12.345, SourceVersions: []string{"1.0", "1.1"}},
		Schedule: ota.Schedule{
			Start: at(time.Hour + 250*time.Millisecond), Finish: at(48*time.Hour + 750*time.Millisecond),
			Window: &ota.DailyWindow{FromMinute: 22 * 60, ToMinute: 6 * 60, UTCOffsetMinutes: 480},
		},
		MaxConcurrency: 1234, MaxPerMinute: 600, Retry: ota.Retry{Count: 3, Interval: 90 * time.Minute},
		TimeoutSeconds: 3600, NeedPush: true, NeedConfirm: true, Overwrite: ota.OverwriteReplace, AllowDeviceRequest: true,
		AllowDowngrade: true, TimeoutFrom: ota.TimeoutFromInProgress, PackageKind: ota.KindModule,
		Abort:   ota.Abort{FailurePercent: 7.5, MinFinished: 40},
		Tags:    []ota.Tag{{Key: "wave", Value: "1"}, {Key: "团队", Value: "固件"}},
		ExtInfo: `{"k":"v"}`, Space: "space-7",
		LocalNames: map[string]string{"en_US": "Rollout, first wave ✓", "zh_CN": "第一波"},
		State:      ota.JobRunning, StateReason: "started by operator", Materialized: true, MaterializeCursor: "dev-0999",
		CreatedAt: at(1 * time.Millisecond), UpdatedAt: at(2 * time.Millisecond),
		StartedAt: at(3 * time.Millisecond), FinishedAt: at(4 * time.Millisecond),
	}
	mustOK(t, s.CreateJob(ctx, full), "CreateJob")
	got, err := s.GetJob(ctx, "acme", full.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, full, got, "job")
	if got.Target.GrayPercent != 12.345 {
		t.Fatalf("GrayPercent = %v, want exactly 12.345", got.Target.GrayPercent)
	}

	// A minimal job: zero times stay zero, no window, device list target.
	min := newJob("acme", "pkg", "pk1", at(time.Second))
	min.Target = ota.Target{Devices: []string{"d1", "d2", "d3"}}
	min.Type = ota.JobVerify
	min.NeedPush = false
	min.Retry = ota.Retry{}
	mustJob(t, s, min)
	got, err = s.GetJob(ctx, "acme", min.ID)
	mustOK(t, err, "GetJob minimal")
	wantEqual(t, min, got, "minimal job")
	if !got.Schedule.Start.IsZero() || !got.Schedule.Finish.IsZero() || !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() {
		t.Fatalf("zero times came back non-zero: %+v %v %v", got.Schedule, got.StartedAt, got.FinishedAt)
	}
	if got.Schedule.Window != nil {
		t.Fatalf("no window came back as %+v", *got.Schedule.Window)
	}

	_, err = s.GetJob(ctx, "globex", full.ID)
	wantCode(t, err, ota.CodeNotFound, "GetJob for another tenant")
	_, err = s.GetJob(ctx, "acme", "ffffffffffffffffffffffff")
	wantCode(t, err, ota.CodeNotFound, "GetJob of a missing id")
	wantCode(t, s.CreateJob(ctx, full), ota.CodeConflict, "CreateJob with an existing id")
}

func testJobList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var js []ota.Job // oldest first
	localNames := map[int]map[string]string{
		0: {"zh_CN": "第一波"},
		2: {"en_US": "Second wave", "zh_CN": "第二波"},
		4: {"en_US": "Fourth wave"},
	}
	add := func(pkg, product, module string, typ ota.JobType, sel ota.Selection, state ota.JobState) {
		j := newJob("acme", pkg, product, at(time.Duration(len(js))*time.Second))
		j.Module, j.Type, j.Selection, j.State = module, typ, sel, state
		j.Name = fmt.Sprintf("%s wave %d", pkg, len(js))
		j.LocalNames = localNames[len(js)]
		j.PackageKind = ota.KindFirmware
		if module != "default" {
			j.PackageKind = ota.KindModule
		}
		js = append(js, mustJob(t, s, j))
	}
	add("pA", "pk1", "default", ota.JobUpgrade, ota.SelectStatic, ota.JobRunning)  // 0
	add("pA", "pk1", "default", ota.JobVerify, ota.SelectStatic, ota.JobCompleted) // 1
	add("pB", "pk1", "mcu", ota.JobUpgrade, ota.SelectDynamic, ota.JobRunning)     // 2
	add("pC", "pk2", "default", ota.JobUpgrade, ota.SelectStatic, ota.JobPaused)   // 3
	add("pB", "pk1", "mcu", ota.JobUpgrade, ota.SelectStatic, ota.JobCanceled)     // 4
	add("pA", "pk1", "default", ota.JobUpgrade, ota.SelectDynamic, ota.JobPlanned) // 5
	mustJob(t, s, newJob("globex", "pA", "pk1", at(time.Hour)))
	// Tasks of device pk1/d1 in jobs 0 and 4 (ended ones count too), and of
	// a device of the same name on pk2 in job 3.
	mustInsert(t, s, newTask(js[0], "d1", ota.TaskSucceeded), newTask(js[4], "d1", ota.TaskCanceled), newTask(js[3], "d1", ota.TaskQueued),
		newTask(js[0], "d2", ota.TaskQueued))

	ids := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			out[i] = js[j].ID
		}
		return out
	}
	acme := func(f store.JobFilter) store.JobFilter { f.TenantID = "acme"; return f }
	cases := []struct {
		name string
		f    store.JobFilter
		p    store.Page
		want []string
		tot  int64
	}{
		{"all, newest first", acme(store.JobFilter{}), store.Page{}, ids(5, 4, 3, 2, 1, 0), 6},
		{"limit offset", acme(store.JobFilter{}), store.Page{Limit: 2, Offset: 1}, ids(4, 3), 6},
		{"before id", acme(store.JobFilter{}), store.Page{BeforeID: js[2].ID}, ids(1, 0), 6},
		{"before id limit", acme(store.JobFilter{}), store.Page{BeforeID: js[5].ID, Limit: 3}, ids(4, 3, 2), 6},
		{"package", acme(store.JobFilter{PackageID: "pA"}), store.Page{}, ids(5, 1, 0), 3},
		{"product", acme(store.JobFilter{ProductKey: "pk2"}), store.Page{}, ids(3), 1},
		{"module", acme(store.JobFilter{Module: "mcu"}), store.Page{}, ids(4, 2), 2},
		{"type", acme(store.JobFilter{Type: ota.JobVerify}), store.Page{}, ids(1), 1},
		{"selection", acme(store.JobFilter{Selection: ota.SelectDynamic}), store.Page{}, ids(5, 2), 2},
		{"package kind", acme(store.JobFilter{PackageKind: ota.KindModule}), store.Page{}, ids(4, 2), 2},
		{"package kind and type", acme(store.JobFilter{PackageKind: ota.KindFirmware, Type: ota.JobUpgrade}), store.Page{}, ids(5, 3, 0), 3},
		{"one state", acme(store.JobFilter{States: []ota.JobState{ota.JobRunning}}), store.Page{}, ids(2, 0), 2},
		{"states", acme(store.JobFilter{States: []ota.JobState{ota.JobPaused, ota.JobPlanned, ota.JobCanceled}}), store.Page{}, ids(5, 4, 3), 3},
		{"package and state", acme(store.JobFilter{PackageID: "pA", States: []ota.JobState{ota.JobRunning, ota.JobPlanned}}), store.Page{}, ids(5, 0), 2},
		{"other tenant", store.JobFilter{TenantID: "initech"}, store.Page{}, nil, 0},
		{"device", acme(store.JobFilter{Device: &ota.DeviceRef{ProductKey: "pk1", Name: "d1"}}), store.Page{}, ids(4, 0), 2},
		{"device and package", acme(store.JobFilter{PackageID: "pA", Device: &ota.DeviceRef{ProductKey: "pk1", Name: "d1"}}), store.Page{}, ids(0), 1},
		{"device paged", acme(store.JobFilter{Device: &ota.DeviceRef{ProductKey: "pk1", Name: "d1"}}), store.Page{Limit: 1, Offset: 1}, ids(0), 2},
		{"device without tasks", acme(store.JobFilter{Device: &ota.DeviceRef{ProductKey: "pk1", Name: "d9"}}), store.Page{}, nil, 0},
		{"name contains", acme(store.JobFilter{NameContains: "pB wave"}), store.Page{}, ids(4, 2), 2},
		{"name contains is literal", acme(store.JobFilter{NameContains: "%"}), store.Page{}, nil, 0},
		{"name contains, case-sensitive", acme(store.JobFilter{NameContains: "PB"}), store.Page{}, nil, 0},
		{"name contains in a locale", acme(store.JobFilter{NameLocale: "en_US", NameContains: "wave"}), store.Page{}, ids(4, 2), 2},
		{"name contains in a locale paged", acme(store.JobFilter{NameLocale: "en_US", NameContains: "wave"}), store.Page{Limit: 1}, ids(4), 2},
		{"name contains in another locale", acme(store.JobFilter{NameLocale: "zh_CN", NameContains: "波"}), store.Page{}, ids(2, 0), 2},
		{"name contains in a locale, and state", acme(store.JobFilter{NameLocale: "zh_CN", NameContains: "波", States: []ota.JobState{ota.JobRunning}}), store.Page{}, ids(2, 0), 2},
		{"name contains in a locale, not the default name", acme(store.JobFilter{NameLocale: "en_US", NameContains: "pB"}), store.Page{}, nil, 0},
		{"name contains in a locale is literal", acme(store.JobFilter{NameLocale: "en_US", NameContains: "%"}), store.Page{}, nil, 0},
		{"name contains in a locale no job has", acme(store.JobFilter{NameLocale: "fr_FR", NameContains: "wave"}), store.Page{}, nil, 0},
		{"default name contains ignores local names", acme(store.JobFilter{NameContains: "Second"}), store.Page{}, nil, 0},
		{"a locale alone does not filter", acme(store.JobFilter{NameLocale: "en_US"}), store.Page{}, ids(5, 4, 3, 2, 1, 0), 6},
	}
	for _, c := range cases {
		got, total, err := s.ListJobs(ctx, c.f, c.p, true)
		mustOK(t, err, "ListJobs "+c.name)
		wantEqual(t, c.want, jobIDs(got), c.name)
		wantTotal(t, total, c.tot, c.name)
		uncounted, zero, err := s.ListJobs(ctx, c.f, c.p, false)
		mustOK(t, err, "ListJobs without the count "+c.name)
		wantEqual(t, c.want, jobIDs(uncounted), c.name+" without the count")
		wantTotal(t, zero, 0, c.name+" without the count")
	}
	got, _, err := s.ListJobs(ctx, acme(store.JobFilter{ProductKey: "pk2"}), store.Page{}, false)
	mustOK(t, err, "ListJobs pk2")
	wantEqual(t, []ota.Job{js[3]}, got, "listed job")
}

func testJobUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := newJob("acme", "pkg", "pk1", base)
	j.Name = "original name"
	mustJob(t, s, j)

	upd := j
	upd.State = ota.JobRunning
	upd.StateReason = "go"
	upd.Materialized, upd.MaterializeCursor = true, "dev-42"
	upd.UpdatedAt, upd.StartedAt = at(time.Minute+1*time.Millisecond), at(time.Minute)
	mustOK(t, s.UpdateJob(ctx, upd, ota.JobPlanned), "UpdateJob planned→running")
	got, err := s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, upd, got, "updated job")

	// The stored state is running now: expecting planned fails and changes nothing.
	stale := upd
	stale.State, stale.StateReason = ota.JobCanceled, "stale writer"
	wantCode(t, s.UpdateJob(ctx, stale, ota.JobPlanned), ota.CodeConflict, "UpdateJob with a stale expected state")
	got, err = s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, upd, got, "job after the rejected update")

	done := upd
	done.State, done.StateReason = ota.JobCompleted, "all tasks finished"
	done.UpdatedAt, done.FinishedAt = at(2*time.Hour), at(2*time.Hour+5*time.Millisecond)
	mustOK(t, s.UpdateJob(ctx, done, ota.JobRunning), "UpdateJob running→completed")
	got, err = s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, done, got, "completed job")

	missing := done
	missing.ID = "ffffffffffffffffffffffff"
	wantCode(t, s.UpdateJob(ctx, missing, ota.JobCompleted), ota.CodeNotFound, "UpdateJob of a missing job")
	other := done
	other.TenantID = "globex"
	wantCode(t, s.UpdateJob(ctx, other, ota.JobCompleted), ota.CodeNotFound, "UpdateJob for another tenant")
}

func testJobDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	kept := mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Second)))
	n, err := s.InsertTasks(ctx, []ota.Task{
		newTask(gone, "d1", ota.TaskQueued), newTask(gone, "d2", ota.TaskSucceeded), newTask(kept, "d3", ota.TaskQueued),
	})
	mustOK(t, err, "InsertTasks")
	if n != 3 {
		t.Fatalf("InsertTasks = %d, want 3", n)
	}
	goneTasks := listAll(t, s, store.TaskFilter{JobID: gone.ID})

	wantCode(t, s.DeleteJob(ctx, "globex", gone.ID), ota.CodeNotFound, "DeleteJob for another tenant")
	mustOK(t, s.DeleteJob(ctx, "acme", gone.ID), "DeleteJob")
	_, err = s.GetJob(ctx, "acme", gone.ID)
	wantCode(t, err, ota.CodeNotFound, "GetJob after delete")
	wantCode(t, s.DeleteJob(ctx, "acme", gone.ID), ota.CodeNotFound, "DeleteJob twice")
	for _, task := range goneTasks {
		_, err := s.GetTask(ctx, task.ID)
		wantCode(t, err, ota.CodeNotFound, "GetTask of a deleted job's task")
	}
	if left := listAll(t, s, store.TaskFilter{JobID: gone.ID}); len(left) != 0 {
		t.Fatalf("deleted job still has tasks %v", left)
	}
	counts, err := s.CountTasks(ctx, gone.ID)
	mustOK(t, err, "CountTasks")
	if counts.Total() != 0 {
		t.Fatalf("CountTasks of a deleted job = %v", counts)
	}
	if left := listAll(t, s, store.TaskFilter{JobID: kept.ID}); len(left) != 1 {
		t.Fatalf("the other job has %d tasks, want 1", len(left))
	}
	// d1's active task went with the job: d1 may get a new one.
	n, err = s.InsertTasks(ctx, []ota.Task{newTask(kept, "d1", ota.TaskQueued)})
	mustOK(t, err, "InsertTasks after delete")
	if n != 1 {
		t.Fatalf("InsertTasks for a device whose task was deleted = %d, want 1", n)
	}
}

// testJobWithTasks: a job and its first tasks are stored together; a task
// whose device's module another job holds is stored skipped, with why.
func testJobWithTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	other := mustJob(t, s, newJob("acme", "pA", "pk1", at(0)))
	mustInsert(t, s, newTask(other, "busy", ota.TaskQueued))

	pkg := mustPackage(t, s, newPackage("acme", "pk1", "fw-with-tasks", "2.0", at(0)))
	j := newJob("acme", pkg.ID, "pk1", at(time.Second))
	j.Materialized = true
	tasks := []ota.Task{newTask(j, "free", ota.TaskQueued), newTask(j, "busy", ota.TaskQueued),
		newTask(j, "offline", ota.TaskWaiting), newTask(j, "ghost", ota.TaskSkipped)}
	tasks[3].Reason = ota.ReasonNotFound
	mustOK(t, s.CreateJobWithTasks(ctx, j, tasks), "CreateJobWithTasks")
	got, err := s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, j, got, "job")
	states := map[string]string{}
	for _, task := range listAll(t, s, store.TaskFilter{JobID: j.ID}) {
		states[task.DeviceName] = string(task.State) + "/" + string(task.Reason)
	}
	wantEqual(t, map[string]string{"free": "queued/", "busy": "skipped/busy_in_other_job", "offline": "waiting/",
		"ghost": "skipped/not_found"}, states, "tasks")
	// The waiting task holds its module like any active one.
	if n, err := s.InsertTasks(ctx, []ota.Task{newTask(other, "offline", ota.TaskQueued)}); err != nil || n != 0 {
		t.Fatalf("a second active task next to a waiting one: %d, %v", n, err)
	}

	// A duplicate job id writes nothing, tasks included.
	dup := newTask(j, "another", ota.TaskQueued)
	wantCode(t, s.CreateJobWithTasks(ctx, j, []ota.Task{dup}), ota.CodeConflict, "CreateJobWithTasks duplicate")
	if got := listAll(t, s, store.TaskFilter{Devices: []string{"another"}}); len(got) != 0 {
		t.Fatalf("a refused job left tasks %v", got)
	}
}

// testMaterializeBatch: a batch and the job's cursor are one transaction
// that checks the expected cursor and state, so a batch is stored once.
func testMaterializeBatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	other := mustJob(t, s, newJob("acme", "pA", "pk1", at(0)))
	mustInsert(t, s, newTask(other, "d2", ota.TaskNotified))
	j := newJob("acme", "pB", "pk1", at(time.Second))
	j.State = ota.JobRunning
	mustJob(t, s, j)

	next := j
	next.MaterializeCursor, next.UpdatedAt = "d2", at(2*time.Second)
	batch := []ota.Task{newTask(j, "d1", ota.TaskQueued), newTask(j, "d2", ota.TaskQueued)}
	mustOK(t, s.MaterializeBatch(ctx, next, "", batch), "MaterializeBatch")
	// The same batch again (a second replica, a retry after a crash): refused whole.
	wantCode(t, s.MaterializeBatch(ctx, next, "", batch), ota.CodeConflict, "MaterializeBatch at a stale cursor")
	got := listAll(t, s, store.TaskFilter{JobID: j.ID})
	if len(got) != 2 || got[0].State != ota.TaskQueued || got[1].State != ota.TaskSkipped || got[1].Reason != ota.ReasonBusyInOtherJob {
		t.Fatalf("tasks after one batch: %+v", got)
	}
	stored, err := s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	if stored.MaterializeCursor != "d2" || stored.Materialized || !stored.UpdatedAt.Equal(at(2*time.Second)) {
		t.Fatalf("job after one batch: cursor %q materialized %v updated %v", stored.MaterializeCursor, stored.Materialized, stored.UpdatedAt)
	}
	// A batch without a busy device (the stores store it whole, without
	// looking the rows up again): every task as given, in order.
	free := next
	free.MaterializeCursor, free.UpdatedAt = "d4", at(2500*time.Millisecond)
	mustOK(t, s.MaterializeBatch(ctx, free, "d2", []ota.Task{newTask(j, "d3", ota.TaskQueued), newTask(j, "d4", ota.TaskWaiting)}),
		"MaterializeBatch without busy devices")
	got = listAll(t, s, store.TaskFilter{JobID: j.ID})
	if len(got) != 4 || got[2].DeviceName != "d3" || got[2].State != ota.TaskQueued || got[3].DeviceName != "d4" ||
		got[3].State != ota.TaskWaiting || got[2].ID >= got[3].ID {
		t.Fatalf("tasks after a batch without busy devices: %+v", got)
	}
	stored, err = s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	// A job that changed state meanwhile (canceled) takes no batch.
	stored.State, stored.UpdatedAt = ota.JobCanceled, at(3*time.Second)
	mustOK(t, s.UpdateJob(ctx, stored, ota.JobRunning), "UpdateJob cancel")
	last := free
	last.MaterializeCursor, last.Materialized = "d5", true
	wantCode(t, s.MaterializeBatch(ctx, last, "d4", []ota.Task{newTask(j, "d5", ota.TaskQueued)}), ota.CodeConflict,
		"MaterializeBatch on a canceled job")
	if n := len(listAll(t, s, store.TaskFilter{JobID: j.ID})); n != 4 {
		t.Fatalf("a canceled job got a batch: %d tasks", n)
	}
}

// testJobNeedsPackage: a job is created only on a package that exists; a
// package is deleted only when no unfinished job uses it; a verify job
// takes its package to verifying in its own transaction, once.
func testJobNeedsPackage(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone := newJob("acme", "no-such-package", "pk1", at(0))
	wantCode(t, s.CreateJobWithTasks(ctx, gone, nil), ota.CodeNotFound, "job on a missing package")
	if _, err := s.GetJob(ctx, "acme", gone.ID); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("the refused job exists: %v", err)
	}

	pkg := newPackage("acme", "pk1", "fw-verify", "2.0", at(0))
	pkg.NeedVerify, pkg.VerifyStatus = true, ota.VerifyPending
	mustPackage(t, s, pkg)
	v := newJob("acme", pkg.ID, "pk1", at(time.Second))
	v.Type, v.State = ota.JobVerify, ota.JobRunning
	mustOK(t, s.CreateJobWithTasks(ctx, v, nil), "verify job")
	got, err := s.GetPackage(ctx, "acme", pkg.ID)
	mustOK(t, err, "GetPackage")
	if got.VerifyStatus != ota.VerifyInProgress {
		t.Fatalf("package after its verify job: %s", got.VerifyStatus)
	}
	v2 := newJob("acme", pkg.ID, "pk1", at(2*time.Second))
	v2.Type = ota.JobVerify
	wantCode(t, s.CreateJobWithTasks(ctx, v2, nil), ota.CodeConflict, "second verify job")

	wantCode(t, s.DeletePackage(ctx, "acme", pkg.ID), ota.CodeConflict, "DeletePackage with a running job")
	v.State, v.UpdatedAt = ota.JobCanceled, at(3*time.Second)
	mustOK(t, s.UpdateJob(ctx, v, ota.JobRunning), "cancel the job")
	mustOK(t, s.DeletePackage(ctx, "acme", pkg.ID), "DeletePackage once its job ended")
}

// testJobSettings: an operator's settings change on a live job, never on an
// ended one; state and materialization fields stay.
func testJobSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := newJob("acme", "pA", "pk1", at(0))
	j.State, j.MaterializeCursor = ota.JobRunning, "dev-7"
	mustJob(t, s, j)
	want := j
	want.Description, want.MaxConcurrency, want.MaxPerMinute, want.TimeoutSeconds = "new", 7, 60, 900
	want.Tags = []ota.Tag{{Key: "k", Value: "v"}}
	want.Target.SourceVersions = []string{"1.0", "1.1"}
	want.UpdatedAt = at(time.Minute)
	stale := want
	stale.State, stale.MaterializeCursor = ota.JobCompleted, "other" // not written by this call
	mustOK(t, s.UpdateJobSettings(ctx, stale), "UpdateJobSettings")
	got, err := s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	wantEqual(t, want, got, "job after UpdateJobSettings")

	got.State, got.UpdatedAt = ota.JobCanceled, at(2*time.Minute)
	mustOK(t, s.UpdateJob(ctx, got, ota.JobRunning), "cancel")
	wantCode(t, s.UpdateJobSettings(ctx, want), ota.CodeConflict, "UpdateJobSettings on an ended job")
	missing := newJob("acme", "pA", "pk1", at(time.Hour))
	wantCode(t, s.UpdateJobSettings(ctx, missing), ota.CodeNotFound, "UpdateJobSettings on a missing job")
}

// testJobFilters: resource space, outcome and materialization, in SQL.
func testJobFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	var js []ota.Job
	add := func(space string, state ota.JobState, outcome ota.JobOutcome, materialized bool) {
		j := newJob("acme", "pA", "pk1", at(time.Duration(len(js))*time.Second))
		j.Space, j.State, j.Outcome, j.Materialized = space, state, outcome, materialized
		js = append(js, mustJob(t, s, j))
	}
	add("app1", ota.JobRunning, ota.OutcomeNone, false)       // 0
	add("app1", ota.JobRunning, ota.OutcomeNone, true)        // 1
	add("app2", ota.JobCompleted, ota.OutcomeSucceeded, true) // 2
	add("app1", ota.JobCompleted, ota.OutcomePartial, true)   // 3
	add("app1", ota.JobCanceled, ota.OutcomeCanceled, true)   // 4
	ids := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			out[i] = js[j].ID
		}
		return out
	}
	yes, no := true, false
	for _, c := range []struct {
		name string
		f    store.JobFilter
		want []string
	}{
		{"space", store.JobFilter{Space: "app1"}, ids(4, 3, 1, 0)},
		{"outcome", store.JobFilter{Outcome: ota.OutcomePartial}, ids(3)},
		{"materialized", store.JobFilter{States: []ota.JobState{ota.JobRunning}, Materialized: &yes}, ids(1)},
		{"initializing", store.JobFilter{Materialized: &no}, ids(0)},
		{"space and outcome", store.JobFilter{Space: "app2", Outcome: ota.OutcomeSucceeded}, ids(2)},
	} {
		c.f.TenantID = "acme"
		got, total, err := s.ListJobs(ctx, c.f, store.Page{}, true)
		mustOK(t, err, "ListJobs "+c.name)
		wantEqual(t, c.want, jobIDs(got), c.name)
		wantTotal(t, total, int64(len(c.want)), c.name)
	}
	// UpdateJob writes the outcome (the engine sets it when the job ends).
	j := js[1]
	j.State, j.Outcome, j.UpdatedAt = ota.JobCompleted, ota.OutcomeFailed, at(time.Hour)
	mustOK(t, s.UpdateJob(ctx, j, ota.JobRunning), "UpdateJob outcome")
	got, err := s.GetJob(ctx, "acme", j.ID)
	mustOK(t, err, "GetJob")
	if got.Outcome != ota.OutcomeFailed {
		t.Fatalf("outcome %q after UpdateJob", got.Outcome)
	}
}
