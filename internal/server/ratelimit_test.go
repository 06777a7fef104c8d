package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
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

// TestRateLimitTenant: --rate-limit-tenant 0.05 (burst 1) with a generous
// per-key limit: a second key of the operator tenant is refused (429
// rate_limited, Retry-After, naming the tenant) once the first key has
// spent the tenant's call, though it has made none itself; a key of
// another tenant is not affected.
func TestRateLimitTenant(t *testing.T) {
	s := server.StartForTest(t, func(c *config.Config) { c.RateLimit = "100"; c.RateLimitTenant = "0.05" })
	creds, _ := s.Credentials()
	ctx := context.Background()
	boot := service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID, Role: ota.RoleAdmin}
	second, err := s.Service().CreateAccessKey(ctx, boot, "", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service().CreateTenant(ctx, boot, service.TenantInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	acme, err := s.Service().CreateAccessKey(ctx, boot, "acme", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(id, secret string) string { return "Bearer " + id + ":" + secret }

	if resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", bearer(creds.AccessKeyID, creds.SecretAccessKey)); resp.StatusCode != 200 {
		t.Fatalf("the first key's call: %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", bearer(second.ID, second.Secret))
	var eb httpx.ErrorBody
	_ = json.Unmarshal([]byte(body), &eb)
	if resp.StatusCode != http.StatusTooManyRequests || eb.Code != "rate_limited" || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(eb.Message, "tenant "+creds.Tenant) {
		t.Fatalf("the second key's first call: %d %v %s, want 429 rate_limited naming the tenant", resp.StatusCode, resp.Header, body)
	}
	if resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", bearer(acme.ID, acme.Secret)); resp.StatusCode != 200 {
		t.Fatalf("another tenant's key: %d %s", resp.StatusCode, body)
	}
}
