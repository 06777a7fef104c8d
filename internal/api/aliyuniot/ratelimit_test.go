package aliyuniot_test

import (
	"testing"

	"github.com/updraft-ota/updraft/internal/config"
)

// TestRateLimited: with --rate-limit 0.05 (burst 1) a key's first call
// passes and the next is Alibaba's QPS throttle, Code Throttling, through
// both the Tea and the legacy SDK's signing.
func TestRateLimited(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.RateLimit = "0.05" })
	c := e.tea("", e.ak, e.sk)
	if _, err := c.call("POST", "ListOTAFirmware", nil); err != nil {
		t.Fatal(err)
	}
	_, err := c.call("POST", "ListOTAFirmware", nil)
	if code := teaCode(t, err); code != "Throttling" {
		t.Fatalf("the call over the limit: code %q, want Throttling", code)
	}
}
