package storetest

import (
	"fmt"
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

// Device attributes and tags: written at creation or replaced later, read
// back, and filtered on (every pair of the filter must be on the device).
func testDeviceLabels(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "a",
		Attributes: map[string]string{"region": "north", "hw": "v2"}, Tags: map[string]string{"site": "s1"}})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "b", Attributes: map[string]string{"region": "north", "hw": "v1"}})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "c"})
	// Another product's matching device never shows up in pk1's lists.
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk2", Name: "x", Attributes: map[string]string{"region": "north"}})

	got, err := s.GetDevice(ctx, "pk1", "a")
	mustOK(t, err, "GetDevice a")
	if got.Attributes["hw"] != "v2" || got.Attributes["region"] != "north" || len(got.Attributes) != 2 || got.Tags["site"] != "s1" || len(got.Tags) != 1 {
		t.Fatalf("device a labels = %v / %v", got.Attributes, got.Tags)
	}
	if got, _ := s.GetDevice(ctx, "pk1", "c"); got.Attributes != nil || got.Tags != nil {
		t.Fatalf("device c labels = %v / %v, want nil", got.Attributes, got.Tags)
	}
	list := func(f store.DeviceFilter) []string {
		t.Helper()
		f.TenantID, f.ProductKey = "acme", "pk1"
		ds, _, err := s.ListDevices(ctx, f, store.Page{Limit: 100}, false)
		mustOK(t, err, "ListDevices")
		return deviceNames(ds)
	}
	for _, tc := range []struct {
		name string
		f    store.DeviceFilter
		want string
	}{
		{"one attribute", store.DeviceFilter{Attributes: map[string]string{"region": "north"}}, "[a b]"},
		{"two attributes, all must match", store.DeviceFilter{Attributes: map[string]string{"region": "north", "hw": "v2"}}, "[a]"},
		{"attribute value differs", store.DeviceFilter{Attributes: map[string]string{"region": "south"}}, "[]"},
		{"a tag", store.DeviceFilter{Tags: map[string]string{"site": "s1"}}, "[a]"},
		{"attribute and tag", store.DeviceFilter{Attributes: map[string]string{"hw": "v1"}, Tags: map[string]string{"site": "s1"}}, "[]"},
		{"a tag is not an attribute", store.DeviceFilter{Attributes: map[string]string{"site": "s1"}}, "[]"},
	} {
		if got := fmt.Sprint(list(tc.f)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	mustOK(t, s.SetDeviceLabels(ctx, "pk1", "b", map[string]string{"hw": "v2"}, map[string]string{"site": "s1"}), "SetDeviceLabels b")
	if got := fmt.Sprint(list(store.DeviceFilter{Attributes: map[string]string{"hw": "v2"}, Tags: map[string]string{"site": "s1"}})); got != "[a b]" {
		t.Fatalf("after relabelling b: %s, want [a b]", got)
	}
	if got := fmt.Sprint(list(store.DeviceFilter{Attributes: map[string]string{"region": "north"}})); got != "[a]" {
		t.Fatalf("b's old attributes are gone: %s, want [a]", got)
	}
	mustOK(t, s.SetDeviceLabels(ctx, "pk1", "b", nil, nil), "clear labels of b")
	if got, _ := s.GetDevice(ctx, "pk1", "b"); got.Attributes != nil || got.Tags != nil {
		t.Fatalf("cleared labels = %v / %v", got.Attributes, got.Tags)
	}
	if err := s.SetDeviceLabels(ctx, "pk1", "nobody", nil, nil); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("labels of a missing device: %v, want CodeNotFound", err)
	}
}
