package storetest

import (
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func testDeviceSetGroups(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1", Groups: []string{"old"}})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d2", Groups: []string{"old"}})
	mustOK(t, s.SetDeviceGroups(ctx, "pk1", "d1", []string{"beta", "eu"}), "SetDeviceGroups")
	got, err := s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	wantEqual(t, []string{"beta", "eu"}, got.Groups, "groups after SetDeviceGroups")
	ds, _, err := s.ListDevices(ctx, store.DeviceFilter{ProductKey: "pk1", Groups: []string{"old"}}, store.Page{}, false)
	mustOK(t, err, "ListDevices by the old group")
	if len(ds) != 1 || ds[0].Name != "d2" {
		t.Fatalf("devices in the old group after regrouping d1: %v", ds)
	}
	mustOK(t, s.SetDeviceGroups(ctx, "pk1", "d1", nil), "SetDeviceGroups to none")
	got, err = s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	if len(got.Groups) != 0 {
		t.Fatalf("groups after clearing: %v", got.Groups)
	}
	wantCode(t, s.SetDeviceGroups(ctx, "pk1", "ghost", []string{"x"}), ota.CodeNotFound, "SetDeviceGroups of a missing device")
}

func testProductDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1", Versions: map[string]string{"default": "1"}})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk2", Name: "d1"})
	pkg := mustPackage(t, s, newPackage("acme", "pk1", "fw", "2.0", base))
	other := mustPackage(t, s, newPackage("acme", "pk2", "fw2", "2.0", base.Add(time.Second)))
	job := mustJob(t, s, newJob("acme", pkg.ID, "pk1", base))
	mustInsert(t, s, newTask(job, "d1", ota.TaskQueued))

	// Refused while a job of the product is unfinished; nothing removed.
	wantCode(t, s.DeleteProduct(ctx, "acme", "pk1"), ota.CodeConflict, "DeleteProduct with a planned job")
	if _, err := s.GetDevice(ctx, "pk1", "d1"); err != nil {
		t.Fatalf("a refused DeleteProduct removed a device: %v", err)
	}
	// Another tenant cannot delete it.
	wantCode(t, s.DeleteProduct(ctx, "other", "pk2"), ota.CodeNotFound, "DeleteProduct of another tenant's product")

	job.State = ota.JobCanceled
	mustOK(t, s.UpdateJob(ctx, job, ota.JobPlanned), "UpdateJob")
	mustOK(t, s.DeleteProduct(ctx, "acme", "pk1"), "DeleteProduct")
	_, err := s.GetProduct(ctx, "acme", "pk1")
	wantCode(t, err, ota.CodeNotFound, "GetProduct after delete")
	_, err = s.GetDevice(ctx, "pk1", "d1")
	wantCode(t, err, ota.CodeNotFound, "device after its product's delete")
	_, err = s.GetPackage(ctx, "acme", pkg.ID)
	wantCode(t, err, ota.CodeNotFound, "package after its product's delete")
	_, err = s.GetJob(ctx, "acme", job.ID)
	wantCode(t, err, ota.CodeNotFound, "job after its product's delete")
	tasks, _, err := s.ListTasks(ctx, store.TaskFilter{JobID: job.ID}, store.Page{}, false)
	mustOK(t, err, "ListTasks")
	if len(tasks) != 0 {
		t.Fatalf("tasks of a deleted product's job remain: %v", tasks)
	}
	// The other product is untouched.
	if _, err := s.GetDevice(ctx, "pk2", "d1"); err != nil {
		t.Fatalf("DeleteProduct pk1 removed a device of pk2: %v", err)
	}
	if _, err := s.GetPackage(ctx, "acme", other.ID); err != nil {
		t.Fatalf("DeleteProduct pk1 removed a package of pk2: %v", err)
	}
	wantCode(t, s.DeleteProduct(ctx, "acme", "pk1"), ota.CodeNotFound, "DeleteProduct twice")
	// The key is free again, and the new product inherits nothing.
	mustProduct(t, s, "acme", "pk1", "again")
	ps, _, err := s.ListPackages(ctx, store.PackageFilter{TenantID: "acme", ProductKey: "pk1"}, store.Page{})
	mustOK(t, err, "ListPackages")
	if len(ps) != 0 {
		t.Fatalf("a recreated product inherited packages %v", ps)
	}
}
