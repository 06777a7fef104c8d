package service_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/postgres"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// afterGetPackage runs hook once, right after the first GetPackage: the
// moment between CreateJob's checks of the package and the job's write.
type afterGetPackage struct {
	store.Store
	hook func()
}

func (a *afterGetPackage) GetPackage(ctx context.Context, tenantID, id string) (ota.Package, error) {
	p, err := a.Store.GetPackage(ctx, tenantID, id)
	if h := a.hook; h != nil {
		a.hook = nil
		h()
	}
	return p, err
}

// TestPackageDeletedWhileJobIsCreated: a package deleted after CreateJob
// read it but before the job is stored leaves no job on a deleted package:
// the store checks the package in the job's own transaction.
func TestPackageDeletedWhileJobIsCreated(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	pkg := r.pkg(nil)
	hooked := &afterGetPackage{Store: r.st}
	racing := service.New(hooked, r.blobs, r.clock, r.rec, quietLog, r.opts)
	hooked.hook = func() {
		if err := r.svc.DeletePackage(r.ctx, r.p, pkg.ID); err != nil {
			t.Errorf("delete while the job is being created: %v", err)
		}
	}
	_, err := racing.CreateJob(r.ctx, r.p, ota.Job{PackageID: pkg.ID, Target: ota.Target{Devices: []string{"d-0000", "d-0001"}}, NeedPush: true})
	errCode(t, err, ota.CodeNotFound, "package")
	jobs, _, err := r.svc.ListJobs(r.ctx, r.p, store.JobFilter{PackageID: pkg.ID}, store.Page{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("jobs on the deleted package: %v, %v", jobs, err)
	}
	if tasks, _, _ := r.svc.ListTasks(r.ctx, r.p, store.TaskFilter{Devices: []string{"d-0000"}}, store.Page{}); len(tasks) != 0 {
		t.Fatalf("tasks left by the refused job: %v", tasks)
	}

	// The other order: a job that exists keeps its package.
	pkg2 := r.pkg(nil)
	r.job(pkg2, nil)
	errCode(t, r.svc.DeletePackage(r.ctx, r.p, pkg2.ID), ota.CodeConflict, "is used by job")
}

// TestVerifyJobsCreatedTogether: a second verify job created between the
// first one's checks and its write is refused; one package, one
// verification.
func TestVerifyJobsCreatedTogether(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 2, "1.0")
	pkg := r.pkg(func(p *ota.Package) { p.NeedVerify = true })
	verify := func(dev string) ota.Job {
		return ota.Job{PackageID: pkg.ID, Type: ota.JobVerify, Target: ota.Target{Devices: []string{dev}}, NeedPush: true}
	}
	hooked := &afterGetPackage{Store: r.st}
	racing := service.New(hooked, r.blobs, r.clock, r.rec, quietLog, r.opts)
	hooked.hook = func() {
		if _, err := r.svc.CreateJob(r.ctx, r.p, verify("d-0001")); err != nil {
			t.Errorf("the first verify job: %v", err)
		}
	}
	_, err := racing.CreateJob(r.ctx, r.p, verify("d-0000"))
	errCode(t, err, ota.CodeConflict, "verif")
	jobs, _, err := r.svc.ListJobs(r.ctx, r.p, store.JobFilter{PackageID: pkg.ID}, store.Page{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d verify jobs on one package, want 1 (%v)", len(jobs), err)
	}
}

// TestVerifyJobsConcurrentPostgres: 20 verify jobs created at once on one
// package through two connection pools (two replicas): exactly one passes.
func TestVerifyJobsConcurrentPostgres(t *testing.T) {
	dsn := postgres.TestSchemaDSN(t, testenv.PostgresDSN(t))
	ctx := context.Background()
	var svcs []*service.Service
	clock := &stepClock{t: rolloutT0}
	for i := 0; i < 2; i++ {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "acme"}); err != nil {
				t.Fatal(err)
			}
		}
		r := newRolloutEnv(t, service.Options{}) // for its blob store only
		svcs = append(svcs, service.New(st, r.blobs, clock, &recordingNotifier{}, quietLog, service.Options{}))
	}
	p := service.Principal{TenantID: "acme"}
	if _, err := svcs[0].CreateProduct(ctx, p, ota.Product{Key: rolloutProduct, Name: "P"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := svcs[0].CreateDevice(ctx, p, ota.Device{ProductKey: rolloutProduct, Name: fmt.Sprintf("d-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	pkg, err := svcs[0].CreatePackage(ctx, p, ota.Package{ProductKey: rolloutProduct, Name: "fw", Version: "2.0", NeedVerify: true},
		"fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, results[i] = svcs[i%2].CreateJob(ctx, p, ota.Job{PackageID: pkg.ID, Type: ota.JobVerify,
				Target: ota.Target{Devices: []string{fmt.Sprintf("d-%02d", i)}}, NeedPush: true})
		}(i)
	}
	wg.Wait()
	passed := 0
	for _, err := range results {
		switch {
		case err == nil:
			passed++
		case ota.ErrorCode(err) != ota.CodeConflict:
			t.Errorf("a losing verify job: %v, want CodeConflict", err)
		}
	}
	if passed != 1 {
		t.Fatalf("%d of %d concurrent verify jobs passed, want exactly 1", passed, n)
	}
}
