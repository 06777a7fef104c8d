package enos_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/api/httpx"
)

// TestRateLimited: behind the server's throttle (here 0.05/s, burst 2), the
// token request and one call pass, the next call is 99403 with
// Retry-After in the EnOS envelope.
func TestRateLimited(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	enos.New(e.svc, enos.Options{}).Register(mux)
	hs := httptest.NewServer(httpx.Throttled(httpx.NewThrottle(httpx.RateLimits{PerKey: 0.05, KeyBurst: 2}), mux))
	t.Cleanup(hs.Close)
	c := e.client()
	c.base = hs.URL
	c.login()
	params := map[string]string{"orgId": e.org}
	if a := c.do("ota-firmwares", "search", params, map[string]any{}, nil); a.Code != 0 {
		t.Fatalf("the call inside the limit: %+v", a)
	}
	a := c.do("ota-firmwares", "search", params, map[string]any{}, nil)
	if a.Code != 99403 || !strings.Contains(a.Msg, "retry after") {
		t.Fatalf("the call over the limit: %+v, want 99403 saying when to retry", a)
	}
}
