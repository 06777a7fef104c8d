package storetest

import (
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// testDeviceViewVersion: the version replicas read instead of the tables
// moves on every change that can give a device something pending or take
// its credentials away, and stays put while nothing is written.
func testDeviceViewVersion(t *testing.T, s store.Store) {
	ctx := t.Context()
	version := func() int64 {
		t.Helper()
		v, err := s.DeviceViewVersion(ctx)
		mustOK(t, err, "DeviceViewVersion")
		return v
	}
	moved := func(before int64, what string) int64 {
		t.Helper()
		v := version()
		if v == before {
			t.Fatalf("DeviceViewVersion stayed %d after %s", v, what)
		}
		return v
	}
	mustProduct(t, s, "acme", "pk1", "one")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1", Secret: "s1"})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d2", Secret: "s2"})
	j := mustJob(t, s, newJob("acme", "pkg", "pk1", base))

	v := version()
	if again := version(); again != v {
		t.Fatalf("DeviceViewVersion %d then %d with nothing written", v, again)
	}

	mustInsert(t, s, newTask(j, "d1", ota.TaskQueued))
	moved(v, "a task was inserted")

	// A rollout's own traffic leaves it alone: a task notified, in
	// progress, failed; a device's sighting and version.
	v = version()
	task := listAll(t, s, store.TaskFilter{JobID: j.ID})[0]
	notified := task
	notified.State, notified.Attempts, notified.NotifiedAt, notified.UpdatedAt = ota.TaskNotified, 1, at(time.Minute), at(time.Minute)
	mustOK(t, s.UpdateTask(ctx, notified, ota.TaskQueued), "UpdateTask queued→notified")
	running := notified
	running.State, running.Progress, running.StartedAt, running.UpdatedAt = ota.TaskInProgress, 50, at(2*time.Minute), at(2*time.Minute)
	mustOK(t, s.UpdateTask(ctx, running, ota.TaskNotified), "UpdateTask notified→in_progress")
	failed := running
	failed.State, failed.Reason, failed.FinishedAt, failed.UpdatedAt = ota.TaskFailed, ota.ReasonInstallFailed, at(time.Hour), at(time.Hour)
	mustOK(t, s.UpdateTask(ctx, failed, ota.TaskInProgress), "UpdateTask in_progress→failed")
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "d1", at(time.Hour), at(time.Hour)), "SetDeviceSeen")
	if again := version(); again != v {
		t.Fatalf("DeviceViewVersion moved from %d to %d on task progress and a sighting", v, again)
	}
	retry := failed
	retry.State, retry.Reason, retry.FinishedAt, retry.UpdatedAt = ota.TaskQueued, ota.ReasonNone, time.Time{}, at(2*time.Hour)
	mustOK(t, s.UpdateTask(ctx, retry, ota.TaskFailed), "UpdateTask failed→queued (retry)")
	moved(v, "a failed task was retried")

	j2 := mustJob(t, s, newJob("acme", "pkg", "pk1", at(time.Second)))
	v = version()
	n, err := s.InsertTasks(ctx, []ota.Task{newTask(j2, "d2", ota.TaskQueued)})
	mustOK(t, err, "InsertTasks")
	if n != 1 {
		t.Fatalf("InsertTasks inserted %d, want 1", n)
	}
	v = moved(v, "InsertTasks")

	mustOK(t, s.DeleteDevice(ctx, "pk1", "d2"), "DeleteDevice")
	moved(v, "a device was deleted")
}
