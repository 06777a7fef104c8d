package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/ota"
)

// TestLifecycleCLI: job create --held / start / update, package update,
// cancel-tasks by state and id, device cancel-tasks; and the CLI's own
// refusals before any call.
func TestLifecycleCLI(t *testing.T) {
	clearClientEnv(t)
	base, svc := startAPIWithEngine(t)
	conn := []string{"--server", base, "--key", cliKeyID + ":" + cliSecret}
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, conn...)...)
		if err != nil {
			t.Fatalf("updraft %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, err := runCLI(t, append(args, conn...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("updraft %s: %v (%s), want an error about %q", strings.Join(args, " "), err, out, want)
		}
	}
	run("product", "create", "thermo", "--name", "Thermostat")
	for _, d := range []string{"d1", "d2", "d3"} {
		run("device", "create", "thermo", d)
		ref := ota.DeviceRef{ProductKey: "thermo", Name: d}
		if err := svc.DeviceConnected(context.Background(), ref, true); err != nil {
			t.Fatal(err)
		}
		if err := svc.ReportVersion(context.Background(), ref, "", "1.0"); err != nil {
			t.Fatal(err)
		}
	}
	fw := filepath.Join(t.TempDir(), "fw.bin")
	if err := writeFile(fw, "firmware"); err != nil {
		t.Fatal(err)
	}
	var pkg client.Package
	if err := json.Unmarshal([]byte(run("package", "upload", fw, "--product", "thermo", "--version", "2.0", "--output", "json")), &pkg); err != nil {
		t.Fatal(err)
	}
	if out := run("package", "update", pkg.ID, "--description", "night build", "--custom-info", "reboot"); !strings.Contains(out, "night build") {
		t.Fatalf("package update:\n%s", out)
	}
	fails("nothing to change", "package", "update", pkg.ID)

	var job client.Job
	out := run("job", "create", "--package", pkg.ID, "--device", "d1", "--device", "d2", "--device", "d3", "--held",
		"--max-concurrency", "1", "--output", "json")
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if job.State != "paused" {
		t.Fatalf("created --held: %s", job.State)
	}
	if out := run("job", "start", job.ID); !strings.Contains(out, "running") {
		t.Fatalf("start:\n%s", out)
	}
	if err := json.Unmarshal([]byte(run("job", "update", job.ID, "--max-concurrency", "2", "--timeout", "30m", "--output", "json")), &job); err != nil {
		t.Fatal(err)
	}
	if job.MaxConcurrency != 2 || job.TimeoutSeconds != 1800 {
		t.Fatalf("after update: concurrency %d timeout %d", job.MaxConcurrency, job.TimeoutSeconds)
	}
	fails("nothing to change", "job", "update", job.ID)
	fails("invalid", "job", "update", job.ID, "--timeout", "1m") // below the 5 min floor: the server refuses
	fails("not a task id", "job", "cancel-tasks", job.ID, "--task-id", "x")
	fails("one of them", "job", "cancel-tasks", job.ID, "d1", "--state", "queued")

	if out := run("job", "cancel-tasks", job.ID, "--state", "queued", "--state", "notified", "--state", "waiting"); !strings.Contains(out, "3 tasks canceled") {
		t.Fatalf("cancel by state:\n%s", out)
	}
	run("job", "retry", job.ID, "--all")
	if out := run("device", "cancel-tasks", "thermo", "d2"); !strings.Contains(out, "1 tasks of device thermo/d2 canceled") {
		t.Fatalf("device cancel-tasks:\n%s", out)
	}
}
