package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/sdk/device"
)

// TestFleetMetrics: /metrics labels requests by the route that served them
// (not the mount point), shows each running job's tasks by state, devices
// present per protocol and transport, and tasks finished by state.
func TestFleetMetrics(t *testing.T) {
	s := server.StartForTest(t, nil)
	creds, _ := s.Credentials()
	api := client.New(s.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "mx", Name: "metrics"}); err != nil {
		t.Fatal(err)
	}
	var poller *device.HTTP
	for _, name := range []string{"d1", "d2"} {
		d, err := api.CreateDevice(ctx, "mx", client.DeviceCreate{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if name == "d1" {
			poller, err = device.NewHTTP(device.HTTPConfig{Config: device.Config{Product: "mx", Name: name, Secret: d.Secret,
				Versions: map[string]string{"default": "1.0"}}, Server: s.URL()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { poller.Close() })
		}
	}
	if err := poller.ReportVersion(ctx, "default", "1.0"); err != nil {
		t.Fatal(err)
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "mx", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Target: client.JobTarget{Devices: []string{"d1", "d2"}}})
	if err != nil {
		t.Fatal(err)
	}
	metrics := func() string {
		t.Helper()
		resp, body := get(t, s.URL()+"/metrics")
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics = %d", resp.StatusCode)
		}
		return body
	}
	want := func(body string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(body, l) {
				t.Errorf("/metrics lacks %q", l)
			}
		}
	}
	// Neither device holds a connection: both tasks wait.
	want(metrics(),
		`updraft_http_requests_total{code="201",method="POST",route="POST /api/v1/jobs"} 1`,
		`updraft_http_requests_total{code="204",method="POST",route="POST /device/v1/version"} 1`,
		`updraft_job_tasks{job="`+job.ID+`",state="waiting",tenant="`+creds.Tenant+`"} 2`,
		`updraft_devices_present{protocol="native",transport="http"} 1`,
	)
	// The poller asks (its task becomes due), then reports the destination.
	if _, err := poller.Check(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if err := poller.ReportVersion(ctx, "default", "2.0"); err != nil {
		t.Fatal(err)
	}
	want(metrics(),
		`updraft_tasks_finished_total{reason="",state="succeeded"} 1`,
		`updraft_job_tasks{job="`+job.ID+`",state="succeeded",tenant="`+creds.Tenant+`"} 1`,
	)
}
