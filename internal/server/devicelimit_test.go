package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// TestRateLimitDeviceHTTP: --rate-limit-device 0.05 (burst 1, a token every
// 20 s, so the test does not depend on its own speed): a native device's
// first poll is answered, its second is 429 rate_limited with Retry-After in
// the native envelope, and another device is still answered; an EnOS
// device's first HTTP login passes and its second is 429 in the HTTP
// broker's {"code","message"} form, while another EnOS device logs in.
func TestRateLimitDeviceHTTP(t *testing.T) {
	s := server.StartForTest(t, func(c *config.Config) { c.RateLimitDevice = "0.05" })
	creds, _ := s.Credentials()
	cl := client.New(s.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	for _, p := range []client.ProductCreate{{Key: "nat", Name: "native"}, {Key: "en", Name: "enos", Protocol: "enos"}} {
		if _, err := cl.CreateProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"d1", "d2"} {
			if _, err := cl.CreateDevice(ctx, p.Key, client.DeviceCreate{Name: d, Secret: "secret-" + d}); err != nil {
				t.Fatal(err)
			}
		}
	}

	poll := func(dev string) (*http.Response, string) {
		return get(t, s.URL()+"/device/v1/update", "Authorization", wire.Authorization("nat", dev, "secret-"+dev, time.Now()))
	}
	if resp, body := poll("d1"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("d1's first poll (inside the limit): %d %s", resp.StatusCode, body)
	}
	resp, body := poll("d1")
	var eb httpx.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || eb.Code != "rate_limited" || ra < 1 || ra > 20 {
		t.Fatalf("d1's second poll (over the limit): %d Retry-After %q %s; want 429 rate_limited, Retry-After 1–20", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := poll("d2"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("d2 while d1 is limited: %d %s", resp.StatusCode, body)
	}

	login := func(dev string) (*http.Response, map[string]any) {
		const lifetime = 300_000
		b, _ := json.Marshal(map[string]any{"signMethod": "sha256", "lifetime": lifetime, "sign": enos.LoginSign("en", dev, lifetime, "secret-"+dev)})
		resp, err := http.Post(s.URL()+enos.DeviceAuthPath+"en/"+dev, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("login answer %q: %v", raw, err)
		}
		return resp, out
	}
	if resp, out := login("d1"); resp.StatusCode != http.StatusOK || out["code"] != 0.0 {
		t.Fatalf("EnOS d1's first login (inside the limit): %d %v", resp.StatusCode, out)
	}
	resp, out := login("d1")
	if resp.StatusCode != http.StatusTooManyRequests || out["code"] != 429.0 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("EnOS d1's second login (over the limit): %d %v Retry-After %q; want 429 {code 429}", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	if resp, out := login("d2"); resp.StatusCode != http.StatusOK {
		t.Fatalf("EnOS d2 while d1 is limited: %d %v", resp.StatusCode, out)
	}
}
