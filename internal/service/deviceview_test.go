package service_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/postgres"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// countingStore counts the reads a device check-in can make.
type countingStore struct {
	store.Store
	getDevice, listTasks, version, seen atomic.Int64
}

func (c *countingStore) SetDeviceSeen(ctx context.Context, product, name string, at, staleBefore time.Time) error {
	c.seen.Add(1)
	return c.Store.SetDeviceSeen(ctx, product, name, at, staleBefore)
}

func (c *countingStore) GetDevice(ctx context.Context, product, name string) (ota.Device, error) {
	c.getDevice.Add(1)
	return c.Store.GetDevice(ctx, product, name)
}

func (c *countingStore) ListTasks(ctx context.Context, f store.TaskFilter, p store.Page, count bool) ([]ota.Task, int64, error) {
	c.listTasks.Add(1)
	return c.Store.ListTasks(ctx, f, p, count)
}

func (c *countingStore) DeviceViewVersion(ctx context.Context) (int64, error) {
	c.version.Add(1)
	return c.Store.DeviceViewVersion(ctx)
}

func (c *countingStore) reads() [3]int64 {
	return [3]int64{c.getDevice.Load(), c.listTasks.Load(), c.version.Load()}
}

func TestDeviceViewSQLite(t *testing.T) {
	testDeviceView(t, openSQLite(t, filepath.Join(t.TempDir(), "updraft.db")))
}

func TestDeviceViewPostgres(t *testing.T) {
	st, err := postgres.Open(context.Background(), postgres.TestSchemaDSN(t, testenv.PostgresDSN(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	testDeviceView(t, st)
}

func testDeviceView(t *testing.T, st store.Store) {
	ctx := context.Background()
	clock := &stepClock{t: rolloutT0}
	blobs, err := blobfs.New(filepath.Join(t.TempDir(), "blobs"), []byte("deviceview-test-signing-key"), "http://127.0.0.1:1", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	svc := service.New(cs, blobs, clock, &recordingNotifier{}, quietLog, service.Options{})
	p := service.Principal{TenantID: "acme", AccessKeyID: "AK1"}
	if err := st.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "acme", CreatedAt: rolloutT0}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateProduct(ctx, p, ota.Product{Key: rolloutProduct, Name: "Product 1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"d1", "d2"} {
		d := ota.Device{TenantID: "acme", ProductKey: rolloutProduct, Name: name, Secret: "secret-" + name, Online: true,
			Versions: map[string]string{ota.DefaultModule: "1.0"}, CreatedAt: rolloutT0}
		if err := st.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	d1 := ref("d1")

	check := func(v *service.DeviceView, dev ota.DeviceRef, wantSecret string, wantNotice bool) {
		t.Helper()
		d, err := v.DeviceForAuth(ctx, dev)
		if err != nil || d.Secret != wantSecret {
			t.Fatalf("DeviceForAuth(%s) = %q, %v; want secret %q", dev.Name, d.Secret, err, wantSecret)
		}
		n, err := v.NextNotice(ctx, dev, "")
		if err != nil || (n != nil) != wantNotice {
			t.Fatalf("NextNotice(%s) = %+v, %v; want a notice: %v", dev.Name, n, err, wantNotice)
		}
	}

	// Within MaxStale, an idle device's check-ins read nothing at all.
	held := service.NewDeviceView(svc, service.DeviceViewOptions{MaxStale: time.Hour})
	check(held, d1, "secret-d1", false)
	before := cs.reads()
	for range 10 {
		check(held, d1, "secret-d1", false)
	}
	if after := cs.reads(); after != before {
		t.Fatalf("idle check-ins read the store: (GetDevice, ListTasks, DeviceViewVersion) %v → %v", before, after)
	}
	if s := held.Stats(); s.Hits != 20 || s.Lookups != 22 {
		t.Fatalf("stats %+v, want 20 hits of 22 lookups", s)
	}

	// With every check-in reading the version, each change the view
	// remembers something about shows at once.
	live := service.NewDeviceView(svc, service.DeviceViewOptions{MaxStale: time.Nanosecond})
	check(live, d1, "secret-d1", false)
	check(live, ref("d2"), "secret-d2", false)
	before = cs.reads()
	check(live, d1, "secret-d1", false)
	if after := cs.reads(); after[0] != before[0] || after[1] != before[1] || after[2] != before[2]+2 {
		t.Fatalf("idle check-in with an unchanged version: reads %v → %v, want only 2 version readings", before, after)
	}

	// A job that devices pull: its task makes d1's next check-in a notice.
	pkg, err := svc.CreatePackage(ctx, p, ota.Package{ProductKey: rolloutProduct, Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := svc.CreateJob(ctx, p, ota.Job{PackageID: pkg.ID, Target: ota.Target{Devices: []string{"d1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		v, err := svc.GetJob(ctx, p, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Job.Materialized {
			break
		}
		if i == 100 {
			t.Fatal("the job was not materialized after 100 ticks")
		}
		if _, err := svc.Advance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := svc.NextNotice(ctx, d1, "")
	if err != nil || direct == nil {
		t.Fatalf("the service itself has no notice for d1: %v, %v", direct, err)
	}
	check(live, d1, "secret-d1", true)
	check(live, ref("d2"), "secret-d2", false)

	// Sightings: one store call per device and half of the resolution
	// (15 s), and the stored sighting is never more than 30 s behind.
	seenAt := func(name string) time.Time {
		t.Helper()
		d, err := st.GetDevice(ctx, rolloutProduct, name)
		if err != nil {
			t.Fatal(err)
		}
		return d.LastSeen
	}
	t0 := rolloutT0.Add(time.Hour)
	clock.Set(t0)
	calls := cs.seen.Load()
	for _, after := range []time.Duration{0, time.Second, 14 * time.Second} {
		clock.Set(t0.Add(after))
		if err := held.DeviceSeen(ctx, ref("d2")); err != nil {
			t.Fatal(err)
		}
	}
	if got := cs.seen.Load() - calls; got != 1 {
		t.Fatalf("3 polls within 15 s made %d store calls, want 1", got)
	}
	if got := seenAt("d2"); !got.Equal(t0) {
		t.Fatalf("d2 last seen %v, want %v", got, t0)
	}
	clock.Set(t0.Add(15 * time.Second)) // the view asks again; the store's sighting is fresh enough
	if err := held.DeviceSeen(ctx, ref("d2")); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(29 * time.Second))
	if err := held.DeviceSeen(ctx, ref("d2")); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(30 * time.Second)) // 30 s since the stored sighting: written again
	if err := held.DeviceSeen(ctx, ref("d2")); err != nil {
		t.Fatal(err)
	}
	if got := cs.seen.Load() - calls; got != 3 {
		t.Fatalf("polls at 0, 1, 14, 15, 29, 30 s made %d store calls, want 3 (0, 15, 30 s)", got)
	}
	if got, want := seenAt("d2"), t0.Add(30*time.Second); !got.Equal(want) {
		t.Fatalf("d2 last seen %v, want %v", got, want)
	}
	if s := held.Stats(); s.SeenSkips != 3 {
		t.Fatalf("stats %+v, want 3 sightings answered from memory", s)
	}

	// A deleted device no longer authenticates.
	if err := st.DeleteDevice(ctx, rolloutProduct, "d2"); err != nil {
		t.Fatal(err)
	}
	if _, err := live.DeviceForAuth(ctx, ref("d2")); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("DeviceForAuth of a deleted device = %v, want not found", err)
	}
}
