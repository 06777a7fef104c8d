package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestAdmitAtTheLimit: with 10/s and a burst of 20, a key's 20 calls at one
// instant pass and the 21st is refused with Retry-After; 100 ms later one
// more passes. Failed authentications empty the IP's bucket (burst 3 here),
// and then even good credentials from that IP are refused before auth
// runs, while another IP is not affected.
func TestAdmitAtTheLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := NewThrottle(RateLimits{PerKey: 10, KeyBurst: 20, PerIP: 1, IPBurst: 3, clockForTest: func() time.Time { return now }})
	var lastW *httptest.ResponseRecorder
	call := func(ip string, auth func() (string, error)) error {
		var err error
		lastW = httptest.NewRecorder()
		Throttled(th, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err = Admit(r, func() (Caller, error) {
				key, err := auth()
				return Caller{Key: key, Tenant: "t-" + key}, err
			})
		})).ServeHTTP(lastW, &http.Request{RemoteAddr: ip + ":5555", Header: http.Header{}})
		return err
	}
	ok := func() (string, error) { return "AK1", nil }
	for i := range 20 {
		if err := call("10.0.0.1", ok); err != nil {
			t.Fatalf("call %d inside the burst: %v", i+1, err)
		}
	}
	err := call("10.0.0.1", ok)
	if ota.ErrorCode(err) != ota.CodeRateLimited || lastW.Header().Get("Retry-After") != "1" {
		t.Fatalf("call 21: %v, Retry-After %q; want rate_limited, 1", err, lastW.Header().Get("Retry-After"))
	}
	now = now.Add(100 * time.Millisecond) // one token at 10/s
	if err := call("10.0.0.1", ok); err != nil {
		t.Fatalf("after 100 ms: %v", err)
	}
	if err := call("10.0.0.1", ok); ota.ErrorCode(err) != ota.CodeRateLimited {
		t.Fatalf("right after: %v, want rate_limited", err)
	}
	if err := call("10.0.0.1", func() (string, error) { return "AK2", nil }); err != nil {
		t.Fatalf("another key: %v", err)
	}

	bad := errors.New("bad signature")
	for i := range 3 {
		if err := call("10.0.0.9", func() (string, error) { return "", bad }); !errors.Is(err, bad) {
			t.Fatalf("failure %d: %v, want the auth error", i+1, err)
		}
	}
	ran := false
	err = call("10.0.0.9", func() (string, error) { ran = true; return "AK3", nil })
	if ota.ErrorCode(err) != ota.CodeRateLimited || ran || lastW.Header().Get("Retry-After") != "1" {
		t.Fatalf("after 3 failures: %v (auth ran: %v); want rate_limited before auth", err, ran)
	}
	if err := call("10.0.0.8", func() (string, error) { return "AK3", nil }); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	now = now.Add(time.Second)
	if err := call("10.0.0.9", func() (string, error) { return "AK3", nil }); err != nil {
		t.Fatalf("a second later: %v", err)
	}
}

// TestAdmitDeviceAtTheLimit: with 2/s per device (burst 20 by default), a
// device's 20 requests at one instant pass and the 21st is refused with
// Retry-After; another device, and an access key, are not affected; 500 ms
// later the device has one more.
func TestAdmitDeviceAtTheLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := NewThrottle(RateLimits{PerKey: 1, KeyBurst: 1, PerDevice: 2, clockForTest: func() time.Time { return now }})
	var lastW *httptest.ResponseRecorder
	key := func(r *http.Request, auth func() (string, error)) error {
		return Admit(r, func() (Caller, error) { id, err := auth(); return Caller{Key: id, Tenant: "t1"}, err })
	}
	call := func(admit func(*http.Request, func() (string, error)) error, id string) error {
		var err error
		lastW = httptest.NewRecorder()
		Throttled(th, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err = admit(r, func() (string, error) { return id, nil })
		})).ServeHTTP(lastW, &http.Request{RemoteAddr: "10.0.0.1:5555", Header: http.Header{}})
		return err
	}
	for i := range 20 {
		if err := call(AdmitDevice, "p/d1"); err != nil {
			t.Fatalf("request %d inside the burst: %v", i+1, err)
		}
	}
	err := call(AdmitDevice, "p/d1")
	if ota.ErrorCode(err) != ota.CodeRateLimited || lastW.Header().Get("Retry-After") != "1" {
		t.Fatalf("request 21: %v, Retry-After %q; want rate_limited, 1", err, lastW.Header().Get("Retry-After"))
	}
	if err := call(AdmitDevice, "p/d2"); err != nil {
		t.Fatalf("another device: %v", err)
	}
	if err := call(key, "AK1"); err != nil {
		t.Fatalf("an access key (its own bucket): %v", err)
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if err := call(AdmitDevice, "p/d1"); err != nil {
		t.Fatalf("after 500 ms: %v", err)
	}
	if err := call(AdmitDevice, "p/d1"); ota.ErrorCode(err) != ota.CodeRateLimited {
		t.Fatalf("right after: %v, want rate_limited", err)
	}
}

// TestAdmitTenantAtTheLimit: with 10/s per key (burst 20) and 15/s per
// tenant (burst 30), two keys of one tenant get 15 calls each at one
// instant, and the next call of either is refused although each key is
// well inside its own limit; a key of another tenant is not affected, and
// the refused call took nothing from the tenant. 100 ms later the tenant has
// one more call (1.5 tokens at 15/s); a limit of 0 turns the tenant limit
// off.
func TestAdmitTenantAtTheLimit(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := NewThrottle(RateLimits{PerKey: 10, KeyBurst: 20, PerTenant: 15, TenantBurst: 30, clockForTest: func() time.Time { return now }})
	var lastW *httptest.ResponseRecorder
	call := func(th *Throttle, c Caller) error {
		var err error
		lastW = httptest.NewRecorder()
		Throttled(th, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err = Admit(r, func() (Caller, error) { return c, nil })
		})).ServeHTTP(lastW, &http.Request{RemoteAddr: "10.0.0.1:5555", Header: http.Header{}})
		return err
	}
	a1, a2, b1 := Caller{Key: "AK1", Tenant: "a"}, Caller{Key: "AK2", Tenant: "a"}, Caller{Key: "BK1", Tenant: "b"}
	for i := range 15 {
		if err := call(th, a1); err != nil {
			t.Fatalf("AK1 call %d: %v", i+1, err)
		}
		if err := call(th, a2); err != nil {
			t.Fatalf("AK2 call %d: %v", i+1, err)
		}
	}
	for _, c := range []Caller{a1, a2} {
		err := call(th, c)
		if ota.ErrorCode(err) != ota.CodeRateLimited || lastW.Header().Get("Retry-After") != "1" ||
			!strings.Contains(err.Error(), "tenant a") {
			t.Fatalf("%s's 16th call (tenant's 31st): %v, Retry-After %q; want rate_limited naming the tenant", c.Key, err, lastW.Header().Get("Retry-After"))
		}
	}
	if err := call(th, b1); err != nil {
		t.Fatalf("another tenant's key: %v", err)
	}
	now = now.Add(100 * time.Millisecond)
	if err := call(th, a1); err != nil {
		t.Fatalf("after 100 ms: %v", err)
	}
	if err := call(th, a2); ota.ErrorCode(err) != ota.CodeRateLimited {
		t.Fatalf("right after: %v, want rate_limited", err)
	}

	off := NewThrottle(RateLimits{PerKey: 10, KeyBurst: 20, clockForTest: func() time.Time { return now }})
	for i := range 40 {
		if err := call(off, Caller{Key: fmt.Sprint("K", i%2), Tenant: "a"}); err != nil {
			t.Fatalf("tenant limit off, call %d: %v", i+1, err)
		}
	}
}
