package service_test

import (
	"sync/atomic"

	"github.com/updraft-ota/updraft/internal/service"
	"testing"
)

func TestCreateJobWakesTheEngine(t *testing.T) {
	r := newRolloutEnv(t, service.Options{})
	var wakes atomic.Int64
	r.svc.SetEngineWake(func() { wakes.Add(1) })
	r.devices("d", 2, "1.0")
	pkg := r.pkg(nil)
	if n := wakes.Load(); n != 0 {
		t.Fatalf("%d wakes before any job", n)
	}
	r.job(pkg, nil)
	if n := wakes.Load(); n != 1 {
		t.Fatalf("%d wakes after one job was created, want 1", n)
	}
}
