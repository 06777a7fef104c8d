package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// TestEnOSSim runs `updraft sim --dialect enos` against a real server: the
// devices are created on an enos product, connect with EnOS credentials,
// inform their version, and a job upgrades them (HTTP login and
// enos-connect:// download), one failing its install as injected.
func TestEnOSSim(t *testing.T) {
	srv := server.StartForTest(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	creds, _ := srv.Credentials()
	// Before the server's shutdown: an unused dialed connection holds it 5 s.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	svc := srv.Service()
	p := service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cfg := sim.Config{
		Server: srv.URL(), KeyID: creds.AccessKeyID, KeySecret: creds.SecretAccessKey, MQTT: srv.MQTTAddr(),
		Product: "enos-sim", Prefix: "sim-", Count: 4, Version: "1.0", Create: true, FailInstall: 0.25, ConnectRate: 1000,
	}
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runEnOSSim(ctx, cfg, time.Minute, &stderr) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		n := 0
		for i := range cfg.Count {
			if d, err := svc.GetDevice(ctx, p, cfg.Product, cfg.Name(i)); err == nil && d.Version("") == "1.0" {
				n++
			}
		}
		if n == cfg.Count {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d devices reported 1.0\n%s", n, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if proto, err := svc.ProductProtocol(ctx, cfg.Product); err != nil || proto != ota.ProtocolEnOS {
		t.Fatalf("product protocol = %q, %v; want enos", proto, err)
	}
	if _, err := svc.PutObject(ctx, p, "sim-bucket", "v2.bin", strings.NewReader("simulated EnOS image 2.0")); err != nil {
		t.Fatal(err)
	}
	pkg, err := svc.RegisterObject(ctx, p, ota.Package{ProductKey: cfg.Product, Name: "v2", Version: "2.0"}, "sim-bucket", "v2.bin")
	if err != nil {
		t.Fatal(err)
	}
	job, err := svc.CreateJob(ctx, p, ota.Job{PackageID: pkg.ID, Target: ota.Target{All: true}, NeedPush: true})
	if err != nil {
		t.Fatal(err)
	}
	// The engine is not started by StartForTest: tick it here.
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = svc.Advance(ctx)
			}
		}
	}()
	if err := testenv.Recv(t, done, 5*time.Minute, "the sim command to finish"); err != nil {
		t.Fatalf("sim: %v\n%s", err, stderr.String())
	}
	v, err := svc.GetJob(ctx, p, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v.Counts[ota.TaskSucceeded], v.Counts[ota.TaskFailed]); got != "3 1" {
		t.Errorf("succeeded/failed = %s, want 3 1\n%s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "upgraded 3 failed 1") {
		t.Errorf("summary: %s", stderr.String())
	}
}
