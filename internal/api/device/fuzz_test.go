package device_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// FuzzDeviceHTTP: the device HTTP API's bodies, queries and Authorization
// header on a real server (rate limits off so that every request is
// served). Signed requests with arbitrary bodies and queries, and arbitrary
// Authorization headers, are answered 200/204 or a clean 4xx in the native
// envelope (401 with WWW-Authenticate for credentials), never a 5xx.
func FuzzDeviceHTTP(f *testing.F) {
	srv := server.StartForTest(f, func(c *config.Config) {
		c.Unthrottle()
		c.LogLevel = "error"
	})
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := cl.CreateProduct(ctx, client.ProductCreate{Key: "p", Name: "p"}); err != nil {
		f.Fatal(err)
	}
	if _, err := cl.CreateDevice(ctx, "p", client.DeviceCreate{Name: "d", Secret: "device-secret-1"}); err != nil {
		f.Fatal(err)
	}
	routes := []struct{ method, path string }{{"POST", "/device/v1/version"}, {"GET", "/device/v1/update"}, {"POST", "/device/v1/progress"}}
	for _, s := range []struct {
		route       uint8
		query, body string
		signed      bool
		auth        string
	}{
		{0, "", `{"module":"default","version":"1.0.1"}`, true, ""},
		{0, "", `{"version":"1.0 beta"}`, true, ""},
		{0, "", `{"module":"../x","version":"1"}`, true, ""},
		{1, "module=default", ``, true, ""},
		{1, "module=%00", ``, true, ""},
		{2, "", `{"task_id":1,"module":"default","step":50,"desc":"x"}`, true, ""},
		{2, "", `{"step":-9999999999}`, true, ""},
		{0, "", `{}`, false, "Updraft-HMAC-SHA256 p&d|1 abc"},
		{1, "", ``, false, "Updraft-HMAC-SHA256 p&d|99999999999999999999 abc"},
		{1, "", ``, false, "Basic abc"},
	} {
		f.Add(s.route, s.query, []byte(s.body), s.signed, s.auth)
	}
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte, signed bool, auth string) {
		rt := routes[int(route)%len(routes)]
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		r.URL.RawQuery = query
		if signed {
			auth = wire.Authorization("p", "d", "device-secret-1", time.Now())
		}
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		what := rt.method + " " + rt.path + "?" + query
		switch {
		case w.Code >= 500:
			t.Fatalf("%s: HTTP %d for client input: %s", what, w.Code, w.Body)
		case w.Code >= 400:
			var e httpx.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" || e.RequestID == "" {
				t.Fatalf("%s: HTTP %d, not the native error envelope: %q", what, w.Code, w.Body)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatalf("%s: 401 without WWW-Authenticate", what)
			}
			if signed && w.Code == 401 {
				t.Fatalf("%s: a correctly signed request refused: %s", what, w.Body)
			}
		case w.Code == 200 && !json.Valid(w.Body.Bytes()):
			t.Fatalf("%s: 200 with a body that is not JSON: %q", what, w.Body)
		}
		if !signed && w.Code < 300 && auth != "" {
			t.Fatalf("%s: accepted with a made-up Authorization %q", what, auth)
		}
	})
}
