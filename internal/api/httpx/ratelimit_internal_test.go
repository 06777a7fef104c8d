package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
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
			err = Admit(r, auth)
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
	if err := call(Admit, "AK1"); err != nil {
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
