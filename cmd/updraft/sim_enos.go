package main

// `updraft sim --dialect enos`: the fleet speaks EnOS's device protocol
// (enos.SimDevice: MQTT CONNECT securemode=2, /sys/{pk}/{dk}/ota/device/…,
// HTTP login and enos-connect:// download) instead of Updraft's own. Devices
// are named, keyed and created as the native simulator does (internal/sim);
// their EnOS deviceKey is the device name.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
)

// enosDevice is an EnOS SimDevice in the fleet.
type enosDevice struct {
	*enos.SimDevice
	f     *fleet
	start string
}

func (d enosDevice) Name() string { return d.DeviceKey }

func (d enosDevice) Upgraded() bool { return d.CurrentVersion() != d.start }

func (d enosDevice) Failed() bool { return d.FailStep < 0 && d.f.wasNotified(d.DeviceKey) }

func runEnOSSim(ctx context.Context, cfg sim.Config, timeout time.Duration, stderr io.Writer) error {
	switch {
	case cfg.MQTT == "" || cfg.Server == "" || cfg.Product == "" || cfg.Count <= 0 || cfg.Version == "":
		return errors.New("--dialect enos needs --mqtt, --server (devices download over HTTP), --product, --count and --version")
	case cfg.Transport != "" && cfg.Transport != "mqtt":
		return errors.New("--dialect enos devices take notices over MQTT only: drop --transport")
	case cfg.Module != "" && cfg.Module != ota.DefaultModule:
		return errors.New("--dialect enos devices upgrade the whole firmware only (EnOS has no modules): drop --module")
	case cfg.Interrupt || cfg.FailAttempts != 0:
		return errors.New("--interrupt and --fail-attempts are not supported with --dialect enos")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim-" // as internal/sim names them
	}
	seed, err := seedOf(cfg)
	if err != nil {
		return err
	}
	if cfg.Create {
		if err := createVendorFleet(ctx, cfg, seed, ota.ProtocolEnOS); err != nil {
			return err
		}
	}
	conns := cfg.DownloadConns
	if conns <= 0 {
		conns = 256
	}
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns}, Timeout: 5 * time.Minute}
	defer hc.CloseIdleConnections()
	f := &fleet{plan: sim.Plan(cfg.Count, cfg.Offline, cfg.FailDownload, cfg.FailInstall)}
	for i := range cfg.Count {
		name := cfg.Name(i)
		d := &enos.SimDevice{ProductKey: cfg.Product, DeviceKey: name, Secret: sim.Secret(seed, cfg.Product, name),
			Broker: cfg.MQTT, Server: cfg.Server, Version: cfg.Version, HTTP: hc}
		switch f.plan[i] {
		case sim.FailDownload:
			d.FailStep = -2
		case sim.FailInstall:
			d.FailStep = -4
		}
		d.OnNotice = func(enos.Firmware) { f.noticed(name) }
		f.devices = append(f.devices, enosDevice{SimDevice: d, f: f, start: cfg.Version})
	}
	fmt.Fprintf(stderr, "sim: %d EnOS-protocol devices of %s on %s\n", cfg.Count, cfg.Product, cfg.Version)
	return f.run(ctx, cfg, timeout, stderr)
}
