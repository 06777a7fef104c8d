// Package device is the device side of Updraft: a Go SDK for firmware,
// agents and simulators to receive over-the-air updates.
//
// A device connects over MQTT (NewMQTT: notices are pushed) or polls over
// HTTP (NewHTTP), reports the version each module runs, receives upgrade
// notices, downloads the package with resume and retry (Download), verifies
// its size, SHA-256, MD5 and sign, reports progress, installs it, and reports
// its new version — which is what completes the task on the server.
//
//	dev, err := device.NewMQTT(device.MQTTConfig{
//		Config: device.Config{Product: "thermo", Name: "t-0001", Secret: secret,
//			Versions: map[string]string{"default": "1.0.0"}},
//		Broker: "updraft.example.com:1883",
//	})
//	dev.OnNotice(func(ctx context.Context, n device.Notice) {
//		dev.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: 1, Desc: "downloading"})
//		if err := device.DownloadFile(ctx, n, "/data/update.bin"); err != nil {
//			dev.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: device.FailureStep(err), Desc: err.Error()})
//			return
//		}
//		install("/data/update.bin")
//		dev.ReportVersion(ctx, n.Module, n.Version)
//	})
//	err = dev.Start(ctx)
//
// The wire protocol (topics, JSON fields, credentials) is documented in
// package wire; devices in other languages implement the same contract.
//
// # Credentials
//
// Each device has a secret issued when it is registered. It never travels:
// the device signs "{product}&{device}|{unix ms}" with HMAC-SHA256 on every
// connection (MQTT) or request (HTTP), so the device clock must be within
// five minutes of the server's.
//
// # Duplicates
//
// A notice may arrive more than once (after a reconnect, or from both a push
// and a poll). While a notice's handler runs, further copies for the same
// task are dropped; a copy for a task whose handler finished is delivered
// again only if it is a new attempt (the server retrying the task).
package device

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Notice is an upgrade the server asks for; see wire.Notice for the fields.
type Notice = wire.Notice

// Progress is a progress report; see wire.ProgressReport. Step is 0–100, or
// negative for a failure (wire.StepDownloadFailed, StepVerifyFailed,
// StepInstallFailed, StepRejected, StepFailed).
type Progress = wire.ProgressReport

// DefaultModule is the module of the whole firmware.
const DefaultModule = wire.DefaultModule

// Config identifies a device. It is embedded in MQTTConfig and HTTPConfig.
type Config struct {
	Product string // product key
	Name    string // device name
	Secret  string // device secret, from registration
	// Versions are the versions the device runs, per module ("default" for
	// the whole firmware). They are reported on every (re)connect (MQTT) or
	// at Start (HTTP); ReportVersion updates them.
	Versions map[string]string
	// Logger receives connection events (default: slog.Default()).
	Logger *slog.Logger
	// Now is the clock used to sign credentials (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Versions == nil {
		c.Versions = map[string]string{}
	}
}

// Handler handles one notice. It runs in its own goroutine; ctx ends when
// the client is closed.
type Handler func(ctx context.Context, n Notice)

// Client is what both transports offer.
type Client interface {
	// OnNotice sets the notice handler; call it before Start.
	OnNotice(h Handler)
	// Start connects (MQTT) or starts polling (HTTP) and reports the
	// configured versions.
	Start(ctx context.Context) error
	// ReportVersion reports the version a module now runs.
	ReportVersion(ctx context.Context, module, version string) error
	// ReportProgress reports progress on a task.
	ReportProgress(ctx context.Context, p Progress) error
	// Check asks the server now whether an update waits for module (nil if
	// none). The answer is returned, not passed to the handler.
	Check(ctx context.Context, module string) (*Notice, error)
	// Close disconnects and waits for running handlers to return.
	Close() error
}

var (
	_ Client = (*MQTT)(nil)
	_ Client = (*HTTP)(nil)
)

// dispatcher runs notice handlers and drops duplicates.
type dispatcher struct {
	mu      sync.Mutex
	handler Handler
	running map[int64]Notice // task → the notice being handled
	// next holds, per task, a newer attempt that arrived while an older one
	// was still being handled (the server retried as soon as the device
	// reported the failure): it runs when the older handler returns.
	next   map[int64]Notice
	done   map[taskAttempt]bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type taskAttempt struct {
	task    int64
	attempt int
}

func newDispatcher() *dispatcher {
	d := &dispatcher{running: map[int64]Notice{}, next: map[int64]Notice{}, done: map[taskAttempt]bool{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

func (d *dispatcher) setHandler(h Handler) {
	d.mu.Lock()
	d.handler = h
	d.mu.Unlock()
}

// busy reports whether a handler runs for a notice on module.
func (d *dispatcher) busy(mod string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.running {
		if module(n.Module) == mod {
			return true
		}
	}
	return false
}

// deliver runs the handler for n unless it duplicates one running or done,
// and reports whether it did.
func (d *dispatcher) deliver(n Notice) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handler == nil || d.ctx.Err() != nil {
		return false
	}
	if n.Attempt > 0 && d.done[taskAttempt{n.TaskID, n.Attempt}] {
		return false
	}
	if cur, ok := d.running[n.TaskID]; ok {
		// A copy of the running attempt is a duplicate; a newer attempt waits
		// for the running one to return instead of being lost.
		if n.Attempt > cur.Attempt && cur.Attempt > 0 && n.Attempt > d.next[n.TaskID].Attempt {
			d.next[n.TaskID] = n
			return true
		}
		return false
	}
	d.start(n)
	return true
}

// start runs the handler for n; d.mu is held.
func (d *dispatcher) start(n Notice) {
	d.running[n.TaskID] = n
	h := d.handler
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		h(d.ctx, n)
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.running, n.TaskID)
		if n.Attempt > 0 {
			d.done[taskAttempt{n.TaskID, n.Attempt}] = true
		}
		if nn, ok := d.next[n.TaskID]; ok {
			delete(d.next, n.TaskID)
			if d.ctx.Err() == nil && !d.done[taskAttempt{nn.TaskID, nn.Attempt}] {
				d.start(nn)
			}
		}
	}()
}

func (d *dispatcher) close() {
	d.cancel()
	d.wg.Wait()
}

func module(m string) string {
	if m == "" {
		return DefaultModule
	}
	return m
}

// FailureStep maps an error from Download to the progress step to report:
// StepVerifyFailed for a package that does not match the notice,
// StepDownloadFailed otherwise.
func FailureStep(err error) int {
	if isVerify(err) {
		return wire.StepVerifyFailed
	}
	return wire.StepDownloadFailed
}
