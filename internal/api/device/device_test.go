package device

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

type fixedClock struct{ t time.Time }

func setup(t *testing.T) (*deviceprototest.Fake, *httptest.Server, *fixedClock) {
	t.Helper()
	f := deviceprototest.New()
	f.AddDevice("p", "d", "secret")
	f.AddDevice("p", "other", "secret2")
	clk := &fixedClock{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	api := New(f, Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return clk.t }, PollInterval: 90 * time.Second})
	mux := http.NewServeMux()
	mux.Handle(Prefix+"/", api)
	srv := httptest.NewServer(httpx.RequestID(mux))
	t.Cleanup(srv.Close)
	return f, srv, clk
}

func do(t *testing.T, srv *httptest.Server, method, path, auth, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestAuthentication(t *testing.T) {
	_, srv, clk := setup(t)
	good := wire.Authorization("p", "d", "secret", clk.t)
	if resp, body := do(t, srv, "GET", "/device/v1/update", good, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("valid credentials: %d %s", resp.StatusCode, body)
	}
	for name, auth := range map[string]string{
		"missing":         "",
		"other scheme":    "Bearer x",
		"wrong secret":    wire.Authorization("p", "d", "nope", clk.t),
		"other's secret":  wire.Authorization("p", "d", "secret2", clk.t),
		"stale":           wire.Authorization("p", "d", "secret", clk.t.Add(-6*time.Minute)),
		"unknown device":  wire.Authorization("p", "ghost", "secret", clk.t),
		"tampered device": strings.Replace(good, "p&d|", "p&other|", 1),
	} {
		resp, body := do(t, srv, "GET", "/device/v1/update", auth, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
			continue
		}
		var e wire.Error
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != "unauthenticated" || e.RequestID == "" {
			t.Errorf("%s: body %s", name, body)
		}
		if resp.Header.Get("WWW-Authenticate") != wire.AuthScheme {
			t.Errorf("%s: WWW-Authenticate %q", name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Wrong secret and unknown device look the same to the caller.
	_, a := do(t, srv, "GET", "/device/v1/update", wire.Authorization("p", "d", "nope", clk.t), "")
	_, b := do(t, srv, "GET", "/device/v1/update", wire.Authorization("p", "ghost", "secret", clk.t), "")
	var ea, eb wire.Error
	json.Unmarshal([]byte(a), &ea)
	json.Unmarshal([]byte(b), &eb)
	if ea.Message != eb.Message {
		t.Errorf("messages differ: %q vs %q", ea.Message, eb.Message)
	}
}

func TestReportsAndPoll(t *testing.T) {
	f, srv, clk := setup(t)
	auth := wire.Authorization("p", "d", "secret", clk.t)
	ref := ota.DeviceRef{ProductKey: "p", Name: "d"}

	resp, body := do(t, srv, "POST", "/device/v1/version", auth, `{"version":"1.0"}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("version: %d %s", resp.StatusCode, body)
	}
	if v := f.Versions(); len(v) != 1 || v[0] != (deviceprototest.VersionCall{Device: ref, Module: "default", Version: "1.0"}) {
		t.Fatalf("versions %+v", v)
	}

	// No update: 204 with the poll interval.
	resp, _ = do(t, srv, "GET", "/device/v1/update?module=default", auth, "")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Retry-After") != "90" {
		t.Fatalf("update: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	f.SetPending(ota.Notice{TaskID: 3, ProductKey: "p", DeviceName: "d", Module: "default", Version: "2.0", URL: "http://x/f.bin",
		URLExpiresAt: clk.t.Add(time.Hour), Size: 10, SHA256: "aa", MD5: "bb", SignMethod: ota.SignMD5, Sign: "bb", FileName: "f.bin"})
	resp, body = do(t, srv, "GET", "/device/v1/update", auth, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	var n wire.Notice
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatal(err)
	}
	if n.TaskID != 3 || n.Version != "2.0" || n.URL != "http://x/f.bin" || n.SignMethod != "MD5" || n.Sign != "bb" || n.FileName != "f.bin" || !n.URLExpiresAt.Equal(clk.t.Add(time.Hour)) {
		t.Fatalf("notice %+v", n)
	}
	// Another device does not see it.
	resp, _ = do(t, srv, "GET", "/device/v1/update", wire.Authorization("p", "other", "secret2", clk.t), "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("other device: %d", resp.StatusCode)
	}

	resp, body = do(t, srv, "POST", "/device/v1/progress", auth, `{"task_id":3,"step":50,"desc":"half"}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("progress: %d %s", resp.StatusCode, body)
	}
	resp, _ = do(t, srv, "POST", "/device/v1/progress", auth, `{"step":-2,"desc":"net down"}`)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("failure progress: %d", resp.StatusCode)
	}
	p := f.Progress()
	if len(p) != 2 || p[0].Progress.TaskID != 3 || p[0].Progress.Step != 50 || p[1].Progress.Reason != ota.ReasonDownloadFailed {
		t.Fatalf("progress %+v", p)
	}
}

func TestBadRequests(t *testing.T) {
	f, srv, clk := setup(t)
	auth := wire.Authorization("p", "d", "secret", clk.t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/device/v1/version", `{"version":`, 400, "invalid"},
		{"POST", "/device/v1/version", `{"version":""}`, 400, "invalid"},
		{"POST", "/device/v1/version", `{"module":"bad module","version":"1"}`, 400, "invalid"},
		{"POST", "/device/v1/progress", `{"step":150}`, 400, "invalid"},
		{"POST", "/device/v1/progress", strings.Repeat(" ", 70<<10) + "{}", 413, "too_large"},
		{"GET", "/device/v1/update?module=no%20spaces", "", 400, "invalid"},
		{"GET", "/device/v1/nothing", "", 404, "not_found"},
		{"DELETE", "/device/v1/version", "", 404, "not_found"},
	} {
		resp, body := do(t, srv, tc.method, tc.path, auth, tc.body)
		var e wire.Error
		if resp.StatusCode != tc.status || json.Unmarshal([]byte(body), &e) != nil || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s %s %.30q: %d %s, want %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	if len(f.Versions())+len(f.Progress()) != 0 {
		t.Fatal("a rejected request reached the service")
	}

	// The store being down is a 503 with Retry-After.
	f.FailNext(&ota.Error{Code: ota.CodeUnavailable, Message: "database down", Err: errors.New("dial")})
	resp, body := do(t, srv, "POST", "/device/v1/version", auth, `{"version":"1"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("unavailable: %d %s", resp.StatusCode, body)
	}
}

// A device of a product with auth x509 is refused on device HTTP even with a
// valid signature: its product takes client certificates only (MQTT over
// TLS), and the answer says so.
func TestX509ProductRefusesSecrets(t *testing.T) {
	f, srv, clk := setup(t)
	f.AddDevice("cp", "d", "secret")
	f.SetAuth("cp", ota.AuthX509)
	resp, body := do(t, srv, "GET", "/device/v1/update", wire.Authorization("cp", "d", "secret", clk.t), "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "client certificate") {
		t.Fatalf("x509 product over device HTTP: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, srv, "GET", "/device/v1/update", wire.Authorization("p", "d", "secret", clk.t), ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("secret product: %d %s", resp.StatusCode, body)
	}
}
