package rollout_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/rollout"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
	"github.com/updraft-ota/updraft/internal/testenv"
)

var quiet = slog.New(slog.DiscardHandler)

// countingAdvancer counts ticks and reports fixed work.
type countingAdvancer struct {
	n   atomic.Int64
	rep service.TickReport
	err error
}

func (c *countingAdvancer) Advance(ctx context.Context) (service.TickReport, error) {
	c.n.Add(1)
	return c.rep, c.err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEngineTicksUntilStopped(t *testing.T) {
	reg := prometheus.NewRegistry()
	adv := &countingAdvancer{rep: service.TickReport{Notified: 3, Materialized: 5}}
	e, err := rollout.New(adv, rollout.Options{Interval: time.Millisecond, Log: quiet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	e.Start(context.Background()) // a second Start is a no-op
	eventually(t, "3 ticks", func() bool { return adv.n.Load() >= 3 })
	e.Stop()
	after := adv.n.Load()
	if got := counter(t, reg, "updraft_rollout_tasks_notified_total"); got != float64(3*after) {
		t.Fatalf("notified metric %v after %d ticks", got, after)
	}
	if got := counter(t, reg, "updraft_rollout_ticks_total"); got != float64(after) {
		t.Fatalf("ticks metric %v after %d ticks", got, after)
	}
	e.Stop() // idempotent

	if _, err := rollout.New(adv, rollout.Options{Registerer: reg}); err == nil {
		t.Fatal("registering the metrics twice must fail")
	}
}

// counter reads a counter's value from the registry.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestEngineKeepsTickingAfterErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	adv := &countingAdvancer{err: errors.New("database is down")}
	e, err := rollout.New(adv, rollout.Options{Interval: time.Millisecond, Log: quiet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	eventually(t, "ticks despite errors", func() bool { return adv.n.Load() >= 3 })
	e.Stop()
	if got := counter(t, reg, "updraft_rollout_tick_errors_total"); got < 3 {
		t.Fatalf("error metric %v", got)
	}
}

func TestRunReturnsWhenContextEnds(t *testing.T) {
	adv := &countingAdvancer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- rollout.Run(ctx, adv, time.Millisecond) }()
	eventually(t, "ticks", func() bool { return adv.n.Load() >= 2 })
	cancel()
	if err := testenv.Recv(t, done, time.Minute, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// recorder is a Notifier that keeps notices.
type recorder struct {
	mu sync.Mutex
	n  []ota.Notice
}

func (r *recorder) Notify(_ context.Context, ns []ota.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n = append(r.n, ns...)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.n)
}

// TestEngineDrivesAJob runs the real engine on a real Service: a job
// created through the service reaches its devices without anyone calling
// Tick by hand.
func TestEngineDrivesAJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), []byte("rollout-engine-test-key"), "http://127.0.0.1:1", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	svc := service.New(st, blobs, nil, rec, quiet, service.Options{})
	p := service.Principal{TenantID: "t1"}
	if err := st.CreateTenant(ctx, ota.Tenant{ID: "t1", Name: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProduct(ctx, p, ota.Product{Key: "pk", Name: "pk"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := svc.CreateDevice(ctx, p, ota.Device{ProductKey: "pk", Name: name}); err != nil {
			t.Fatal(err)
		}
		// Online on version 1: an offline device's task would wait.
		ref := ota.DeviceRef{ProductKey: "pk", Name: name}
		if err := svc.DeviceConnected(ctx, ref, true); err != nil {
			t.Fatal(err)
		}
		if err := svc.ReportVersion(ctx, ref, "", "1"); err != nil {
			t.Fatal(err)
		}
	}
	pkg, err := svc.CreatePackage(ctx, p, ota.Package{ProductKey: "pk", Name: "fw", Version: "2"}, "fw.bin", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := rollout.New(svc, rollout.Options{Interval: 5 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(ctx)
	defer e.Stop()
	job, err := svc.CreateJob(ctx, p, ota.Job{PackageID: pkg.ID, Target: ota.Target{All: true}, NeedPush: true})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both devices notified", func() bool { return rec.count() == 2 })
	for _, name := range []string{"a", "b"} {
		if err := svc.ReportVersion(ctx, ota.DeviceRef{ProductKey: "pk", Name: name}, "", "2"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the job to complete", func() bool {
		v, err := svc.GetJob(ctx, p, job.ID)
		return err == nil && v.Job.State == ota.JobCompleted
	})
}

// TestWakeTicksAtOnce: with an interval far longer than the test, a Wake
// makes the next tick happen now, and wakes never block.
func TestWakeTicksAtOnce(t *testing.T) {
	adv := &countingAdvancer{}
	e, err := rollout.New(adv, rollout.Options{Interval: time.Hour, Log: quiet, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.Wake() // before Start: remembered, one tick's worth
	e.Wake()
	e.Start(context.Background())
	defer e.Stop()
	eventually(t, "the first tick and the tick of the early wake", func() bool { return adv.n.Load() >= 2 })
	time.Sleep(50 * time.Millisecond)
	if n := adv.n.Load(); n != 2 {
		t.Fatalf("%d ticks after two wakes before Start, want 2 (they coalesce)", n)
	}
	for want := int64(3); want <= 5; want++ {
		e.Wake()
		eventually(t, "a tick after Wake", func() bool { return adv.n.Load() >= want })
	}
}

// moreAdvancer reports More (work left by a per-tick budget) for its first
// more ticks, optionally with an error.
type moreAdvancer struct {
	n    atomic.Int64
	more int64
	err  error
}

func (m *moreAdvancer) Advance(ctx context.Context) (service.TickReport, error) {
	n := m.n.Add(1)
	return service.TickReport{Notified: 1, More: n <= m.more}, m.err
}

// TestMoreTicksAtOnce: a tick that reports More is followed at once by
// another, until one does not; a failing tick never is.
func TestMoreTicksAtOnce(t *testing.T) {
	adv := &moreAdvancer{more: 5}
	e, err := rollout.New(adv, rollout.Options{Interval: time.Hour, Log: quiet, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	eventually(t, "6 ticks: 5 with More and the one after them", func() bool { return adv.n.Load() >= 6 })
	time.Sleep(50 * time.Millisecond)
	e.Stop()
	if n := adv.n.Load(); n != 6 {
		t.Fatalf("%d ticks, want 6 (then the hour's interval)", n)
	}

	failing := &moreAdvancer{more: 100, err: errors.New("store down")}
	e, err = rollout.New(failing, rollout.Options{Interval: time.Hour, Log: quiet, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	eventually(t, "the first tick", func() bool { return failing.n.Load() >= 1 })
	time.Sleep(50 * time.Millisecond)
	e.Stop()
	if n := failing.n.Load(); n != 1 {
		t.Fatalf("%d ticks of a failing store reporting More, want 1", n)
	}
}
