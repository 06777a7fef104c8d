package main

// `updraft sim --dialect huawei`: the fleet speaks Huawei IoTDA's device
// protocol (huaweiiotda.SimDevice) instead of Updraft's own. Devices are
// named, keyed and created exactly as the native simulator does (internal/sim),
// so the same fleet can be run either way; their Huawei device ids are
// {product}_{name}.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
)

// huaweiFleet counts what the simulated Huawei devices do.
type huaweiFleet struct {
	devices   []*huaweiiotda.SimDevice
	plan      []sim.Behaviour
	start     string
	connected atomic.Int64
	connErrs  atomic.Int64
	notified  atomic.Int64 // devices that received an upgrade notice
	seen      sync.Map     // device id → true once notified
}

func (f *huaweiFleet) stats() (online, upgraded, failed int64) {
	for i, d := range f.devices {
		if f.plan[i] == sim.Offline {
			continue
		}
		online++
		_, notified := f.seen.Load(d.DeviceID)
		switch fw, _ := d.Versions(); {
		case fw != f.start:
			upgraded++
		case notified && d.FailCode != 0:
			failed++
		}
	}
	return online, upgraded, failed
}

func runHuaweiSim(ctx context.Context, cfg sim.Config, timeout time.Duration, stderr io.Writer) error {
	switch {
	case cfg.MQTT == "" || cfg.Product == "" || cfg.Count <= 0 || cfg.Version == "":
		return errors.New("--dialect huawei needs --mqtt, --product, --count and --version")
	case cfg.Transport != "" && cfg.Transport != "mqtt":
		return errors.New("--dialect huawei devices use MQTT only: drop --transport")
	case cfg.Module != "" && cfg.Module != ota.DefaultModule:
		return errors.New("--dialect huawei devices upgrade the default module only: drop --module")
	case cfg.Interrupt || cfg.FailAttempts != 0:
		return errors.New("--interrupt and --fail-attempts are not supported with --dialect huawei")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim-" // as internal/sim names them
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	seed := cfg.SecretSeed
	if seed == "" {
		seed = cfg.KeySecret
	}
	if seed == "" {
		return errors.New("device secrets are derived from --secret-seed or the --key secret: set one")
	}
	if cfg.Create {
		if err := createHuaweiFleet(ctx, cfg, seed); err != nil {
			return err
		}
	}
	f := &huaweiFleet{plan: sim.Plan(cfg.Count, cfg.Offline, cfg.FailDownload, cfg.FailInstall), start: cfg.Version}
	for i := range cfg.Count {
		name := cfg.Name(i)
		d := &huaweiiotda.SimDevice{
			DeviceID:  huaweiiotda.DeviceID(cfg.Product, name),
			Secret:    sim.Secret(seed, cfg.Product, name),
			Broker:    cfg.MQTT,
			FwVersion: cfg.Version,
		}
		switch f.plan[i] {
		case sim.FailDownload:
			d.FailCode = 6 // download timed out
		case sim.FailInstall:
			d.FailCode = 10 // installation failed
		}
		d.OnEvent = func(ev huaweiiotda.Event) {
			if ev.EventType == huaweiiotda.EventFirmware || ev.EventType == huaweiiotda.EventSoftware {
				if _, loaded := f.seen.LoadOrStore(d.DeviceID, true); !loaded {
					f.notified.Add(1)
				}
			}
		}
		f.devices = append(f.devices, d)
	}
	fmt.Fprintf(stderr, "sim: %d Huawei-protocol devices of %s on %s\n", cfg.Count, cfg.Product, cfg.Version)

	// Connect at --connect-rate, in the background.
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
					cfg.Logger.Warn("device did not connect", "device", d.DeviceID, "err", err)
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

// createHuaweiFleet registers the product and the devices that do not exist
// yet, with the secrets internal/sim derives (so either simulator can run the
// fleet later).
func createHuaweiFleet(ctx context.Context, cfg sim.Config, seed string) error {
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	c := client.New(cfg.Server, cfg.KeyID, cfg.KeySecret, client.WithHTTPClient(hc), client.WithUserAgent("updraft-sim"))
	if _, err := c.GetProduct(ctx, cfg.Product); client.IsNotFound(err) {
		if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: cfg.Product, Name: cfg.Product, Protocol: "huawei"}); err != nil && !client.IsConflict(err) {
			return fmt.Errorf("creating product %s: %w", cfg.Product, err)
		}
	} else if err != nil {
		return fmt.Errorf("looking up product %s: %w", cfg.Product, err)
	}
	for i := range cfg.Count {
		name := cfg.Name(i)
		_, err := c.CreateDevice(ctx, cfg.Product, client.DeviceCreate{Name: name, Secret: sim.Secret(seed, cfg.Product, name)})
		if err != nil && !client.IsConflict(err) {
			return fmt.Errorf("creating device %s: %w", name, err)
		}
	}
	return nil
}
