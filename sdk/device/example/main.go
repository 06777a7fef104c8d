// Command example is a minimal Updraft device: it connects over MQTT (or
// polls over HTTP), and when told to upgrade it downloads the package into a
// file with resume, verifies it, "installs" it by renaming it, and reports
// the new version.
//
//	go run ./sdk/device/example -product thermo -name t-0001 -secret $SECRET \
//	    -mqtt 127.0.0.1:1883 -version 1.0.0 -dir /tmp/device
//
// With -http http://127.0.0.1:8080 instead of -mqtt it polls the device API.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/updraft-ota/updraft/sdk/device"
)

func main() {
	product := flag.String("product", "", "product key")
	name := flag.String("name", "", "device name")
	secret := flag.String("secret", os.Getenv("DEVICE_SECRET"), "device secret (or $DEVICE_SECRET)")
	mqttAddr := flag.String("mqtt", "", "MQTT broker host:port")
	httpURL := flag.String("http", "", "server base URL, to poll over HTTP instead of MQTT")
	version := flag.String("version", "1.0.0", "firmware version the device starts on")
	dir := flag.String("dir", os.TempDir(), "where packages are downloaded and installed")
	flag.Parse()
	if err := run(*product, *name, *secret, *mqttAddr, *httpURL, *version, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(product, name, secret, mqttAddr, httpURL, version, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := device.Config{Product: product, Name: name, Secret: secret,
		Versions: map[string]string{device.DefaultModule: version}}

	var dev device.Client
	var err error
	if httpURL != "" {
		dev, err = device.NewHTTP(device.HTTPConfig{Config: cfg, Server: httpURL})
	} else {
		dev, err = device.NewMQTT(device.MQTTConfig{Config: cfg, Broker: mqttAddr})
	}
	if err != nil {
		return err
	}
	dev.OnNotice(func(ctx context.Context, n device.Notice) {
		slog.Info("upgrade", "task", n.TaskID, "module", n.Module, "to", n.Version, "size", n.Size)
		report := func(step int, desc string) {
			if err := dev.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: step, Desc: desc}); err != nil {
				slog.Warn("progress not reported", "err", err)
			}
		}
		report(0, "downloading")
		part := filepath.Join(dir, fmt.Sprintf("%s-%s.part", n.Module, n.Version))
		d := device.Downloader{OnProgress: func(got, total int64) {}}
		if err := d.DownloadFile(ctx, n, part); err != nil {
			report(device.FailureStep(err), err.Error())
			return
		}
		report(90, "installing")
		if err := os.Rename(part, filepath.Join(dir, n.Module+".bin")); err != nil {
			report(-4, err.Error())
			return
		}
		if err := dev.ReportVersion(ctx, n.Module, n.Version); err != nil {
			slog.Warn("version not reported", "err", err)
			return
		}
		slog.Info("upgraded", "module", n.Module, "version", n.Version)
	})
	if err := dev.Start(ctx); err != nil {
		return err
	}
	slog.Info("device running; Ctrl-C to stop", "product", product, "name", name, "version", version)
	<-ctx.Done()
	return dev.Close()
}
