package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
)

// Native devices that report one version still get software upgrades:
// software packages upgrade ota.SoftwareModule, where a device without a
// separate software version is taken to run its firmware version; the SDK
// device reports the new version under the notice's module, and the
// firmware version is left as it was. A job with source versions finds them
// by that version.
func TestSoftwareUpgradeOfSingleVersionDevices(t *testing.T) {
	e := start(t, nil)
	const n = 20
	f := e.fleet(sim.Config{Product: "app", Count: n, Version: "1.0"})
	f.connected(t, n)
	content := make([]byte, 16<<10)
	rand.Read(content)
	pkg, err := e.api.UploadPackage(context.Background(), client.PackageMetadata{Product: "app", Name: "app2", Version: "2.0", Kind: "software"},
		"app-2.0.bin", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	// Source versions too: devices without a software version are matched
	// by their firmware version (the store filter reads it the same way).
	job := e.job(pkg, func(j *client.JobCreate) { j.Target.SourceVersions = []string{"1.0"} })
	waitFor(t, 2*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
	byState, _, _ := counts(e.tasks(job.ID))
	if byState["succeeded"] != n {
		t.Fatalf("tasks by state %v; want %d succeeded", byState, n)
	}
	d, err := e.api.GetDevice(context.Background(), "app", e.tasks(job.ID)[0].Device)
	if err != nil {
		t.Fatal(err)
	}
	if d.Versions[ota.SoftwareModule] != "2.0" || d.Versions[ota.DefaultModule] != "1.0" {
		t.Errorf("versions %v; want software 2.0, firmware still 1.0", d.Versions)
	}
}
