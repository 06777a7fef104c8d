package sim

import "testing"

func TestPlanCountsAreExact(t *testing.T) {
	for _, tc := range []struct {
		n                       int
		off, fd, fi             float64
		wantOff, wantFD, wantFI int
	}{
		{1000, 0, 0, 0, 0, 0, 0},
		{1000, 0.1, 0.1, 0.1, 100, 90, 81},
		{1000, 0.29, 0.07, 0.33, 290, 49, 218}, // 0.29·100 is 28.999… in floating point
		{10, 1, 0, 0, 10, 0, 0},
		{7, 0, 1, 0, 0, 7, 0},
		{3, 0.5, 0.5, 1, 1, 1, 1},
	} {
		plan := Plan(tc.n, tc.off, tc.fd, tc.fi)
		got := map[Behaviour]int{}
		for _, b := range plan {
			got[b]++
		}
		if got[Offline] != tc.wantOff || got[FailDownload] != tc.wantFD || got[FailInstall] != tc.wantFI || len(plan) != tc.n {
			t.Errorf("Plan(%d, %v, %v, %v) = %v, want offline %d, fail-download %d, fail-install %d",
				tc.n, tc.off, tc.fd, tc.fi, got, tc.wantOff, tc.wantFD, tc.wantFI)
		}
	}
	// Spread, not bunched: a tenth of 100 devices are every tenth one.
	plan := Plan(100, 0.1, 0, 0)
	for i, b := range plan {
		if (b == Offline) != (i%10 == 9) {
			t.Fatalf("device %d is %v", i, b)
		}
	}
}

func TestSecretsAreDeterministic(t *testing.T) {
	a, b := Secret("seed", "p", "sim-000001"), Secret("seed", "p", "sim-000001")
	if a != b || len(a) != 32 {
		t.Fatalf("secrets %q %q", a, b)
	}
	if Secret("seed", "p", "sim-000002") == a || Secret("other", "p", "sim-000001") == a {
		t.Fatal("secrets collide")
	}
}

func TestConfigChecks(t *testing.T) {
	ok := Config{MQTT: "h:1", Product: "p", Count: 1, Version: "1", KeySecret: "s"}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Config){
		"no product":       func(c *Config) { c.Product = "" },
		"no count":         func(c *Config) { c.Count = 0 },
		"no version":       func(c *Config) { c.Version = "" },
		"no seed":          func(c *Config) { c.KeySecret = "" },
		"bad transport":    func(c *Config) { c.Transport = "coap" },
		"http, no server":  func(c *Config) { c.Transport = "http" },
		"create, no key":   func(c *Config) { c.Create = true; c.Server = "http://x" },
		"share over 1":     func(c *Config) { c.Offline = 1.5 },
		"mqtt, no address": func(c *Config) { c.MQTT = "" },
	} {
		c := ok
		mutate(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
