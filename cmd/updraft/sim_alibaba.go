package main

// `updraft sim --dialect alibaba`: the fleet speaks Alibaba's Alink OTA
// device protocol (mqtt.AlinkDevice) instead of Updraft's own. Devices are
// named, keyed and created exactly as the native simulator does
// (internal/sim); on the wire they are {name}&{product}.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
)

// alibabaDevice is an Alink device in the fleet.
type alibabaDevice struct {
	*mqtt.AlinkDevice
	f     *fleet
	start string
}

func (d alibabaDevice) Name() string { return d.DeviceName }

func (d alibabaDevice) Upgraded() bool { return d.Running() != d.start }

func (d alibabaDevice) Failed() bool { return d.FailStep < 0 && d.f.wasNotified(d.DeviceName) }

func runAlibabaSim(ctx context.Context, cfg sim.Config, timeout time.Duration, stderr io.Writer) error {
	switch {
	case cfg.MQTT == "" || cfg.Product == "" || cfg.Count <= 0 || cfg.Version == "":
		return errors.New("--dialect alibaba needs --mqtt, --product, --count and --version")
	case cfg.Transport != "" && cfg.Transport != "mqtt":
		return errors.New("--dialect alibaba devices use MQTT only: drop --transport")
	case cfg.Module != "" && cfg.Module != ota.DefaultModule:
		return errors.New("--dialect alibaba devices upgrade the default module only: drop --module")
	case cfg.Interrupt || cfg.FailAttempts != 0:
		return errors.New("--interrupt and --fail-attempts are not supported with --dialect alibaba")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sim-" // as internal/sim names them
	}
	seed, err := seedOf(cfg)
	if err != nil {
		return err
	}
	if cfg.Create {
		if err := createVendorFleet(ctx, cfg, seed, ota.ProtocolAlibaba); err != nil {
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
		d := &mqtt.AlinkDevice{ProductKey: cfg.Product, DeviceName: name, Secret: sim.Secret(seed, cfg.Product, name),
			Broker: cfg.MQTT, Version: cfg.Version, HTTP: hc}
		switch f.plan[i] {
		case sim.FailDownload:
			d.FailStep = -2
		case sim.FailInstall:
			d.FailStep = -4
		}
		d.OnNotice = func(mqtt.AlinkUpgrade) { f.noticed(name) }
		f.devices = append(f.devices, alibabaDevice{AlinkDevice: d, f: f, start: cfg.Version})
	}
	fmt.Fprintf(stderr, "sim: %d Alibaba (Alink) devices of %s on %s\n", cfg.Count, cfg.Product, cfg.Version)
	return f.run(ctx, cfg, timeout, stderr)
}
