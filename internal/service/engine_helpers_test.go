package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

// recordingNotifier keeps every notice it is handed.
type recordingNotifier struct {
	mu      sync.Mutex
	notices []ota.Notice
}

func (r *recordingNotifier) Notify(_ context.Context, ns []ota.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, ns...)
	return nil
}

func (r *recordingNotifier) all() []ota.Notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notices)
}

// devicesNotified lists the devices notified, sorted, duplicates kept.
func (r *recordingNotifier) devicesNotified() []string {
	var out []string
	for _, n := range r.all() {
		out = append(out, n.DeviceName)
	}
	slices.Sort(out)
	return out
}

// rolloutEnv is a Service on a real SQLite file and a real fs blob store,
// with a fake clock and a recording notifier, for tenant "acme" and product
// "pk1".
type rolloutEnv struct {
	t      *testing.T
	ctx    context.Context
	dbPath string
	blobs  blob.Store
	st     *sqlite.Store
	svc    *service.Service
	clock  *stepClock
	rec    *recordingNotifier
	opts   service.Options
	p      service.Principal
	pkgs   int
}

// quietLog shows warnings and errors only.
var quietLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

var rolloutT0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const rolloutProduct = "pk1"

func newRolloutEnv(t *testing.T, opts service.Options) *rolloutEnv {
	t.Helper()
	dir := t.TempDir()
	r := &rolloutEnv{t: t, ctx: context.Background(), dbPath: filepath.Join(dir, "updraft.db"),
		clock: &stepClock{t: rolloutT0}, p: service.Principal{TenantID: "acme", AccessKeyID: "AK1"}, opts: opts}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), []byte("rollout-test-signing-key"), "http://127.0.0.1:1", r.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.blobs = blobs
	r.open()
	if err := r.st.CreateTenant(r.ctx, ota.Tenant{ID: "acme", Name: "acme", CreatedAt: rolloutT0}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CreateProduct(r.ctx, r.p, ota.Product{Key: rolloutProduct, Name: "Product 1"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// open (re)opens the store and builds a new Service with a new recorder, as
// a restarted server would.
func (r *rolloutEnv) open() {
	r.t.Helper()
	r.st = openSQLite(r.t, r.dbPath)
	r.rec = &recordingNotifier{}
	r.svc = service.New(r.st, r.blobs, r.clock, r.rec, quietLog, r.opts)
}

// crash drops the Service and its store without any goodbye and starts
// over on the same database file.
func (r *rolloutEnv) crash() {
	r.t.Helper()
	r.st.Close()
	r.open()
}

// devices creates n devices named prefix-0000… on version (none if "").
func (r *rolloutEnv) devices(prefix string, n int, version string, groups ...string) []string {
	r.t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
		// Online: a device that is offline waits (TaskWaiting) instead of
		// being notified; tests of waiting take devices offline themselves.
		d := ota.Device{TenantID: "acme", ProductKey: rolloutProduct, Name: names[i], Secret: "s", Groups: groups,
			CreatedAt: r.clock.Now(), Online: true}
		if version != "" {
			d.Versions = map[string]string{ota.DefaultModule: version}
		}
		if err := r.st.CreateDevice(r.ctx, d); err != nil {
			r.t.Fatal(err)
		}
	}
	return names
}

// pkg registers a package to version 2.0 (mutate changes it).
func (r *rolloutEnv) pkg(mutate func(*ota.Package)) ota.Package {
	r.t.Helper()
	r.pkgs++
	in := ota.Package{ProductKey: rolloutProduct, Name: fmt.Sprintf("fw-%d", r.pkgs), Version: "2.0"}
	if mutate != nil {
		mutate(&in)
	}
	p, err := r.svc.CreatePackage(r.ctx, r.p, in, "fw.bin", strings.NewReader("firmware image "+in.Name))
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// job creates a pushing job (mutate changes it).
func (r *rolloutEnv) job(pkg ota.Package, mutate func(*ota.Job)) ota.Job {
	r.t.Helper()
	in := ota.Job{PackageID: pkg.ID, Target: ota.Target{All: true}, NeedPush: true}
	if mutate != nil {
		mutate(&in)
	}
	j, err := r.svc.CreateJob(r.ctx, r.p, in)
	if err != nil {
		r.t.Fatal(err)
	}
	return j
}

func (r *rolloutEnv) tick() service.TickReport {
	r.t.Helper()
	rep, err := r.svc.Advance(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// tickUntilMaterialized ticks until the job's tasks all exist.
func (r *rolloutEnv) tickUntilMaterialized(jobID string) {
	r.t.Helper()
	for i := 0; i < 1000; i++ {
		r.tick()
		if r.getJob(jobID).Job.Materialized {
			return
		}
	}
	r.t.Fatalf("job %s not materialized after 1000 ticks", jobID)
}

func (r *rolloutEnv) getJob(id string) service.JobView {
	r.t.Helper()
	v, err := r.svc.GetJob(r.ctx, r.p, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

// states returns the job's task counts in a stable, readable form.
func (r *rolloutEnv) states(jobID string) string {
	r.t.Helper()
	return countsString(r.getJob(jobID).Counts)
}

func countsString(c ota.TaskCounts) string {
	var parts []string
	for _, s := range ota.TaskStates {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, c[s]))
		}
	}
	return strings.Join(parts, " ")
}

func (r *rolloutEnv) tasks(jobID string) []ota.Task {
	r.t.Helper()
	tasks, _, err := r.svc.ListTasks(r.ctx, r.p, store.TaskFilter{JobID: jobID}, store.Page{Limit: 1000})
	if err != nil {
		r.t.Fatal(err)
	}
	return tasks
}

func (r *rolloutEnv) task(jobID, device string) ota.Task {
	r.t.Helper()
	tasks, _, err := r.svc.ListTasks(r.ctx, r.p, store.TaskFilter{JobID: jobID, Devices: []string{device}}, store.Page{Limit: 2})
	if err != nil {
		r.t.Fatal(err)
	}
	if len(tasks) != 1 {
		r.t.Fatalf("device %s has %d tasks in job %s", device, len(tasks), jobID)
	}
	return tasks[0]
}

func (r *rolloutEnv) taskDevices(jobID string) []string {
	var out []string
	for _, t := range r.tasks(jobID) {
		out = append(out, t.DeviceName)
	}
	slices.Sort(out)
	return out
}

func ref(name string) ota.DeviceRef { return ota.DeviceRef{ProductKey: rolloutProduct, Name: name} }

func (r *rolloutEnv) progress(device string, step int) {
	r.t.Helper()
	if err := r.svc.ReportProgress(r.ctx, ref(device), service.Progress{Step: step}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rolloutEnv) reportVersion(device, version string) {
	r.t.Helper()
	if err := r.svc.ReportVersion(r.ctx, ref(device), "", version); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rolloutEnv) wantState(jobID, device string, want ota.TaskState) ota.Task {
	r.t.Helper()
	task := r.task(jobID, device)
	if task.State != want {
		r.t.Fatalf("task of %s is %s (%s %s), want %s", device, task.State, task.Reason, task.Detail, want)
	}
	return task
}

func (r *rolloutEnv) wantJobState(jobID string, want ota.JobState) ota.Job {
	r.t.Helper()
	j := r.getJob(jobID).Job
	if j.State != want {
		r.t.Fatalf("job is %s (%s), want %s", j.State, j.StateReason, want)
	}
	return j
}

func (r *rolloutEnv) wantCounts(jobID, want string) {
	r.t.Helper()
	if got := r.states(jobID); got != want {
		r.t.Fatalf("task counts %q, want %q", got, want)
	}
}

func errCode(t *testing.T, err error, code ota.Code, msgPart string) {
	t.Helper()
	if ota.ErrorCode(err) != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if msgPart != "" && !strings.Contains(ota.ErrorMessage(err), msgPart) {
		t.Fatalf("message %q does not contain %q", ota.ErrorMessage(err), msgPart)
	}
}
