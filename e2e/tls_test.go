package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/sdk/device"
)

// trustOnly is a TLS configuration that trusts the CA in caFile and nothing
// else (not the system roots), as a device given only ca.pem does.
func trustOnly(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// A rollout entirely over TLS with `--tls auto`: the broker serves MQTT over
// TLS only (--mqtt off), the operator's client talks HTTPS, and devices built
// on the device SDK trust only ca.pem, receive their notices over MQTT/TLS and
// download from https URLs.
func TestRolloutOverTLSAuto(t *testing.T) {
	srv := server.StartForTest(t, func(c *config.Config) {
		c.TLS = config.TLSAuto
		c.MQTTAddr = config.Off
		c.MQTTSAddr = "127.0.0.1:0"
		c.RolloutInterval = 50 * time.Millisecond
		c.LogLevel = "warn"
	})
	if srv.CAFile() == "" || srv.MQTTAddr() != "" || srv.MQTTSAddr() == "" {
		t.Fatalf("ca %q, plain MQTT %q, MQTTS %q: want a CA and MQTT over TLS only", srv.CAFile(), srv.MQTTAddr(), srv.MQTTSAddr())
	}
	if !strings.HasPrefix(srv.URL(), "https://") || !strings.HasPrefix(srv.PublicURL(), "https://") {
		t.Fatalf("URL %q, public URL %q: want https", srv.URL(), srv.PublicURL())
	}
	creds, _ := srv.Credentials()
	if creds.CA == "" || creds.MQTTS != "ssl://"+srv.MQTTSAddr() || creds.Server != srv.URL() {
		t.Errorf("credentials.json: %+v; want the CA, ssl://%s and %s", creds, srv.MQTTSAddr(), srv.URL())
	}
	trust := trustOnly(t, srv.CAFile())
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}, Timeout: time.Minute}
	api := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey, client.WithHTTPClient(httpc))
	ctx := context.Background()

	// Plain HTTP to the HTTPS listener is refused, and so is a client
	// that does not trust the CA.
	if resp, err := http.Get(strings.Replace(srv.URL(), "https://", "http://", 1) + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the HTTPS listener")
		}
		resp.Body.Close()
	}
	if _, err := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey).ListProducts(ctx, client.Page{}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v; want a certificate error", err)
	}

	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "sec", Name: "Secure"}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		d, err := api.CreateDevice(ctx, "sec", client.DeviceCreate{Name: fmt.Sprintf("d%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		dev, err := device.NewMQTT(device.MQTTConfig{
			Config: device.Config{Product: "sec", Name: d.Name, Secret: d.Secret, Versions: map[string]string{device.DefaultModule: "1.0"},
				Logger: nil},
			Broker: "ssl://" + srv.MQTTSAddr(),
			TLS:    trust,
		})
		if err != nil {
			t.Fatal(err)
		}
		dl := &device.Downloader{Client: &http.Client{Transport: &http.Transport{TLSClientConfig: trust}}}
		dev.OnNotice(func(ctx context.Context, nt device.Notice) {
			if !strings.HasPrefix(nt.URL, "https://") {
				t.Errorf("notice URL %q is not https", nt.URL)
			}
			if err := dl.Download(ctx, nt, discardAt{}); err != nil {
				dev.ReportProgress(ctx, device.Progress{TaskID: nt.TaskID, Module: nt.Module, Step: device.FailureStep(err), Desc: err.Error()})
				return
			}
			dev.ReportVersion(ctx, nt.Module, nt.Version)
		})
		if err := dev.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
	}
	waitFor(t, time.Minute, "devices online", func() bool {
		page, err := api.ListDevices(ctx, "sec", client.DeviceFilter{})
		if err != nil {
			t.Fatal(err)
		}
		on := 0
		for _, d := range page.Items {
			if d.Online && d.Versions[ota.DefaultModule] == "1.0" {
				on++
			}
		}
		return on == n
	}, func() string { return "" })

	content := make([]byte, 64<<10)
	rand.Read(content)
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "sec", Name: "fw2", Version: "2.0"}, "fw-2.0.bin", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "tls", Target: client.JobTarget{All: true},
		MaxConcurrency: 100, TimeoutSeconds: ota.MinTimeoutSeconds})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the job to complete", func() bool {
		j, err := api.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		return j.State == "completed"
	}, func() string { j, _ := api.GetJob(ctx, job.ID); return fmt.Sprint(j.Counts) })
	page, err := api.ListTasks(ctx, job.ID, client.TaskFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range page.Items {
		if task.State != "succeeded" || task.Attempts != 1 {
			t.Errorf("task of %s: %s after %d notices (%s %s)", task.Device, task.State, task.Attempts, task.Reason, task.Detail)
		}
	}
	if len(page.Items) != n {
		t.Errorf("%d tasks, want %d", len(page.Items), n)
	}
	// The package link the API hands out is https too.
	if u, err := api.PackageURL(ctx, pkg.ID); err != nil || !strings.HasPrefix(u, "https://") {
		t.Errorf("package URL %q, %v; want https", u, err)
	}
}

// discardAt is a WriterAt that keeps nothing (the downloader verifies the
// hashes as the bytes stream through).
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

var _ io.WriterAt = discardAt{}

// The fleet simulator over TLS: 200 devices trusting only ca.pem connect to
// MQTT over TLS, the job completes and every device upgraded once.
func TestSimFleetOverTLSAuto(t *testing.T) {
	srv := server.StartForTest(t, func(c *config.Config) {
		c.TLS = config.TLSAuto
		c.MQTTAddr = config.Off
		c.MQTTSAddr = "127.0.0.1:0"
		c.RolloutInterval = 50 * time.Millisecond
		c.LogLevel = "warn"
	})
	creds, _ := srv.Credentials()
	trust := trustOnly(t, srv.CAFile())
	e := &env{t: t, srv: srv, keyID: creds.AccessKeyID, secret: creds.SecretAccessKey,
		api: client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey,
			client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: trust}}))}
	const n = 200
	f := e.fleet(sim.Config{Product: "tlsfleet", Count: n, Version: "1.0", MQTT: "ssl://" + srv.MQTTSAddr(), TLS: trust})
	f.connected(t, n)
	pkg := e.upload("tlsfleet", "2.0", 32<<10)
	job := e.job(pkg, nil)
	waitFor(t, 2*time.Minute, "the job to complete", func() bool { return e.view(job.ID).State == "completed" }, progress(e, f, job.ID))
	checkAllSucceeded(t, e, f, job.ID, n)
}
