package service_test

import (
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Jobs targeting attributes and tags take the devices carrying every pair:
// a static job at materialization, a dynamic one also later, when a device
// relabelled to match reports its version.
func TestJobTargetsLabels(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	r.devices("d", 3, "1.0")
	set := func(name string, attrs, tags map[string]string) {
		t.Helper()
		if _, err := r.svc.SetDeviceLabels(r.ctx, r.p, rolloutProduct, name, attrs, tags); err != nil {
			t.Fatal(err)
		}
	}
	set("d-0000", map[string]string{"region": "north"}, map[string]string{"site": "a"})
	set("d-0001", map[string]string{"region": "north"}, nil)
	set("d-0002", map[string]string{"region": "south"}, map[string]string{"site": "a"})
	pkg := r.pkg(nil)
	st := r.job(pkg, func(j *ota.Job) {
		j.Target = ota.Target{Attributes: map[string]string{"region": "north"}, Tags: map[string]string{"site": "a"}}
	})
	r.tickUntilMaterialized(st.ID)
	if got := r.taskDevices(st.ID); len(got) != 1 || got[0] != "d-0000" {
		t.Fatalf("static job by labels: tasks of %v, want [d-0000]", got)
	}
	r.reportVersion("d-0000", pkg.Version) // done with the static job

	pkg2 := r.pkg(func(p *ota.Package) { p.Version = "3.0"; p.Name = "second" })
	dyn := r.job(pkg2, func(j *ota.Job) {
		j.Selection = ota.SelectDynamic
		j.Target = ota.Target{Tags: map[string]string{"site": "b"}}
	})
	r.tickUntilMaterialized(dyn.ID)
	if got := r.taskDevices(dyn.ID); len(got) != 0 {
		t.Fatalf("dynamic job by tag site=b: tasks of %v, want none", got)
	}
	set("d-0001", nil, map[string]string{"site": "b"})
	r.reportVersion("d-0001", "1.0")
	if got := r.taskDevices(dyn.ID); len(got) != 1 || got[0] != "d-0001" {
		t.Fatalf("dynamic job after relabelling d-0001: tasks of %v, want [d-0001]", got)
	}

	// A target mixing labels with another chooser, or a bad label, is refused.
	for _, tg := range []ota.Target{
		{Groups: []string{"g1"}, Tags: map[string]string{"site": "a"}},
		{Attributes: map[string]string{"bad key!": "x"}},
	} {
		if _, err := r.svc.CreateJob(r.ctx, r.p, ota.Job{PackageID: pkg2.ID, Target: tg}); ota.ErrorCode(err) != ota.CodeInvalid {
			t.Fatalf("target %+v: %v, want CodeInvalid", tg, err)
		}
	}
}
