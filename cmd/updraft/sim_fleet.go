package main

// The fleet loop shared by the vendor-protocol simulators (sim_huawei.go,
// sim_enos.go): connect the online devices at --connect-rate, print a
// summary line every 5 s, and end when every online device has upgraded or
// failed as planned, at --timeout, or on Ctrl-C.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/updraft-ota/updraft/internal/sim"
)

// fleetDevice is one simulated vendor device.
type fleetDevice interface {
	Connect(ctx context.Context) error
	Close()
	Name() string
	// Upgraded: it runs a version other than the one it started on.
	Upgraded() bool
	// Failed: it was notified and failed as planned.
	Failed() bool
}

type fleet struct {
	devices   []fleetDevice
	plan      []sim.Behaviour
	connected atomic.Int64
	connErrs  atomic.Int64
	notified  atomic.Int64 // devices that received an upgrade notice
	seen      sync.Map     // name → true once notified
}

// noticed counts a device's first notice.
func (f *fleet) noticed(name string) {
	if _, loaded := f.seen.LoadOrStore(name, true); !loaded {
		f.notified.Add(1)
	}
}

func (f *fleet) wasNotified(name string) bool { _, ok := f.seen.Load(name); return ok }

func (f *fleet) stats() (online, upgraded, failed int64) {
	for i, d := range f.devices {
		if f.plan[i] == sim.Offline {
			continue
		}
		online++
		switch {
		case d.Upgraded():
			upgraded++
		case d.Failed():
			failed++
		}
	}
	return online, upgraded, failed
}

// seedOf is the seed device secrets derive from, as internal/sim has it.
func seedOf(cfg sim.Config) (string, error) {
	if cfg.SecretSeed != "" {
		return cfg.SecretSeed, nil
	}
	if cfg.KeySecret != "" {
		return cfg.KeySecret, nil
	}
	return "", errors.New("device secrets are derived from --secret-seed or the --key secret: set one")
}

func (f *fleet) run(ctx context.Context, cfg sim.Config, timeout time.Duration, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	rate := cfg.ConnectRate
	if rate <= 0 {
		rate = 1000
	}
	var wg sync.WaitGroup
	defer func() {
		for _, d := range f.devices {
			d.Close()
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, d := range f.devices {
			if f.plan[i] == sim.Offline {
				continue
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			if err := d.Connect(ctx); err != nil {
				f.connErrs.Add(1)
				if cfg.Logger != nil {
					cfg.Logger.Warn("device did not connect", "device", d.Name(), "err", err)
				}
				continue
			}
			f.connected.Add(1)
		}
	}()
	defer wg.Wait()

	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	began := time.Now()
	line := func() {
		online, up, failed := f.stats()
		fmt.Fprintf(stderr, "devices %d online %d connected %d (errors %d) notified %d upgraded %d failed %d  %s\n",
			cfg.Count, online, f.connected.Load(), f.connErrs.Load(), f.notified.Load(), up, failed, time.Since(began).Round(time.Second))
	}
	show := time.NewTicker(5 * time.Second)
	defer show.Stop()
	check := time.NewTicker(200 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-show.C:
			line()
		case <-check.C:
			if online, up, failed := f.stats(); online > 0 && up+failed == online {
				line()
				return nil
			}
		case <-deadline:
			line()
			online, up, failed := f.stats()
			return fmt.Errorf("timed out after %s: %d of %d online devices have no final outcome", timeout, online-up-failed, online)
		case <-ctx.Done():
			line()
			return errors.New("interrupted")
		}
	}
}
