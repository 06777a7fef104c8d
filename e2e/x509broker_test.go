package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/sdk/device"
)

// Issue 8: x509 devices on an external broker. The broker, not Updraft,
// authenticates devices there: Mosquitto is given the CA and server
// certificate that `updraft serve --tls auto` creates, requires a client
// certificate on its device listener and takes the certificate's CN as the
// user name (for its ACL); the device's certificate comes from
// `updraft tls device-cert`. The server consumes on a listener of its own.
// The configuration is the README's ("x509 devices with an external broker").
func TestX509DeviceOnExternalBroker(t *testing.T) {
	bin := buildUpdraft(t)
	data := t.TempDir()
	// What `serve --tls auto --data data` creates (the same function).
	if _, err := config.EnsureAutoTLS(data, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	serverAddr, deviceAddr := freeAddr(t), freeAddr(t)
	port := func(a string) string { _, p, _ := net.SplitHostPort(a); return p }
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	// user root: Mosquitto started as root would otherwise become the
	// mosquitto user, who cannot read the test's private directory.
	if err := os.WriteFile(conf, fmt.Appendf(nil, `per_listener_settings true
user root
persistence false
listener %s 127.0.0.1
allow_anonymous true
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, port(serverAddr), port(deviceAddr), filepath.Join(data, config.CAFile), filepath.Join(data, config.ServerCertFile),
		filepath.Join(data, config.ServerKeyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	var mlog bytes.Buffer
	mosq := exec.Command("mosquitto", "-c", conf)
	mosq.Stdout, mosq.Stderr = &mlog, &mlog
	if err := mosq.Start(); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	t.Cleanup(func() { mosq.Process.Kill(); mosq.Wait() })
	waitFor(t, 10*time.Second, "mosquitto listening", func() bool {
		c, err := net.Dial("tcp", deviceAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, func() string { return mlog.String() })

	srv := server.StartForTest(t, func(c *config.Config) {
		c.MQTTBroker = "mqtt://" + serverAddr + "?client_id=x509e2e&group=x509e2e&consumers=2"
		c.RolloutInterval = 50 * time.Millisecond
		c.LogLevel = "warn"
	})
	e := attach(t, srv)
	api := e.api
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "xp", Name: "x509 product", Auth: string(ota.AuthX509)}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateDevice(ctx, "xp", client.DeviceCreate{Name: "d1"}); err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	if out, err := exec.Command(bin, "tls", "device-cert", "--data", data, "--product", "xp", "--device", "d1", "--out", certDir).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "CN          xp.d1") {
		t.Fatalf("updraft tls device-cert: %v: %s", err, out)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "xp.d1.pem"), filepath.Join(certDir, "xp.d1-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	trust := trustOnly(t, filepath.Join(data, config.CAFile))

	// Without a certificate the broker refuses the device.
	anon := paho.NewClient(paho.NewClientOptions().AddBroker("ssl://" + deviceAddr).SetClientID("nocert").SetTLSConfig(trust).
		SetConnectRetry(false).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := anon.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		anon.Disconnect(0)
		t.Fatal("the device listener accepted a client without a certificate")
	}

	withCert := trust.Clone()
	withCert.Certificates = []tls.Certificate{cert}
	dev, err := device.NewMQTT(device.MQTTConfig{
		// The broker authenticates by certificate; the SDK's signed password
		// is not checked there.
		Config: device.Config{Product: "xp", Name: "d1", Secret: "unused-with-x509", Versions: map[string]string{device.DefaultModule: "1.0"}},
		Broker: "ssl://" + deviceAddr,
		TLS:    withCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	dl := &device.Downloader{Client: http.DefaultClient}
	dev.OnNotice(func(ctx context.Context, nt device.Notice) {
		if err := dl.Download(ctx, nt, discardAt{}); err != nil {
			dev.ReportProgress(ctx, device.Progress{TaskID: nt.TaskID, Module: nt.Module, Step: device.FailureStep(err), Desc: err.Error()})
			return
		}
		dev.ReportVersion(ctx, nt.Module, nt.Version)
	})
	if err := dev.Start(ctx); err != nil {
		t.Fatalf("device with its certificate: %v\n%s", err, mlog.String())
	}
	t.Cleanup(func() { dev.Close() })
	waitFor(t, time.Minute, "the device online on 1.0", func() bool {
		d, err := api.GetDevice(ctx, "xp", "d1")
		return err == nil && d.Online && d.Versions[ota.DefaultModule] == "1.0"
	}, func() string { d, err := api.GetDevice(ctx, "xp", "d1"); return fmt.Sprint(d, err) })

	job := e.job(e.upload("xp", "2.0", 32<<10), func(j *client.JobCreate) { j.Name, j.MaxConcurrency = "x509", 10 })
	waitFor(t, 2*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" },
		func() string { return fmt.Sprint(e.view(job.ID).Counts) })
	if tasks := e.tasks(job.ID); len(tasks) != 1 || tasks[0].State != "succeeded" || tasks[0].Attempts != 1 {
		t.Fatalf("tasks %+v; want one, succeeded on its first notice", tasks)
	}
}
