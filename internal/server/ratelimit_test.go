package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// TestRateLimitNative: --rate-limit 0.05 (burst 1): the key's first call
// passes, the second is 429 rate_limited with Retry-After; --rate-limit-ip
// 0.05 (burst 1): after one failed authentication the IP's next call is
// refused before its (good) credentials are checked.
func TestRateLimitNative(t *testing.T) {
	s := server.StartForTest(t, func(c *config.Config) { c.RateLimit = "0.05"; c.RateLimitIP = "0.05" })
	creds, _ := s.Credentials()
	auth := "Bearer " + creds.AccessKeyID + ":" + creds.SecretAccessKey
	if resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", auth); resp.StatusCode != 200 {
		t.Fatalf("first call: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", auth)
	var eb httpx.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if resp.StatusCode != http.StatusTooManyRequests || eb.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second call: %d %v %s, want 429 rate_limited with Retry-After", resp.StatusCode, resp.Header, body)
	}

	if resp, _ := get(t, s.URL()+"/api/v1/products", "Authorization", "Bearer "+creds.AccessKeyID+":wrong"); resp.StatusCode != 401 {
		t.Fatalf("a wrong secret: %d, want 401", resp.StatusCode)
	}
	resp, body = get(t, s.URL()+"/api/v1/products", "Authorization", "Bearer "+creds.AccessKeyID+":wrong")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after a failed authentication: %d %s, want 429", resp.StatusCode, body)
	}
}
