package device_test

import (
	"context"
	"log"

	"github.com/updraft-ota/updraft/sdk/device"
)

// A device on MQTT that upgrades itself when told: download into a file
// (resuming after interruptions), verify, install, report the new version.
func Example() {
	dev, err := device.NewMQTT(device.MQTTConfig{
		Config: device.Config{
			Product:  "thermo",
			Name:     "t-0001",
			Secret:   "the device secret from registration",
			Versions: map[string]string{device.DefaultModule: "1.0.0"},
		},
		Broker: "updraft.example.com:1883",
	})
	if err != nil {
		log.Fatal(err)
	}
	dev.OnNotice(func(ctx context.Context, n device.Notice) {
		dev.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: 0, Desc: "downloading"})
		if err := device.DownloadFile(ctx, n, "/var/lib/thermo/update.bin"); err != nil {
			// A verification failure is step -3, anything else -2.
			dev.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: device.FailureStep(err), Desc: err.Error()})
			return
		}
		// … install /var/lib/thermo/update.bin and reboot into it, then:
		dev.ReportVersion(ctx, n.Module, n.Version)
	})
	if err := dev.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	select {} // run until the process stops
}

// A device that polls over HTTP instead of holding a connection.
func ExampleNewHTTP() {
	dev, err := device.NewHTTP(device.HTTPConfig{
		Config: device.Config{Product: "thermo", Name: "t-0002", Secret: "…",
			Versions: map[string]string{device.DefaultModule: "1.0.0"}},
		Server: "https://updraft.example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	n, err := dev.Check(context.Background(), device.DefaultModule)
	if err != nil {
		log.Fatal(err)
	}
	if n != nil {
		log.Printf("update to %s waiting: %s (%d bytes)", n.Version, n.URL, n.Size)
	}
}
