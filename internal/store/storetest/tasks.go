package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// newTask is a task of job for one device in the given state.
func newTask(j ota.Job, device string, state ota.TaskState) ota.Task {
	t := ota.Task{
		JobID: j.ID, TenantID: j.TenantID, ProductKey: j.ProductKey, DeviceName: device, Module: j.Module,
		State: state, FromVersion: "1.0", ToVersion: "2.0", CreatedAt: base, UpdatedAt: base,
	}
	if state.Terminal() {
		t.FinishedAt = base
	}
	return t
}

func mustInsert(t *testing.T, s store.Store, tasks ...ota.Task) {
	t.Helper()
	n, err := s.InsertTasks(t.Context(), tasks)
	mustOK(t, err, "InsertTasks")
	if n != int64(len(tasks)) {
		t.Fatalf("InsertTasks of %d tasks inserted %d", len(tasks), n)
	}
}

// listAll lists every task f selects, in id order.
func listAll(t *testing.T, s store.Store, f store.TaskFilter) []ota.Task {
	t.Helper()
	ts, _, err := s.ListTasks(t.Context(), f, store.Page{Limit: 1_000_000}, false)
	mustOK(t, err, fmt.Sprintf("ListTasks(%+v)", f))
	return ts
}

func mustGetTask(t *testing.T, s store.Store, id int64) ota.Task {
	t.Helper()
	task, err := s.GetTask(t.Context(), id)
	mustOK(t, err, fmt.Sprintf("GetTask(%d)", id))
	return task
}

func taskIDs(ts []ota.Task) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// activeTasks returns the active tasks of one device module.
func activeTasks(t *testing.T, s store.Store, product, device, module string) []ota.Task {
	t.Helper()
	var out []ota.Task
	for _, task := range listAll(t, s, store.TaskFilter{ProductKey: product, Module: module, Devices: []string{device}}) {
		if task.State.Active() {
			out = append(out, task)
		}
	}
	return out
}

func testTaskInsertGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	full := ota.Task{
		ID: 987654, JobID: j.ID, TenantID: "acme", ProductKey: "pk1", DeviceName: "dev-ü-1", Module: ota.DefaultModule,
		State: ota.TaskInProgress, FromVersion: "1.0.0", ToVersion: "2.0.0", Progress: 42, Attempts: 2,
		Reason: ota.ReasonDownloadFailed, Detail: "retrying: 网络 timeout",
		NotifiedAt: at(time.Minute + 1*time.Millisecond), StartedAt: at(2*time.Minute + 2*time.Millisecond),
		NextAttemptAt: at(3*time.Minute + 3*time.Millisecond),
		CreatedAt:     at(4 * time.Millisecond), UpdatedAt: at(5 * time.Millisecond),
	}
	done := newTask(j, "dev-2", ota.TaskFailed)
	done.FinishedAt = at(time.Hour + 7*time.Millisecond)
	done.Reason = ota.ReasonNotFound
	queued := newTask(j, "dev-3", ota.TaskQueued)

	if n, err := s.InsertTasks(ctx, nil); err != nil || n != 0 {
		t.Fatalf("InsertTasks(nil) = %d, %v; want 0, nil", n, err)
	}
	mustInsert(t, s, full, done, queued)
	ts := listAll(t, s, store.TaskFilter{JobID: j.ID})
	if len(ts) != 3 {
		t.Fatalf("job has %d tasks, want 3", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if ts[i].ID <= ts[i-1].ID {
			t.Fatalf("task ids not increasing in insertion order: %v", taskIDs(ts))
		}
	}
	for i, want := range []ota.Task{full, done, queued} {
		want.ID = ts[i].ID
		wantEqual(t, want, ts[i], fmt.Sprintf("listed task %d", i))
		wantEqual(t, want, mustGetTask(t, s, ts[i].ID), fmt.Sprintf("task %d", i))
	}
	_, err := s.GetTask(ctx, ts[2].ID+1000)
	wantCode(t, err, ota.CodeNotFound, "GetTask of a missing id")

	// A large batch of one job (identical but for device and version, as the
	// engine materializes): ids follow the input order, not the device
	// names, and a device listed twice keeps its first task.
	big := mustJob(t, s, newJob("acme", "pkg", "pk9", at(time.Minute)))
	var batch []ota.Task
	for i := range 600 {
		task := newTask(big, fmt.Sprintf("b%03d", (i*7919)%600), ota.TaskQueued)
		task.FromVersion = fmt.Sprintf("v%d", i)
		batch = append(batch, task)
	}
	dup := batch[10]
	dup.FromVersion = "duplicate"
	batch = append(batch[:400], append([]ota.Task{dup}, batch[400:]...)...)
	n, err := s.InsertTasks(ctx, batch)
	mustOK(t, err, "InsertTasks of 601 tasks")
	if n != 600 {
		t.Fatalf("InsertTasks of 600 tasks and a duplicate inserted %d, want 600", n)
	}
	stored := listAll(t, s, store.TaskFilter{JobID: big.ID})
	want := append(append([]ota.Task{}, batch[:400]...), batch[401:]...)
	if len(stored) != len(want) {
		t.Fatalf("big job has %d tasks, want %d", len(stored), len(want))
	}
	for i := range want {
		if stored[i].DeviceName != want[i].DeviceName || stored[i].FromVersion != want[i].FromVersion {
			t.Fatalf("task %d in id order is %s/%s, want %s/%s (the input order)", i,
				stored[i].DeviceName, stored[i].FromVersion, want[i].DeviceName, want[i].FromVersion)
		}
	}

	// Ids keep increasing across inserts.
	mustInsert(t, s, newTask(j, "dev-4", ota.TaskQueued))
	last := listAll(t, s, store.TaskFilter{JobID: j.ID, Devices: []string{"dev-4"}})
	if len(last) != 1 || last[0].ID <= ts[2].ID {
		t.Fatalf("task inserted later has id %v, want > %d", taskIDs(last), ts[2].ID)
	}
}

func testTaskOneActive(t *testing.T, s store.Store) {
	ctx := t.Context()
	j1 := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	j2 := mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Second)))
	j2mcu := newJob("acme", "pkg", "pk1", at(2*time.Second))
	j2mcu.Module = "mcu"
	mustJob(t, s, j2mcu)
	otherProduct := mustJob(t, s, newJob("acme", "pkg", "pk2", at(3*time.Second)))

	insert := func(want int64, tasks ...ota.Task) {
		t.Helper()
		n, err := s.InsertTasks(ctx, tasks)
		mustOK(t, err, "InsertTasks")
		if n != want {
			t.Fatalf("InsertTasks of %d tasks inserted %d, want %d", len(tasks), n, want)
		}
	}
	insert(1, newTask(j1, "d1", ota.TaskQueued))
	// Every active state holds the module.
	for _, st := range []ota.TaskState{ota.TaskConfirm, ota.TaskQueued, ota.TaskNotified, ota.TaskInProgress, ota.TaskRetryWait} {
		insert(0, newTask(j2, "d1", st))
	}
	insert(1, newTask(j2mcu, "d1", ota.TaskQueued))                                  // another module
	insert(1, newTask(otherProduct, "d1", ota.TaskQueued))                           // another product, same device name
	insert(1, newTask(j2, "d1", ota.TaskFailed))                                     // terminal tasks never conflict
	insert(1, newTask(j2, "d1", ota.TaskCanceled))                                   // …nor with each other
	insert(1, newTask(j2, "d2", ota.TaskQueued), newTask(j1, "d2", ota.TaskConfirm)) // within one batch: the first wins
	insert(2, newTask(j2, "d3", ota.TaskSucceeded), newTask(j1, "d3", ota.TaskQueued), newTask(j2, "d3", ota.TaskNotified))

	if a := activeTasks(t, s, "pk1", "d1", ota.DefaultModule); len(a) != 1 || a[0].JobID != j1.ID {
		t.Fatalf("active tasks of d1 = %+v, want only job 1's", a)
	}
	if a := activeTasks(t, s, "pk1", "d2", ota.DefaultModule); len(a) != 1 || a[0].JobID != j2.ID || a[0].State != ota.TaskQueued {
		t.Fatalf("active tasks of d2 = %+v, want the first of the batch", a)
	}
	if a := activeTasks(t, s, "pk1", "d3", ota.DefaultModule); len(a) != 1 || a[0].JobID != j1.ID {
		t.Fatalf("active tasks of d3 = %+v, want job 1's", a)
	}

	// Once the active task is over, the module is free.
	held := activeTasks(t, s, "pk1", "d1", ota.DefaultModule)[0]
	doneTask := held
	doneTask.State, doneTask.FinishedAt, doneTask.UpdatedAt = ota.TaskSucceeded, at(time.Hour), at(time.Hour)
	mustOK(t, s.UpdateTask(ctx, doneTask, ota.TaskQueued), "UpdateTask to succeeded")
	insert(1, newTask(j2, "d1", ota.TaskQueued))
	if a := activeTasks(t, s, "pk1", "d1", ota.DefaultModule); len(a) != 1 || a[0].JobID != j2.ID {
		t.Fatalf("active tasks of d1 after the first finished = %+v, want job 2's", a)
	}
}

func testTaskInsertConcurrent(t *testing.T, s store.Store) {
	const writers, devices, batch = 8, 200, 25
	jobs := make([]ota.Job, writers)
	for i := range jobs {
		jobs[i] = mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Duration(i)*time.Second)))
	}
	var wg sync.WaitGroup
	inserted := make([]int64, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			order := rng.Perm(devices)
			for start := 0; start < devices; start += batch {
				var tasks []ota.Task
				for _, d := range order[start:min(start+batch, devices)] {
					tasks = append(tasks, newTask(jobs[w], fmt.Sprintf("dev%03d", d), ota.TaskQueued))
				}
				n, err := s.InsertTasks(t.Context(), tasks)
				if err != nil {
					errs[w] = err
					return
				}
				inserted[w] += n
			}
		})
	}
	wg.Wait()
	var sum int64
	for w := range writers {
		mustOK(t, errs[w], fmt.Sprintf("InsertTasks in writer %d", w))
		sum += inserted[w]
	}
	if sum != devices {
		t.Fatalf("concurrent writers inserted %d tasks in all (%v), want %d: one per device", sum, inserted, devices)
	}
	all := listAll(t, s, store.TaskFilter{TenantID: "acme"})
	if len(all) != devices {
		t.Fatalf("store holds %d tasks, want %d", len(all), devices)
	}
	seen := map[string]int64{}
	for _, task := range all {
		if prev, dup := seen[task.DeviceName]; dup {
			t.Fatalf("device %s has two active tasks: %d and %d", task.DeviceName, prev, task.ID)
		}
		seen[task.DeviceName] = task.ID
	}
}

// taskSet inserts named tasks in order and returns them with ids by name.
func taskSet(t *testing.T, s store.Store, names []string, tasks []ota.Task) map[string]ota.Task {
	t.Helper()
	mustInsert(t, s, tasks...)
	all := listAll(t, s, store.TaskFilter{})
	if len(all) != len(tasks) {
		t.Fatalf("store holds %d tasks, want %d", len(all), len(tasks))
	}
	out := map[string]ota.Task{}
	for i, name := range names {
		out[name] = all[i]
	}
	return out
}

func testTaskListFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	jA := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	jB := newJob("acme", "pkg", "pk2", at(time.Second))
	jB.Module = "mcu"
	mustJob(t, s, jB)
	jC := mustJob(t, s, newJob("globex", "pkg", "pk3", at(2*time.Second)))

	mk := func(j ota.Job, dev string, st ota.TaskState, edit func(*ota.Task)) ota.Task {
		task := newTask(j, dev, st)
		if edit != nil {
			edit(&task)
		}
		return task
	}
	names := []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "b0", "b1", "c0"}
	byName := taskSet(t, s, names, []ota.Task{
		mk(jA, "d0", ota.TaskQueued, nil),
		mk(jA, "d1", ota.TaskNotified, func(x *ota.Task) { x.NotifiedAt = at(10 * time.Minute) }),
		mk(jA, "d2", ota.TaskInProgress, func(x *ota.Task) { x.NotifiedAt, x.StartedAt = at(5*time.Minute), at(6*time.Minute) }),
		mk(jA, "d3", ota.TaskInProgress, func(x *ota.Task) { x.NotifiedAt, x.StartedAt = at(20*time.Minute), at(21*time.Minute) }),
		mk(jA, "d4", ota.TaskRetryWait, func(x *ota.Task) { x.NextAttemptAt = at(30 * time.Minute) }),
		mk(jA, "d5", ota.TaskRetryWait, func(x *ota.Task) { x.NextAttemptAt = at(40 * time.Minute) }),
		mk(jA, "d6", ota.TaskSucceeded, nil),
		mk(jA, "d7", ota.TaskFailed, nil),
		mk(jB, "d0", ota.TaskQueued, nil),
		mk(jB, "d1", ota.TaskConfirm, nil),
		mk(jC, "d0", ota.TaskQueued, nil),
	})
	id := func(n string) int64 { return byName[n].ID }
	ids := func(ns ...string) []int64 {
		out := make([]int64, len(ns))
		for i, n := range ns {
			out[i] = id(n)
		}
		return out
	}
	aAll := ids("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7")
	cases := []struct {
		name string
		f    store.TaskFilter
		p    store.Page
		want []int64
		tot  int64
	}{
		{"everything", store.TaskFilter{}, store.Page{}, ids(names...), 11},
		{"tenant", store.TaskFilter{TenantID: "acme"}, store.Page{}, ids("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "b0", "b1"), 10},
		{"job", store.TaskFilter{JobID: jA.ID}, store.Page{}, aAll, 8},
		{"product", store.TaskFilter{ProductKey: "pk2"}, store.Page{}, ids("b0", "b1"), 2},
		{"module", store.TaskFilter{Module: "mcu"}, store.Page{}, ids("b0", "b1"), 2},
		{"devices", store.TaskFilter{Devices: []string{"d1", "d0"}}, store.Page{}, ids("a0", "a1", "b0", "b1", "c0"), 5},
		{"devices in job", store.TaskFilter{JobID: jA.ID, Devices: []string{"d1", "d0", "d9"}}, store.Page{}, ids("a0", "a1"), 2},
		{"state", store.TaskFilter{States: []ota.TaskState{ota.TaskQueued}}, store.Page{}, ids("a0", "b0", "c0"), 3},
		{"states in job", store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskInProgress, ota.TaskRetryWait}}, store.Page{}, ids("a2", "a3", "a4", "a5"), 4},
		{"ids", store.TaskFilter{IDs: ids("c0", "a3", "b1")}, store.Page{}, ids("a3", "b1", "c0"), 3},
		{"ids and tenant", store.TaskFilter{TenantID: "acme", IDs: ids("c0", "a3")}, store.Page{}, ids("a3"), 1},
		{"notified before (strict)", store.TaskFilter{NotifiedBefore: at(10 * time.Minute)}, store.Page{}, ids("a2"), 1},
		{"notified before", store.TaskFilter{NotifiedBefore: at(10*time.Minute + time.Millisecond)}, store.Page{}, ids("a1", "a2"), 2},
		{"started before", store.TaskFilter{StartedBefore: at(21 * time.Minute)}, store.Page{}, ids("a2"), 1},
		{"started before, later", store.TaskFilter{StartedBefore: at(22 * time.Minute)}, store.Page{}, ids("a2", "a3"), 2},
		{"next attempt at or before", store.TaskFilter{NextAttemptBefore: at(30 * time.Minute)}, store.Page{}, ids("a4"), 1},
		{"next attempt before, none", store.TaskFilter{NextAttemptBefore: at(30*time.Minute - time.Millisecond)}, store.Page{}, nil, 0},
		{"next attempt and state", store.TaskFilter{States: []ota.TaskState{ota.TaskRetryWait}, NextAttemptBefore: at(time.Hour)}, store.Page{}, ids("a4", "a5"), 2},
		{"after id", store.TaskFilter{JobID: jA.ID, AfterID: id("a5")}, store.Page{}, ids("a6", "a7"), 8},
		{"filter limit", store.TaskFilter{JobID: jA.ID, Limit: 3}, store.Page{}, ids("a0", "a1", "a2"), 8},
		{"after id and limit", store.TaskFilter{JobID: jA.ID, AfterID: id("a2"), Limit: 2}, store.Page{}, ids("a3", "a4"), 8},
		{"page limit offset", store.TaskFilter{JobID: jA.ID}, store.Page{Limit: 2, Offset: 1}, ids("a1", "a2"), 8},
		{"filter limit and smaller page limit", store.TaskFilter{JobID: jA.ID, Limit: 3}, store.Page{Limit: 2}, ids("a0", "a1"), 8},
		{"nothing", store.TaskFilter{JobID: "nope"}, store.Page{}, nil, 0},
	}
	for _, c := range cases {
		got, total, err := s.ListTasks(ctx, c.f, c.p, true)
		mustOK(t, err, "ListTasks "+c.name)
		wantEqual(t, c.want, taskIDs(got), c.name)
		wantTotal(t, total, c.tot, c.name)
	}
	// Long lists (a job's 30 000 devices) must work as well as short ones.
	longIDs := ids(names...)
	longDevices := []string{"d1", "d7"}
	for i := range 100 {
		longIDs = append(longIDs, id("c0")+1000+int64(i))
		longDevices = append(longDevices, fmt.Sprintf("absent-%03d", i))
	}
	got, total, err := s.ListTasks(ctx, store.TaskFilter{IDs: longIDs}, store.Page{}, true)
	mustOK(t, err, "ListTasks with 111 ids")
	wantEqual(t, ids(names...), taskIDs(got), "long id list")
	wantTotal(t, total, 11, "long id list")
	got, total, err = s.ListTasks(ctx, store.TaskFilter{JobID: jA.ID, Devices: longDevices}, store.Page{}, true)
	mustOK(t, err, "ListTasks with 102 devices")
	wantEqual(t, ids("a1", "a7"), taskIDs(got), "long device list")
	wantTotal(t, total, 2, "long device list")

	got, total, err = s.ListTasks(ctx, store.TaskFilter{JobID: jA.ID, IDs: ids("a3")}, store.Page{}, false)
	mustOK(t, err, "ListTasks without count")
	wantTotal(t, total, -1, "ListTasks without count")
	wantEqual(t, []ota.Task{byName["a3"]}, got, "listed task")
	if !got[0].StartedAt.Equal(at(21 * time.Minute)) {
		t.Fatalf("listed task started at %v", got[0].StartedAt)
	}
}

func testTaskCount(t *testing.T, s store.Store) {
	ctx := t.Context()
	jA := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	jB := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	var tasks []ota.Task
	add := func(j ota.Job, st ota.TaskState, n int) {
		for range n {
			tasks = append(tasks, newTask(j, fmt.Sprintf("d%03d", len(tasks)), st))
		}
	}
	add(jA, ota.TaskQueued, 5)
	add(jA, ota.TaskNotified, 3)
	add(jA, ota.TaskInProgress, 2)
	add(jA, ota.TaskSucceeded, 7)
	add(jA, ota.TaskFailed, 1)
	add(jA, ota.TaskConfirm, 4)
	add(jB, ota.TaskQueued, 6)
	add(jB, ota.TaskCanceled, 2)
	mustInsert(t, s, tasks...)

	got, err := s.CountTasks(ctx, jA.ID)
	mustOK(t, err, "CountTasks")
	want := ota.TaskCounts{ota.TaskQueued: 5, ota.TaskNotified: 3, ota.TaskInProgress: 2, ota.TaskSucceeded: 7,
		ota.TaskFailed: 1, ota.TaskConfirm: 4}
	for _, st := range ota.TaskStates {
		if got[st] != want[st] {
			t.Fatalf("CountTasks(A)[%s] = %d, want %d (all: %v)", st, got[st], want[st], got)
		}
	}
	if got.Total() != 22 || got.Finished() != 8 {
		t.Fatalf("CountTasks(A) total %d finished %d, want 22 and 8", got.Total(), got.Finished())
	}
	got, err = s.CountTasks(ctx, jB.ID)
	mustOK(t, err, "CountTasks B")
	if got[ota.TaskQueued] != 6 || got[ota.TaskCanceled] != 2 || got.Total() != 8 {
		t.Fatalf("CountTasks(B) = %v", got)
	}
	got, err = s.CountTasks(ctx, "nope")
	mustOK(t, err, "CountTasks of an unknown job")
	if got.Total() != 0 {
		t.Fatalf("CountTasks of an unknown job = %v", got)
	}
}

func testTaskCountNotified(t *testing.T, s store.Store) {
	ctx := t.Context()
	jA := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	jB := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	notified := func(j ota.Job, dev string, st ota.TaskState, when time.Time) ota.Task {
		task := newTask(j, dev, st)
		task.NotifiedAt = when
		return task
	}
	mustInsert(t, s,
		notified(jA, "d1", ota.TaskNotified, at(5*time.Minute)),
		notified(jA, "d2", ota.TaskInProgress, at(10*time.Minute)),
		notified(jA, "d3", ota.TaskSucceeded, at(20*time.Minute)),
		newTask(jA, "d4", ota.TaskQueued),
		notified(jB, "d5", ota.TaskNotified, at(15*time.Minute)),
	)
	for _, c := range []struct {
		since time.Time
		want  int64
	}{
		{base, 3},
		{at(10 * time.Minute), 2}, // at or after
		{at(10*time.Minute + time.Millisecond), 1},
		{at(20*time.Minute + time.Millisecond), 0},
	} {
		n, err := s.CountNotifiedSince(ctx, jA.ID, c.since)
		mustOK(t, err, "CountNotifiedSince")
		if n != c.want {
			t.Fatalf("CountNotifiedSince(A, %v) = %d, want %d", c.since, n, c.want)
		}
	}
}

// twoQueuedTasks creates two jobs on pk1 and queues one task of the first
// for d1 (task) and one for d2 (other); the second job has none yet.
func twoQueuedTasks(t *testing.T, s store.Store) (j2 ota.Job, task, other ota.Task) {
	t.Helper()
	j1 := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	j2 = mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Second)))
	mustInsert(t, s, newTask(j1, "d1", ota.TaskQueued), newTask(j1, "d2", ota.TaskQueued))
	ts := listAll(t, s, store.TaskFilter{JobID: j1.ID})
	return j2, ts[0], ts[1]
}

func testTaskUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	j2, task, other := twoQueuedTasks(t, s)

	upd := task
	upd.State, upd.FromVersion, upd.Progress, upd.Attempts = ota.TaskInProgress, "1.0.1", 30, 1
	upd.Detail = "downloading"
	upd.NotifiedAt, upd.StartedAt, upd.UpdatedAt = at(time.Minute), at(2*time.Minute+3*time.Millisecond), at(2*time.Minute)
	mustOK(t, s.UpdateTask(ctx, upd, ota.TaskQueued), "UpdateTask queued→in_progress")
	wantEqual(t, upd, mustGetTask(t, s, task.ID), "updated task")
	wantEqual(t, other, mustGetTask(t, s, other.ID), "the other task")

	stale := upd
	stale.State, stale.Reason = ota.TaskCanceled, ota.ReasonCanceled
	wantCode(t, s.UpdateTask(ctx, stale, ota.TaskQueued), ota.CodeConflict, "UpdateTask with a stale expected state")
	wantEqual(t, upd, mustGetTask(t, s, task.ID), "task after the rejected update")

	// Writes that keep the state: progress alone, and a new notice time
	// (a backend may write only what changed; every field must land).
	progressed := upd
	progressed.Progress, progressed.Detail, progressed.UpdatedAt = 60, "verifying", at(3*time.Minute)
	mustOK(t, s.UpdateTask(ctx, progressed, ota.TaskInProgress), "UpdateTask progress only")
	wantEqual(t, progressed, mustGetTask(t, s, task.ID), "task after a progress update")
	renotified := progressed
	renotified.NotifiedAt, renotified.Attempts, renotified.UpdatedAt = at(4*time.Minute), 2, at(4*time.Minute)
	mustOK(t, s.UpdateTask(ctx, renotified, ota.TaskInProgress), "UpdateTask with a new notice time")
	wantEqual(t, renotified, mustGetTask(t, s, task.ID), "task after a new notice time")
	staleSame := renotified
	staleSame.State, staleSame.Progress = ota.TaskNotified, 99
	wantCode(t, s.UpdateTask(ctx, staleSame, ota.TaskNotified), ota.CodeConflict, "UpdateTask keeping a state the task is no longer in")
	wantEqual(t, renotified, mustGetTask(t, s, task.ID), "task after the rejected same-state update")
	upd = renotified

	failed := upd
	failed.State, failed.Reason, failed.Detail = ota.TaskFailed, ota.ReasonInstallFailed, "flash write error"
	failed.Progress, failed.FinishedAt, failed.UpdatedAt = 80, at(time.Hour), at(time.Hour)
	failed.NextAttemptAt = at(2 * time.Hour)
	mustOK(t, s.UpdateTask(ctx, failed, ota.TaskInProgress), "UpdateTask in_progress→failed")
	wantEqual(t, failed, mustGetTask(t, s, task.ID), "failed task")

	missing := failed
	missing.ID = other.ID + 1000
	wantCode(t, s.UpdateTask(ctx, missing, ota.TaskFailed), ota.CodeNotFound, "UpdateTask of a missing task")

	// d1's module is free now; another job takes it. Retrying the failed
	// task would make a second active task: conflict, nothing changes.
	mustInsert(t, s, newTask(j2, "d1", ota.TaskQueued))
	retry := failed
	retry.State, retry.Reason, retry.FinishedAt = ota.TaskQueued, ota.ReasonNone, time.Time{}
	wantCode(t, s.UpdateTask(ctx, retry, ota.TaskFailed), ota.CodeConflict, "UpdateTask to a second active task")
	wantEqual(t, failed, mustGetTask(t, s, task.ID), "task after the conflicting retry")
	if a := activeTasks(t, s, "pk1", "d1", ota.DefaultModule); len(a) != 1 || a[0].JobID != j2.ID {
		t.Fatalf("active tasks of d1 = %+v, want only job 2's", a)
	}

	// Clearing times: a retry writes zero times back as zero.
	other2 := other
	other2.State, other2.NotifiedAt, other2.UpdatedAt = ota.TaskNotified, at(time.Minute), at(time.Minute)
	mustOK(t, s.UpdateTask(ctx, other2, ota.TaskQueued), "UpdateTask queued→notified")
	other3 := other2
	other3.State, other3.NotifiedAt = ota.TaskQueued, time.Time{}
	mustOK(t, s.UpdateTask(ctx, other3, ota.TaskNotified), "UpdateTask notified→queued")
	wantEqual(t, other3, mustGetTask(t, s, other.ID), "requeued task")
}

// testTaskModify: ModifyTask writes what change made of the stored task,
// never over a change it did not see, and nothing when change refuses.
func testTaskModify(t *testing.T, s store.Store) {
	ctx := t.Context()
	j2, task, other := twoQueuedTasks(t, s)

	got, err := s.ModifyTask(ctx, task.ID, func(x *ota.Task) error {
		x.State, x.Progress, x.Detail = ota.TaskInProgress, 40, "downloading"
		x.NotifiedAt, x.StartedAt, x.UpdatedAt = at(time.Minute), at(time.Minute), at(time.Minute)
		return nil
	})
	mustOK(t, err, "ModifyTask queued→in_progress")
	want := task
	want.State, want.Progress, want.Detail = ota.TaskInProgress, 40, "downloading"
	want.NotifiedAt, want.StartedAt, want.UpdatedAt = at(time.Minute), at(time.Minute), at(time.Minute)
	wantEqual(t, want, got, "ModifyTask's result")
	wantEqual(t, want, mustGetTask(t, s, task.ID), "modified task")
	wantEqual(t, other, mustGetTask(t, s, other.ID), "the other task")

	refused := errors.New("refused by change")
	_, err = s.ModifyTask(ctx, task.ID, func(x *ota.Task) error {
		x.Progress = 99
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("ModifyTask whose change refused: %v, want change's error", err)
	}
	wantEqual(t, want, mustGetTask(t, s, task.ID), "task after a refused change")

	called := false
	_, err = s.ModifyTask(ctx, other.ID+1000, func(*ota.Task) error { called = true; return nil })
	wantCode(t, err, ota.CodeNotFound, "ModifyTask of a missing task")
	if called {
		t.Fatal("ModifyTask called change for a missing task")
	}

	// Concurrent changes each see the one before: none is lost.
	modify := func() error {
		_, err := s.ModifyTask(ctx, other.ID, func(x *ota.Task) error { x.Attempts++; return nil })
		return err
	}
	incrementConcurrently(t, s, other, "concurrent ModifyTask", slices.Repeat([]func() error{modify}, 12)...)

	// A change that would make a second active task on the device's module
	// is a conflict and writes nothing.
	_, err = s.ModifyTask(ctx, task.ID, func(x *ota.Task) error {
		x.State, x.FinishedAt = ota.TaskFailed, at(time.Hour)
		return nil
	})
	mustOK(t, err, "ModifyTask in_progress→failed")
	mustInsert(t, s, newTask(j2, "d1", ota.TaskQueued))
	failed := mustGetTask(t, s, task.ID)
	_, err = s.ModifyTask(ctx, task.ID, func(x *ota.Task) error {
		x.State, x.FinishedAt = ota.TaskQueued, time.Time{}
		return nil
	})
	wantCode(t, err, ota.CodeConflict, "ModifyTask to a second active task")
	wantEqual(t, failed, mustGetTask(t, s, task.ID), "task after the conflicting change")
}

// testApplyVersionReport: the version is recorded whatever change says,
// the device's active task on the module is changed as ModifyTask does,
// and running dynamic jobs on the product and module are reported.
func testApplyVersionReport(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1"})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d2"})
	j1 := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	mustInsert(t, s, newTask(j1, "d1", ota.TaskInProgress), newTask(j1, "d2", ota.TaskQueued))
	task := activeTasks(t, s, "pk1", "d1", ota.DefaultModule)[0]
	other := activeTasks(t, s, "pk1", "d2", ota.DefaultModule)[0]
	report := func(device, module, version string, at time.Time) store.VersionReport {
		return store.VersionReport{ProductKey: "pk1", DeviceName: device, Module: module, Version: version, At: at}
	}
	wantVersion := func(device, module, version string, seen time.Time) {
		t.Helper()
		d, err := s.GetDevice(ctx, "pk1", device)
		mustOK(t, err, "GetDevice "+device)
		if d.Versions[module] != version || !d.LastSeen.Equal(seen) {
			t.Fatalf("%s: versions %v last seen %v, want %s=%s at %v", device, d.Versions, d.LastSeen, module, version, seen)
		}
	}

	// The destination: the task succeeds in the same call ("" is the
	// default module).
	got, err := s.ApplyVersionReport(ctx, report("d1", "", "2.0", at(time.Minute)), func(x *ota.Task) error {
		if x.ID != task.ID {
			t.Errorf("change got task %d, want d1's active task %d", x.ID, task.ID)
		}
		x.State, x.Progress, x.FinishedAt, x.UpdatedAt = ota.TaskSucceeded, 100, at(time.Minute), at(time.Minute)
		return nil
	})
	mustOK(t, err, "ApplyVersionReport of the destination")
	want := task
	want.State, want.Progress, want.FinishedAt, want.UpdatedAt = ota.TaskSucceeded, 100, at(time.Minute), at(time.Minute)
	if got.Task == nil || got.DynamicJobs {
		t.Fatalf("ApplyVersionReport = %+v, want the task and no dynamic jobs", got)
	}
	wantEqual(t, want, *got.Task, "ApplyVersionReport's task")
	wantEqual(t, want, mustGetTask(t, s, task.ID), "the succeeded task")
	wantEqual(t, other, mustGetTask(t, s, other.ID), "the other device's task")
	wantVersion("d1", ota.DefaultModule, "2.0", at(time.Minute))

	// No active task: the version alone, change never called.
	got, err = s.ApplyVersionReport(ctx, report("d1", "", "2.1", at(2*time.Minute)), func(*ota.Task) error {
		t.Error("change called for a device without an active task")
		return nil
	})
	mustOK(t, err, "ApplyVersionReport without a task")
	if got.Task != nil {
		t.Fatalf("ApplyVersionReport without an active task = %+v, want no task", got.Task)
	}
	wantVersion("d1", ota.DefaultModule, "2.1", at(2*time.Minute))

	// change refuses: the version is recorded, the task left as it was.
	refused := errors.New("refused by change")
	_, err = s.ApplyVersionReport(ctx, report("d2", ota.DefaultModule, "1.5", at(3*time.Minute)), func(x *ota.Task) error {
		x.State = ota.TaskFailed
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("ApplyVersionReport whose change refused: %v, want change's error", err)
	}
	wantEqual(t, other, mustGetTask(t, s, other.ID), "task after a refused change")
	wantVersion("d2", ota.DefaultModule, "1.5", at(3*time.Minute))

	// change leaves the task as it is: nothing written, the task returned.
	got, err = s.ApplyVersionReport(ctx, report("d2", "", "1.6", at(4*time.Minute)), func(*ota.Task) error { return nil })
	mustOK(t, err, "ApplyVersionReport changing nothing")
	if got.Task == nil {
		t.Fatal("ApplyVersionReport changing nothing returned no task")
	}
	wantEqual(t, other, *got.Task, "the unchanged task")
	wantVersion("d2", ota.DefaultModule, "1.6", at(4*time.Minute))

	// A missing device: CodeNotFound, nothing called.
	_, err = s.ApplyVersionReport(ctx, report("ghost", "", "1", base), func(*ota.Task) error {
		t.Error("change called for a missing device")
		return nil
	})
	wantCode(t, err, ota.CodeNotFound, "ApplyVersionReport of a missing device")

	// Running dynamic jobs on the product and module, and only those.
	dynamic := func(product, module string, state ota.JobState, created time.Duration) {
		j := newJob("acme", "pkg", product, at(created))
		j.Module, j.Selection, j.State = module, ota.SelectDynamic, state
		mustJob(t, s, j)
	}
	dynamicJobs := func(module string) bool {
		t.Helper()
		got, err := s.ApplyVersionReport(ctx, report("d1", module, "2.1", at(5*time.Minute)), func(*ota.Task) error { return nil })
		mustOK(t, err, "ApplyVersionReport on "+module)
		return got.DynamicJobs
	}
	dynamic("pk1", ota.DefaultModule, ota.JobPlanned, time.Second)
	dynamic("pk1", ota.DefaultModule, ota.JobCompleted, 2*time.Second)
	dynamic("pk1", "mcu", ota.JobRunning, 3*time.Second)
	dynamic("pk2", ota.DefaultModule, ota.JobRunning, 4*time.Second)
	running := newJob("acme", "pkg", "pk1", at(5*time.Second))
	running.State = ota.JobRunning // static
	mustJob(t, s, running)
	if dynamicJobs(ota.DefaultModule) {
		t.Fatal("DynamicJobs with only a planned, a completed and a static job on the module")
	}
	if !dynamicJobs("mcu") {
		t.Fatal("no DynamicJobs with a running dynamic job on the module")
	}
	dynamic("pk1", ota.DefaultModule, ota.JobRunning, 6*time.Second)
	if !dynamicJobs(ota.DefaultModule) {
		t.Fatal("no DynamicJobs with a running dynamic job on the module")
	}

	// Reports and other writers racing on one task: each change sees the
	// one before, none is lost.
	var racing []func() error
	for i := range 6 {
		racing = append(racing, func() error {
			_, err := s.ApplyVersionReport(ctx, report("d2", "", fmt.Sprintf("1.%d", i), at(time.Hour)),
				func(x *ota.Task) error { x.Attempts++; return nil })
			return err
		}, func() error {
			_, err := s.ModifyTask(ctx, other.ID, func(x *ota.Task) error { x.Attempts++; return nil })
			return err
		})
	}
	incrementConcurrently(t, s, other, "concurrent ApplyVersionReport and ModifyTask", racing...)
}

// incrementConcurrently runs the increments of task's attempts all at once,
// each tried again while it hears CodeConflict (the task kept changing),
// and checks that none was lost.
func incrementConcurrently(t *testing.T, s store.Store, task ota.Task, what string, increments ...func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(increments))
	for _, increment := range increments {
		wg.Go(func() {
			err := increment()
			for ota.ErrorCode(err) == ota.CodeConflict {
				err = increment()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustOK(t, err, what)
	}
	if n := mustGetTask(t, s, task.ID).Attempts; n != task.Attempts+len(increments) {
		t.Fatalf("%s: attempts after %d increments: %d, want %d", what, len(increments), n, task.Attempts+len(increments))
	}
}

func testTaskUpdateBulk(t *testing.T, s store.Store) {
	ctx := t.Context()
	jA := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	jB := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	var tasks []ota.Task
	for i := range 6 {
		tasks = append(tasks, newTask(jA, fmt.Sprintf("d%d", i), ota.TaskQueued))
	}
	tasks = append(tasks, newTask(jA, "d6", ota.TaskNotified), newTask(jA, "d7", ota.TaskInProgress))
	tasks = append(tasks, newTask(jB, "d10", ota.TaskQueued), newTask(jB, "d11", ota.TaskQueued))
	mustInsert(t, s, tasks...)
	before := listAll(t, s, store.TaskFilter{})

	update := func(f store.TaskFilter, u store.TaskUpdate, want int64) {
		t.Helper()
		n, err := s.UpdateTasks(ctx, f, u)
		mustOK(t, err, "UpdateTasks")
		if n != want {
			t.Fatalf("UpdateTasks(%+v, %+v) changed %d, want %d", f, u, n, want)
		}
	}
	update(store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskQueued}},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonJobCanceled, Detail: "job canceled", Now: at(time.Hour)}, 6)
	update(store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskInProgress}},
		store.TaskUpdate{State: ota.TaskRetryWait, Reason: ota.ReasonUpgradeFailed, NextAttemptAt: at(2 * time.Hour), Now: at(90 * time.Minute)}, 1)
	update(store.TaskFilter{JobID: jB.ID, Devices: []string{"d11"}},
		store.TaskUpdate{State: ota.TaskNotified, Now: at(3 * time.Hour)}, 1)
	update(store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskConfirm}},
		store.TaskUpdate{State: ota.TaskQueued, Now: at(4 * time.Hour)}, 0)

	after := listAll(t, s, store.TaskFilter{})
	for i, b := range before {
		want := b
		switch {
		case b.JobID == jA.ID && b.State == ota.TaskQueued:
			want.State, want.Reason, want.Detail = ota.TaskCanceled, ota.ReasonJobCanceled, "job canceled"
			want.UpdatedAt, want.FinishedAt = at(time.Hour), at(time.Hour)
		case b.JobID == jA.ID && b.State == ota.TaskInProgress:
			want.State, want.Reason, want.NextAttemptAt, want.UpdatedAt = ota.TaskRetryWait, ota.ReasonUpgradeFailed, at(2*time.Hour), at(90*time.Minute)
		case b.DeviceName == "d11":
			want.State, want.UpdatedAt = ota.TaskNotified, at(3*time.Hour)
		}
		wantEqual(t, want, after[i], "task "+b.DeviceName)
	}

	// From retry_wait back to queued, picked by next attempt time.
	update(store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskRetryWait}, NextAttemptBefore: at(2*time.Hour - time.Millisecond)},
		store.TaskUpdate{State: ota.TaskQueued, Now: at(5 * time.Hour)}, 0)
	update(store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskRetryWait}, NextAttemptBefore: at(2 * time.Hour)},
		store.TaskUpdate{State: ota.TaskQueued, Now: at(5 * time.Hour)}, 1)
	requeued := listAll(t, s, store.TaskFilter{JobID: jA.ID, Devices: []string{"d7"}})[0]
	if requeued.State != ota.TaskQueued || requeued.Reason != ota.ReasonNone || !requeued.FinishedAt.IsZero() ||
		!requeued.UpdatedAt.Equal(at(5*time.Hour)) {
		t.Fatalf("requeued task = %+v", requeued)
	}
	// By ids, across jobs.
	update(store.TaskFilter{IDs: []int64{after[6].ID, after[8].ID}},
		store.TaskUpdate{State: ota.TaskFailed, Reason: ota.ReasonTimeout, Now: at(6 * time.Hour)}, 2)
	for _, i := range []int{6, 8} {
		got := mustGetTask(t, s, after[i].ID)
		if got.State != ota.TaskFailed || got.Reason != ota.ReasonTimeout || !got.FinishedAt.Equal(at(6*time.Hour)) {
			t.Fatalf("task %s after timeout = %+v", got.DeviceName, got)
		}
	}
	// NotifiedBefore and StartedBefore select too (timeouts).
	n, err := s.UpdateTasks(ctx, store.TaskFilter{JobID: jB.ID, NotifiedBefore: at(time.Hour)},
		store.TaskUpdate{State: ota.TaskFailed, Reason: ota.ReasonTimeout, Now: at(7 * time.Hour)})
	mustOK(t, err, "UpdateTasks by notified time")
	if n != 0 {
		t.Fatalf("UpdateTasks with NotifiedBefore changed %d tasks that were never notified", n)
	}
}

func testTaskUpdateBulkLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	var tasks []ota.Task
	for i := range 10 {
		tasks = append(tasks, newTask(j, fmt.Sprintf("d%02d", i), ota.TaskQueued))
	}
	mustInsert(t, s, tasks...)
	ids := taskIDs(listAll(t, s, store.TaskFilter{JobID: j.ID}))
	f := store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}, Limit: 3}
	u := store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonCanceled, Now: at(time.Hour)}
	for round, want := range []int64{3, 3, 3, 1, 0} {
		n, err := s.UpdateTasks(ctx, f, u)
		mustOK(t, err, "UpdateTasks with limit")
		if n != want {
			t.Fatalf("round %d: UpdateTasks with limit 3 changed %d, want %d", round, n, want)
		}
		// The lowest ids go first.
		canceled := listAll(t, s, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskCanceled}})
		upto := min(3*(round+1), 10)
		wantEqual(t, ids[:upto], taskIDs(canceled), fmt.Sprintf("canceled after round %d", round))
	}
	// AfterID bounds the selection from below.
	mustInsert(t, s, newTask(j, "x1", ota.TaskQueued), newTask(j, "x2", ota.TaskQueued), newTask(j, "x3", ota.TaskQueued))
	xs := listAll(t, s, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}})
	n, err := s.UpdateTasks(ctx, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}, AfterID: xs[0].ID}, u)
	mustOK(t, err, "UpdateTasks after id")
	if n != 2 || mustGetTask(t, s, xs[0].ID).State != ota.TaskQueued {
		t.Fatalf("UpdateTasks after id changed %d tasks (want 2, the first left queued)", n)
	}
}

func testTaskUpdateBulkOneActive(t *testing.T, s store.Store) {
	ctx := t.Context()
	jA := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	jB := mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Second)))
	mustInsert(t, s, newTask(jA, "d1", ota.TaskFailed), newTask(jA, "d2", ota.TaskFailed), newTask(jB, "d1", ota.TaskQueued))
	n, err := s.UpdateTasks(ctx, store.TaskFilter{JobID: jA.ID, States: []ota.TaskState{ota.TaskFailed}},
		store.TaskUpdate{State: ota.TaskQueued, Now: at(time.Hour)})
	mustOK(t, err, "UpdateTasks retrying failed tasks")
	if n != 1 {
		t.Fatalf("UpdateTasks changed %d tasks, want 1 (d2 only: d1 is held by job B)", n)
	}
	if a := activeTasks(t, s, "pk1", "d1", ota.DefaultModule); len(a) != 1 || a[0].JobID != jB.ID {
		t.Fatalf("active tasks of d1 = %+v, want only job B's", a)
	}
	if a := activeTasks(t, s, "pk1", "d2", ota.DefaultModule); len(a) != 1 || a[0].JobID != jA.ID {
		t.Fatalf("active tasks of d2 = %+v, want job A's retried task", a)
	}
	// Two terminal tasks of one device made active in one statement: one wins.
	jC := mustJob(t, s, newJob("acme", "pkg", "pk1", at(2*time.Second)))
	mustInsert(t, s, newTask(jC, "d3", ota.TaskCanceled), newTask(jC, "d3", ota.TaskFailed))
	n, err = s.UpdateTasks(ctx, store.TaskFilter{JobID: jC.ID}, store.TaskUpdate{State: ota.TaskQueued, Now: at(time.Hour)})
	mustOK(t, err, "UpdateTasks retrying two tasks of one device")
	if n != 1 || len(activeTasks(t, s, "pk1", "d3", ota.DefaultModule)) != 1 {
		t.Fatalf("UpdateTasks made %d tasks of d3 active, want 1", n)
	}
}

func testTaskClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	other := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	var tasks []ota.Task
	for i := range 10 {
		task := newTask(j, fmt.Sprintf("q%d", i), ota.TaskQueued)
		if i == 2 {
			task.Attempts = 2 // a retried task: claims add one
		}
		tasks = append(tasks, task)
		if i%4 == 1 {
			tasks = append(tasks, newTask(j, fmt.Sprintf("c%d", i), ota.TaskConfirm))
		}
	}
	for i := range 3 {
		tasks = append(tasks, newTask(other, fmt.Sprintf("o%d", i), ota.TaskQueued))
	}
	mustInsert(t, s, tasks...)
	queued := listAll(t, s, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}})
	if len(queued) != 10 {
		t.Fatalf("job has %d queued tasks, want 10", len(queued))
	}

	claim := func(after int64, limit int, now time.Time, want ...int) {
		t.Helper()
		res, err := s.ClaimTasks(ctx, store.ClaimRequest{JobID: j.ID, AfterID: after, Limit: limit, Now: now})
		mustOK(t, err, "ClaimTasks")
		if res.Full {
			t.Fatalf("ClaimTasks without a pace says Full")
		}
		got := res.Tasks
		var wantTasks []ota.Task
		for _, i := range want {
			w := queued[i]
			w.State, w.Attempts, w.NotifiedAt, w.UpdatedAt = ota.TaskNotified, w.Attempts+1, now, now
			wantTasks = append(wantTasks, w)
		}
		wantEqual(t, wantTasks, got, fmt.Sprintf("ClaimTasks(after %d, limit %d)", after, limit))
		for _, w := range wantTasks {
			wantEqual(t, w, mustGetTask(t, s, w.ID), "claimed task as stored")
		}
	}
	claim(0, 0, at(time.Minute))
	claim(0, 4, at(time.Minute), 0, 1, 2, 3)
	if got := mustGetTask(t, s, queued[2].ID); got.Attempts != 3 {
		t.Fatalf("a claimed task with 2 attempts has %d, want 3", got.Attempts)
	}
	claim(queued[5].ID, 3, at(2*time.Minute), 6, 7, 8)
	claim(0, 100, at(3*time.Minute+7*time.Millisecond), 4, 5, 9)
	claim(0, 100, at(4*time.Minute))

	counts, err := s.CountTasks(ctx, j.ID)
	mustOK(t, err, "CountTasks")
	if counts[ota.TaskNotified] != 10 || counts[ota.TaskConfirm] != 3 || counts[ota.TaskQueued] != 0 {
		t.Fatalf("after claiming everything: %v", counts)
	}
	counts, err = s.CountTasks(ctx, other.ID)
	mustOK(t, err, "CountTasks other")
	if counts[ota.TaskQueued] != 3 || counts.Total() != 3 {
		t.Fatalf("claims on one job touched another: %v", counts)
	}
	n, err := s.CountNotifiedSince(ctx, j.ID, at(2*time.Minute))
	mustOK(t, err, "CountNotifiedSince")
	if n != 6 {
		t.Fatalf("CountNotifiedSince after claims = %d, want 6", n)
	}
}

func testTaskClaimConcurrent(t *testing.T, s store.Store) {
	const total, workers, batch = 2000, 4, 37
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	tasks := make([]ota.Task, total)
	for i := range tasks {
		tasks[i] = newTask(j, fmt.Sprintf("dev%04d", i), ota.TaskQueued)
	}
	mustInsert(t, s, tasks...)
	inserted := listAll(t, s, store.TaskFilter{JobID: j.ID})

	claimed := make([][]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var last int64 // each worker keeps its own keyset cursor
			for {
				res, err := s.ClaimTasks(t.Context(), store.ClaimRequest{JobID: j.ID, AfterID: last, Limit: batch, Now: at(time.Minute)})
				ts := res.Tasks
				if err != nil {
					errs[w] = err
					return
				}
				if len(ts) == 0 {
					return
				}
				for i, task := range ts {
					if task.ID <= last || (i > 0 && task.ID <= ts[i-1].ID) {
						errs[w] = fmt.Errorf("claim after %d returned ids %v: not ascending above the cursor", last, taskIDs(ts))
						return
					}
					claimed[w] = append(claimed[w], task.ID)
				}
				last = ts[len(ts)-1].ID
			}
		})
	}
	wg.Wait()
	seen := make(map[int64]int, total)
	for w := range workers {
		mustOK(t, errs[w], fmt.Sprintf("worker %d", w))
		for _, id := range claimed[w] {
			if prev, dup := seen[id]; dup {
				t.Fatalf("task %d claimed by workers %d and %d", id, prev, w)
			}
			seen[id] = w
		}
	}
	if len(seen) != total {
		t.Fatalf("%d tasks claimed, want %d", len(seen), total)
	}
	for _, task := range inserted {
		if _, ok := seen[task.ID]; !ok {
			t.Fatalf("task %d was never claimed", task.ID)
		}
	}
	for _, task := range listAll(t, s, store.TaskFilter{JobID: j.ID}) {
		if task.State != ota.TaskNotified || task.Attempts != 1 {
			t.Fatalf("after the claims task %d is %s with %d attempts, want notified with 1", task.ID, task.State, task.Attempts)
		}
	}
}

// testTaskClaimPaced pins down the pace of one claim: MaxActive counts the
// job's notified and in-progress tasks, MaxPerMinute its tasks notified in
// the minute up to Now (whatever their state since), both after the claim;
// Full says the pace, not the queue, stopped it.
func testTaskClaimPaced(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	other := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	now := at(time.Hour)
	var tasks []ota.Task
	for i := range 14 {
		tasks = append(tasks, newTask(j, fmt.Sprintf("q%02d", i), ota.TaskQueued))
	}
	// Two dispatched tasks count against the cap; waiting, confirm and
	// retry_wait do not (nor other jobs' tasks).
	inProgress := newTask(j, "busy1", ota.TaskInProgress)
	inProgress.NotifiedAt = now.Add(-2 * time.Minute) // outside the rate window
	notified := newTask(j, "busy2", ota.TaskNotified)
	notified.NotifiedAt = now.Add(-store.RateWindow) // inside it: the window is inclusive
	done := newTask(j, "done1", ota.TaskSucceeded)
	done.NotifiedAt = now.Add(-30 * time.Second) // inside, finished: counts for the rate only
	tasks = append(tasks, inProgress, notified, done, newTask(j, "w1", ota.TaskWaiting), newTask(j, "c1", ota.TaskConfirm),
		newTask(j, "r1", ota.TaskRetryWait))
	for i := range 5 {
		tasks = append(tasks, newTask(other, fmt.Sprintf("o%d", i), ota.TaskNotified))
	}
	mustInsert(t, s, tasks...)
	queued := listAll(t, s, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}})
	if len(queued) != 14 {
		t.Fatalf("job has %d queued tasks, want 14", len(queued))
	}

	claim := func(r store.ClaimRequest, wantN int, wantFull bool) []ota.Task {
		t.Helper()
		r.JobID = j.ID
		if r.Now.IsZero() {
			r.Now = now
		}
		res, err := s.ClaimTasks(ctx, r)
		mustOK(t, err, "ClaimTasks")
		if len(res.Tasks) != wantN || res.Full != wantFull {
			t.Fatalf("ClaimTasks(%+v) claimed %d (Full %v), want %d (Full %v)", r, len(res.Tasks), res.Full, wantN, wantFull)
		}
		return res.Tasks
	}
	// Cap 5 with 2 dispatched: room for 3, whatever the limit.
	got := claim(store.ClaimRequest{Limit: 10, MaxActive: 5}, 3, true)
	wantEqual(t, taskIDs(queued[:3]), taskIDs(got), "the lowest queued ids are claimed first")
	claim(store.ClaimRequest{Limit: 10, MaxActive: 5}, 0, true)
	// Room exactly the limit: Full, since nothing more would fit.
	claim(store.ClaimRequest{Limit: 2, MaxActive: 7}, 2, true)
	// The limit below the room: not Full.
	claim(store.ClaimRequest{Limit: 1, MaxActive: 9}, 1, false)
	// A task leaving the dispatched states makes room for one.
	mustOK(t, s.UpdateTask(ctx, func() ota.Task { x := got[0]; x.State = ota.TaskSucceeded; x.FinishedAt = now; return x }(),
		ota.TaskNotified), "UpdateTask to succeeded")
	claim(store.ClaimRequest{Limit: 10, MaxActive: 8}, 1, true)

	// Rate: 7 claimed at now, busy2 at the window's start, done1 within it
	// = 9 in the minute up to now; busy1 was notified before it.
	claim(store.ClaimRequest{Limit: 10, MaxPerMinute: 10}, 1, true)
	claim(store.ClaimRequest{Limit: 10, MaxPerMinute: 10}, 0, true)
	// A minute on, the 8 claimed at now are at the window's start: room for 2.
	claim(store.ClaimRequest{Limit: 10, MaxPerMinute: 10, Now: now.Add(store.RateWindow)}, 2, true)
	// A millisecond after that only those 2 are in the window.
	claim(store.ClaimRequest{Limit: 1, MaxPerMinute: 10, MaxActive: 1000, Now: now.Add(store.RateWindow + time.Millisecond)}, 1, false)
	// Both paces at once: the smaller room wins.
	counts, err := s.CountTasks(ctx, j.ID)
	mustOK(t, err, "CountTasks")
	later := now.Add(10 * time.Minute)
	claim(store.ClaimRequest{Limit: 10, MaxActive: int(counts.Dispatched()) + 1, MaxPerMinute: 5, Now: later}, 1, true)
	claim(store.ClaimRequest{Limit: 10, MaxActive: 1000, MaxPerMinute: 2, Now: later}, 1, true)
	// Room beyond what is queued: the last queued task, and not Full.
	claim(store.ClaimRequest{Limit: 10, MaxActive: 1000, MaxPerMinute: 100, Now: later}, 1, false)
	claim(store.ClaimRequest{Limit: 10, MaxActive: 1000, MaxPerMinute: 100, Now: later}, 0, false)

	counts, err = s.CountTasks(ctx, other.ID)
	mustOK(t, err, "CountTasks other")
	if counts[ota.TaskNotified] != 5 || counts.Total() != 5 {
		t.Fatalf("claims on one job touched another: %v", counts)
	}
}

func testTaskClaimPacedConcurrent(t *testing.T, s store.Store) {
	ClaimPacedReplicas(t, []store.Store{s})
}

// ClaimPacedReplicas checks that the pace holds under concurrent claims on
// replicas: each a Store instance opened on one database (backends with
// replicas pass several; the suite runs it with one). Claimers spread over
// the replicas claim while a finisher completes dispatched tasks; every
// sample of the job's dispatched tasks stays within MaxActive and every task
// is claimed once. Then claimers at one instant take exactly MaxPerMinute.
func ClaimPacedReplicas(t *testing.T, replicas []store.Store) {
	const total, workers, batch, maxActive, perMinute = 600, 8, 7, 25, 40
	ctx := t.Context()
	s0 := replicas[0]
	j := mustJob(t, s0, newJob("acme", "pkg", "pk1", base))
	tasks := make([]ota.Task, total)
	for i := range tasks {
		tasks[i] = newTask(j, fmt.Sprintf("dev%04d", i), ota.TaskQueued)
	}
	mustInsert(t, s0, tasks...)

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		seen     = map[int64]bool{}
		errs     = make(chan error, workers+2)
		maxSeen  int64
		finished atomic.Bool
	)
	sample := func(s store.Store) error {
		c, err := s.CountTasks(ctx, j.ID)
		if err != nil {
			return err
		}
		if d := c.Dispatched(); d > maxActive {
			return fmt.Errorf("%d tasks dispatched at once, cap %d", d, maxActive)
		} else {
			mu.Lock()
			maxSeen = max(maxSeen, d)
			mu.Unlock()
		}
		return nil
	}
	for w := range workers {
		s := replicas[w%len(replicas)]
		wg.Go(func() {
			var last int64
			for !finished.Load() {
				res, err := s.ClaimTasks(ctx, store.ClaimRequest{JobID: j.ID, AfterID: last, Limit: batch, MaxActive: maxActive,
					Now: at(time.Minute)})
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				mu.Lock()
				for _, task := range res.Tasks {
					if seen[task.ID] {
						mu.Unlock()
						errs <- fmt.Errorf("task %d claimed twice", task.ID)
						return
					}
					seen[task.ID] = true
				}
				mu.Unlock()
				if len(res.Tasks) > 0 {
					last = res.Tasks[len(res.Tasks)-1].ID
				} else if !res.Full {
					last = 0 // nothing above the cursor: look from the start once more
				}
				if err := sample(s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	// The finisher completes a few dispatched tasks at a time, on the last
	// replica, until every task has finished.
	wg.Go(func() {
		defer finished.Store(true)
		s := replicas[len(replicas)-1]
		for {
			n, err := s.UpdateTasks(ctx, store.TaskFilter{JobID: j.ID, States: ota.DispatchedTaskStates, Limit: 5},
				store.TaskUpdate{State: ota.TaskSucceeded, Now: at(time.Minute)})
			if err != nil {
				errs <- fmt.Errorf("finisher: %w", err)
				return
			}
			if err := sample(s); err != nil {
				errs <- err
				return
			}
			if n == 0 {
				c, err := s.CountTasks(ctx, j.ID)
				if err != nil {
					errs <- err
					return
				}
				if c[ota.TaskSucceeded] == total {
					return
				}
			}
			select {
			case err := <-errs:
				errs <- err
				return
			default:
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != total {
		t.Fatalf("%d tasks claimed, want %d", len(seen), total)
	}
	if maxSeen == 0 {
		t.Fatalf("no dispatched task was ever sampled")
	}
	t.Logf("%d replicas, %d claimers: at most %d of cap %d dispatched in any sample", len(replicas), workers, maxSeen, maxActive)

	// The rate: claimers at one instant take exactly perMinute of the job,
	// however many they are.
	j2 := mustJob(t, s0, newJob("acme", "pkg", "pk2", at(time.Second)))
	tasks = tasks[:0]
	for i := range 3 * perMinute {
		tasks = append(tasks, newTask(j2, fmt.Sprintf("r%04d", i), ota.TaskQueued))
	}
	mustInsert(t, s0, tasks...)
	var claimed atomic.Int64
	errs = make(chan error, workers)
	for w := range workers {
		s := replicas[w%len(replicas)]
		wg.Go(func() {
			for {
				res, err := s.ClaimTasks(ctx, store.ClaimRequest{JobID: j2.ID, Limit: 3, MaxPerMinute: perMinute, Now: at(2 * time.Hour)})
				if err != nil {
					errs <- err
					return
				}
				claimed.Add(int64(len(res.Tasks)))
				if res.Full || len(res.Tasks) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := s0.CountNotifiedSince(ctx, j2.ID, at(2*time.Hour).Add(-store.RateWindow)); err != nil || n != perMinute || claimed.Load() != perMinute {
		t.Fatalf("claimers took %d (store says %d, %v) in one minute, want exactly %d", claimed.Load(), n, err, perMinute)
	}
}

// testTaskCountFollowsChanges checks that CountTasks agrees with the tasks
// themselves after every kind of write, including single-task updates running
// at once on different connections (a store may keep counts instead of
// counting rows).
func testTaskCountFollowsChanges(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	other := mustJob(t, s, newJob("acme", "pkg", "pk2", at(time.Second)))
	var tasks []ota.Task
	for i := range 48 {
		tasks = append(tasks, newTask(j, fmt.Sprintf("d%03d", i), ota.TaskQueued))
	}
	mustInsert(t, s, tasks...)
	mustInsert(t, s, newTask(other, "d000", ota.TaskQueued), newTask(other, "d001", ota.TaskSucceeded))
	check := func(step string) {
		t.Helper()
		want := ota.TaskCounts{}
		for _, task := range listAll(t, s, store.TaskFilter{JobID: j.ID}) {
			want[task.State]++
		}
		got, err := s.CountTasks(ctx, j.ID)
		mustOK(t, err, "CountTasks "+step)
		for _, st := range ota.TaskStates {
			if got[st] != want[st] {
				t.Fatalf("%s: CountTasks[%s] = %d, the tasks say %d (counts %v, tasks %v)", step, st, got[st], want[st], got, want)
			}
		}
	}
	check("after insert")

	// 8 writers at once, each moving its 4 tasks queued → in_progress →
	// succeeded or failed, one UpdateTask per move.
	stored := listAll(t, s, store.TaskFilter{JobID: j.ID})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, task := range stored[w*4 : w*4+4] {
				task.State, task.UpdatedAt = ota.TaskInProgress, at(time.Minute)
				if err := s.UpdateTask(ctx, task, ota.TaskQueued); err != nil {
					errs <- err
					return
				}
				end := ota.TaskSucceeded
				if task.ID%3 == 0 {
					end = ota.TaskFailed
				}
				task.State, task.FinishedAt = end, at(2*time.Minute)
				if err := s.UpdateTask(ctx, task, ota.TaskInProgress); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustOK(t, err, "UpdateTask")
	}
	check("after concurrent single updates")

	// A progress report moves no task between states.
	p := mustGetTask(t, s, stored[40].ID)
	p.State = ota.TaskInProgress
	mustOK(t, s.UpdateTask(ctx, p, ota.TaskQueued), "UpdateTask to in progress")
	p.Progress = 50
	mustOK(t, s.UpdateTask(ctx, p, ota.TaskInProgress), "UpdateTask progress")
	check("after a progress update")

	n, err := s.UpdateTasks(ctx, store.TaskFilter{JobID: j.ID, States: []ota.TaskState{ota.TaskQueued}},
		store.TaskUpdate{State: ota.TaskCanceled, Reason: ota.ReasonJobCanceled, Now: at(3 * time.Minute)})
	mustOK(t, err, "UpdateTasks")
	if n != 15 {
		t.Fatalf("UpdateTasks canceled %d tasks, want 15", n)
	}
	check("after a bulk update")

	got, err := s.CountTasks(ctx, other.ID)
	mustOK(t, err, "CountTasks other")
	if got.Total() != 2 || got[ota.TaskQueued] != 1 || got[ota.TaskSucceeded] != 1 {
		t.Fatalf("the other job's counts moved: %v", got)
	}
	mustOK(t, s.DeleteJob(ctx, j.TenantID, j.ID), "DeleteJob")
	got, err = s.CountTasks(ctx, j.ID)
	mustOK(t, err, "CountTasks of the deleted job")
	if got.Total() != 0 {
		t.Fatalf("CountTasks of a deleted job = %v", got)
	}
}

func testSetTaskProgress(t *testing.T, s store.Store) {
	ctx := t.Context()
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))
	running := func(device string, updated time.Time) ota.Task {
		task := newTask(j, device, ota.TaskInProgress)
		task.Progress, task.Detail, task.StartedAt, task.UpdatedAt = 10, "downloading", base, updated
		return task
	}
	mustInsert(t, s, running("d1", at(time.Minute)), running("d2", at(time.Minute)), running("d3", at(3*time.Minute)),
		newTask(j, "d4", ota.TaskNotified), newTask(j, "d5", ota.TaskSucceeded))
	before := listAll(t, s, store.TaskFilter{JobID: j.ID})
	d1, d2, d3, d4, d5 := before[0], before[1], before[2], before[3], before[4]
	counts, err := s.CountTasks(ctx, j.ID)
	mustOK(t, err, "CountTasks")

	written, err := s.SetTaskProgress(ctx, nil)
	if err != nil || len(written) != 0 {
		t.Fatalf("SetTaskProgress(nil) = %v, %v; want nothing written", written, err)
	}

	written, err = s.SetTaskProgress(ctx, []store.TaskProgress{
		{TaskID: d1.ID, Progress: 50, Detail: "verifying", At: at(2 * time.Minute)}, // in progress: written
		{TaskID: d2.ID, Progress: 20, At: at(time.Minute)},                          // at its last update exactly: written
		{TaskID: d3.ID, Progress: 90, At: at(2 * time.Minute)},                      // updated later than the report: left
		{TaskID: d4.ID, Progress: 30, At: at(2 * time.Minute)},                      // not started: left
		{TaskID: d5.ID, Progress: 40, At: at(2 * time.Minute)},                      // ended: left
		{TaskID: d5.ID + 1000, Progress: 40, At: at(2 * time.Minute)},               // no such task: left
	})
	mustOK(t, err, "SetTaskProgress")
	slices.Sort(written)
	wantEqual(t, []int64{d1.ID, d2.ID}, written, "the tasks SetTaskProgress wrote")

	want1 := d1
	want1.Progress, want1.Detail, want1.UpdatedAt = 50, "verifying", at(2*time.Minute)
	wantEqual(t, want1, mustGetTask(t, s, d1.ID), "d1 after its progress")
	want2 := d2
	want2.Progress, want2.Detail = 20, ""
	wantEqual(t, want2, mustGetTask(t, s, d2.ID), "d2 after its progress")
	for _, task := range []ota.Task{d3, d4, d5} {
		wantEqual(t, task, mustGetTask(t, s, task.ID), "task of "+task.DeviceName+" (left out)")
	}
	after, err := s.CountTasks(ctx, j.ID)
	mustOK(t, err, "CountTasks after SetTaskProgress")
	wantEqual(t, counts, after, "the job's counts (progress moves no task between states)")
}
