// Package e2e runs Updraft end to end: the real server in-process
// (server.StartForTest: SQLite, file blobs, HTTP and MQTT on free ports),
// the real device SDK as devices (through the fleet simulator), a real
// broker (the embedded one, or Mosquitto), and the operator's side through
// the native API client.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/sim"
)

// env is one server under test and the operator's view of it.
type env struct {
	t      *testing.T
	srv    *server.Server
	api    *client.Client
	keyID  string
	secret string
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// start runs a server with the embedded MQTT broker unless mutate says
// otherwise.
func start(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	srv := server.StartForTest(t, func(c *config.Config) {
		c.MQTTAddr = "127.0.0.1:0"
		c.RolloutInterval = 50 * time.Millisecond
		c.LogLevel = "warn" // a line per request would cost more than the devices
		if mutate != nil {
			mutate(c)
		}
	})
	return attach(t, srv)
}

func attach(t *testing.T, srv *server.Server) *env {
	t.Helper()
	creds, ok := srv.Credentials()
	if !ok {
		t.Fatal("server has no credentials")
	}
	return &env{t: t, srv: srv, keyID: creds.AccessKeyID, secret: creds.SecretAccessKey,
		api: client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)}
}

// upload registers a package of size random bytes upgrading to version.
func (e *env) upload(product, version string, size int) client.Package {
	e.t.Helper()
	content := make([]byte, size)
	rand.Read(content)
	pkg, err := e.api.UploadPackage(context.Background(), client.PackageMetadata{Product: product, Name: "fw-" + strings.ReplaceAll(version, ".", "_"), Version: version},
		"fw-"+version+".bin", bytes.NewReader(content))
	if err != nil {
		e.t.Fatal(err)
	}
	return pkg
}

// job starts an upgrade job of pkg on every device of its product.
func (e *env) job(pkg client.Package, mutate func(*client.JobCreate)) client.Job {
	e.t.Helper()
	j := client.JobCreate{PackageID: pkg.ID, Name: "e2e", Target: client.JobTarget{All: true},
		MaxConcurrency: 10_000, TimeoutSeconds: ota.MinTimeoutSeconds}
	if mutate != nil {
		mutate(&j)
	}
	job, err := e.api.CreateJob(context.Background(), j)
	if err != nil {
		e.t.Fatal(err)
	}
	return job
}

// view returns the job with its task counts.
func (e *env) view(jobID string) client.Job {
	e.t.Helper()
	j, err := e.api.GetJob(context.Background(), jobID)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// waitFor polls cond until it holds; the deadline only bounds a hung test.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, progress func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", limit, what, progress())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onlineCount counts a product's devices the server sees online.
func (e *env) onlineCount(product string) int {
	e.t.Helper()
	n := 0
	for off := 0; ; off += 1000 {
		page, err := e.api.ListDevices(context.Background(), product, client.DeviceFilter{Page: client.Page{Limit: 1000, Offset: off}})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.Online {
				n++
			}
		}
		if len(page.Items) < 1000 {
			return n
		}
	}
}

// tasks returns all of a job's tasks.
func (e *env) tasks(jobID string) []client.Task {
	e.t.Helper()
	var out []client.Task
	f := client.TaskFilter{Limit: 1000}
	for {
		page, err := e.api.ListTasks(context.Background(), jobID, f)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page.Items...)
		if page.NextAfter == 0 {
			return out
		}
		f.After = page.NextAfter
	}
}

// fleet runs a simulated fleet in the background until the test ends (or
// stop is called).
type fleet struct {
	*sim.Sim
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (e *env) fleet(cfg sim.Config) *fleet {
	e.t.Helper()
	cfg.Server = e.srv.URL()
	cfg.KeyID, cfg.KeySecret = e.keyID, e.secret
	if cfg.MQTT == "" && cfg.Transport != "http" {
		cfg.MQTT = e.srv.MQTTAddr()
	}
	if cfg.ConnectRate == 0 {
		cfg.ConnectRate = 2000
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sim.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	// Devices exist before the job, so a static job takes them all.
	if err := s.Create(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{Sim: s, cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- s.Run(ctx) }()
	e.t.Cleanup(f.stop)
	return f
}

func (f *fleet) stop() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
}

// connected waits until n devices are connected.
func (f *fleet) connected(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, 2*time.Minute, fmt.Sprintf("%d devices connected", n), func() bool { return f.Stats().Connected >= n },
		func() string { return f.Stats().String() })
}

// settled waits until no device is working on a notice.
func (f *fleet) settled(t *testing.T) {
	t.Helper()
	waitFor(t, time.Minute, "the devices to finish", func() bool { return f.Busy() == 0 }, func() string { return f.Stats().String() })
}

// counts summarises tasks by state, attempts and reason.
func counts(tasks []client.Task) (byState map[string]int, byAttempts map[int]int, byReason map[string]int) {
	byState, byAttempts, byReason = map[string]int{}, map[int]int{}, map[string]int{}
	for _, t := range tasks {
		byState[t.State]++
		byAttempts[t.Attempts]++
		if t.Reason != "" {
			byReason[t.Reason]++
		}
	}
	return
}
