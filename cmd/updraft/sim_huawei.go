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
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
)

// huaweiDevice is a Huawei SimDevice in the fleet.
type huaweiDevice struct {
	*huaweiiotda.SimDevice
	f     *fleet
	start string
}

func (d huaweiDevice) Name() string { return d.DeviceID }

func (d huaweiDevice) Upgraded() bool { fw, _ := d.Versions(); return fw != d.start }

func (d huaweiDevice) Failed() bool { return d.FailCode != 0 && d.f.wasNotified(d.DeviceID) }

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
	seed, err := seedOf(cfg)
	if err != nil {
		return err
	}
	if cfg.Create {
		if err := createVendorFleet(ctx, cfg, seed, ota.ProtocolHuawei); err != nil {
			return err
		}
	}
	f := &fleet{plan: sim.Plan(cfg.Count, cfg.Offline, cfg.FailDownload, cfg.FailInstall)}
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
				f.noticed(d.DeviceID)
			}
		}
		f.devices = append(f.devices, huaweiDevice{SimDevice: d, f: f, start: cfg.Version})
	}
	fmt.Fprintf(stderr, "sim: %d Huawei-protocol devices of %s on %s\n", cfg.Count, cfg.Product, cfg.Version)
	return f.run(ctx, cfg, timeout, stderr)
}

// createVendorFleet registers the product (on protocol) and the devices that
// do not exist yet, with the secrets internal/sim derives (so either
// simulator can run the fleet later).
func createVendorFleet(ctx context.Context, cfg sim.Config, seed string, protocol ota.Protocol) error {
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	c := client.New(cfg.Server, cfg.KeyID, cfg.KeySecret, client.WithHTTPClient(hc), client.WithUserAgent("updraft-sim"))
	if _, err := c.GetProduct(ctx, cfg.Product); client.IsNotFound(err) {
		if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: cfg.Product, Name: cfg.Product, Protocol: string(protocol)}); err != nil && !client.IsConflict(err) {
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
