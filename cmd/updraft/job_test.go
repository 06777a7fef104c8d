package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/ota"
)

func TestJobCLI(t *testing.T) {
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
	run("product", "create", "thermo", "--name", "Thermostat")
	for _, d := range []string{"d1", "d2"} {
		run("device", "create", "thermo", d)
		// Online on 1.0, as a connected device would be: an offline device,
		// or one without a version, waits instead of being notified.
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

	var job client.Job
	out := run("job", "create", "--package", pkg.ID, "--all", "--window", "00:00-24:00", "--utc-offset", "+08:00",
		"--retry-count", "2", "--retry-interval", "10m", "--timeout", "1h", "--tag", "wave=1", "--name", "wave 1", "--output", "json")
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if job.Schedule.Window == nil || job.Schedule.Window.UTCOffsetMinutes != 480 || job.Retry.IntervalSeconds != 600 ||
		job.TimeoutSeconds != 3600 || !job.NeedPush || job.Name != "wave 1" {
		t.Fatalf("created %s", out)
	}
	if out := run("job", "list"); !strings.Contains(out, job.ID) || !strings.Contains(out, "wave 1") {
		t.Fatalf("list:\n%s", out)
	}

	// watch follows the job to its end while the devices upgrade: they do
	// once watch has shown them notified.
	var buf lockedBuffer
	done := make(chan error)
	go func() {
		done <- watchJob(context.Background(), client.New(base, cliKeyID, cliSecret), job.ID, 5*time.Millisecond, false, &buf, io.Discard)
	}()
	waitFor(t, "watch to show both devices notified", func() bool { return strings.Contains(buf.String(), "notified=2") })
	ctx := context.Background()
	for _, d := range []string{"d1", "d2"} {
		if err := svc.ReportVersion(ctx, ota.DeviceRef{ProductKey: "thermo", Name: d}, "", "2.0"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not end with the job")
	}
	if watched := buf.String(); !strings.Contains(watched, "job "+job.ID+" completed: succeeded=2 (2/2 finished)") {
		t.Fatalf("watch output:\n%s", watched)
	}

	show := run("job", "show", job.ID)
	for _, want := range []string{"completed", "succeeded=2 (2/2 finished)", "00:00-24:00 (UTC+08:00)", "2 × after 600s"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if tasks := run("job", "tasks", job.ID, "--state", "succeeded"); !strings.Contains(tasks, "d1") || !strings.Contains(tasks, "d2") {
		t.Errorf("tasks:\n%s", tasks)
	}

	// Actions on a second job.
	pkg3 := pkg
	if err := json.Unmarshal([]byte(run("package", "upload", fw, "--product", "thermo", "--version", "3.0", "--name", "fw3", "--output", "json")), &pkg3); err != nil {
		t.Fatal(err)
	}
	out = run("job", "create", "--package", pkg3.ID, "--device", "d1", "--device", "d2", "--confirm", "--output", "json")
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tasks awaiting confirmation", func() bool {
		j, err := client.New(base, cliKeyID, cliSecret).GetJob(ctx, job.ID)
		return err == nil && j.Counts["confirm"] == 2
	})
	if out := run("job", "confirm", job.ID, "d1", "ghost"); !strings.Contains(out, "1 done, 1 refused") || !strings.Contains(out, "not_found") {
		t.Errorf("confirm:\n%s", out)
	}
	if out := run("job", "pause", job.ID); !strings.Contains(out, "paused") {
		t.Errorf("pause:\n%s", out)
	}
	if out := run("job", "resume", job.ID); !strings.Contains(out, "running") {
		t.Errorf("resume:\n%s", out)
	}
	if out := run("job", "cancel", job.ID); !strings.Contains(out, "canceled") || !strings.Contains(out, "canceled=2") {
		t.Errorf("cancel:\n%s", out)
	}
	// watch on the canceled job: JSON lines, the last one final, and exit status 3.
	out, err := runCLI(t, append([]string{"job", "watch", job.ID, "--output", "json"}, conn...)...)
	if exitCode(err) != 3 {
		t.Errorf("job watch on a canceled job: %v (exit status %d), want exit status 3", err, exitCode(err))
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var final client.Job
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || final.State != "canceled" || final.ID != job.ID {
		t.Errorf("job watch --output json printed %q (%v)", out, err)
	}
	if _, err := runCLI(t, append([]string{"job", "retry", job.ID}, conn...)...); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Errorf("retry without devices: %v", err)
	}
	if _, err := runCLI(t, append([]string{"job", "create", "--package", pkg.ID, "--all", "--window", "22:00"}, conn...)...); err == nil ||
		!strings.Contains(err.Error(), "HH:MM-HH:MM") {
		t.Errorf("bad window: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o600)
}

func TestJobCreateFlags(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	f := jobCreateFlags{in: client.JobCreate{PackageID: "p"}, verify: true, dynamic: true, start: "90m",
		finish: "2026-03-12T00:00:00+08:00", window: "22:00-06:00", utcOffset: "-05:30",
		retryInterval: 10 * time.Minute, timeout: 2 * time.Hour, noPush: true, overwrite: true, tags: []string{"a=b"}}
	in, err := f.toCreate(now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Type != "verify" || in.Selection != "dynamic" || !in.Schedule.Start.Equal(now.Add(90*time.Minute)) ||
		!in.Schedule.Finish.Equal(time.Date(2026, 3, 11, 16, 0, 0, 0, time.UTC)) ||
		*in.Schedule.Window != (client.JobWindow{From: "22:00", To: "06:00", UTCOffsetMinutes: -330}) ||
		in.Retry.IntervalSeconds != 600 || in.TimeoutSeconds != 7200 || in.NeedPush == nil || *in.NeedPush ||
		in.Overwrite != "overwrite" || len(in.Tags) != 1 {
		t.Fatalf("%+v", in)
	}
	for _, bad := range []jobCreateFlags{
		{window: "22:00"},
		{window: "22:00-06:00", utcOffset: "8h"},
		{utcOffset: "+08:00"},
		{start: "tomorrow"},
		{timeout: 1500 * time.Millisecond},
		{tags: []string{"novalue"}},
	} {
		if _, err := bad.toCreate(now); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

func TestParseUTCOffset(t *testing.T) {
	for in, want := range map[string]int{"": 0, "UTC": 0, "+08:00": 480, "-05:30": -330, "+8": 480, "480": 480, "-300": -300, "+05:45": 345} {
		got, err := parseUTCOffset(in)
		if err != nil || got != want {
			t.Errorf("parseUTCOffset(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"8h", "+08:60", "x"} {
		if _, err := parseUTCOffset(bad); err == nil {
			t.Errorf("parseUTCOffset(%q) accepted", bad)
		}
	}
}
