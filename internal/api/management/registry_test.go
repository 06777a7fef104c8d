package management_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
)

func TestProducts(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	c := e.Client

	p, err := c.CreateProduct(ctx, client.ProductCreate{Key: "thermo", Name: "Thermostat", Description: "living room"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Key != "thermo" || p.Name != "Thermostat" || p.Description != "living room" || p.CreatedAt.IsZero() {
		t.Fatalf("created %+v", p)
	}
	if p.CreatedAt.Location().String() != "UTC" {
		t.Errorf("created_at %v is not UTC", p.CreatedAt)
	}
	if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: "lamp", Name: "Lamp"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetProduct(ctx, "thermo")
	if err != nil || got.Name != "Thermostat" {
		t.Fatalf("get: %+v %v", got, err)
	}
	l, err := c.ListProducts(ctx, client.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Total != 2 || len(l.Items) != 2 {
		t.Fatalf("list: %+v", l)
	}
	l, err = c.ListProducts(ctx, client.Page{Limit: 1, Offset: 1})
	if err != nil || l.Total != 2 || len(l.Items) != 1 {
		t.Fatalf("paged list: %+v %v", l, err)
	}

	_, err = c.CreateProduct(ctx, client.ProductCreate{Key: "thermo", Name: "Again"})
	wantAPIError(t, err, http.StatusConflict, "conflict")
	_, err = c.CreateProduct(ctx, client.ProductCreate{Key: "bad key!", Name: "x"})
	if e := wantAPIError(t, err, http.StatusBadRequest, "invalid", "product key"); e.Field != "key" {
		t.Errorf("field %q, want key", e.Field)
	}
	_, err = c.GetProduct(ctx, "nope")
	wantAPIError(t, err, http.StatusNotFound, "not_found", "nope")
	_, err = c.ListProducts(ctx, client.Page{Limit: 5000})
	wantAPIError(t, err, http.StatusBadRequest, "invalid", "limit")

	// Another tenant sees none of it, and may not reuse the key (product
	// keys are global because devices authenticate by them).
	other := e.addTenant("acme")
	_, err = other.GetProduct(ctx, "thermo")
	wantAPIError(t, err, http.StatusNotFound, "not_found")
	if l, err := other.ListProducts(ctx, client.Page{}); err != nil || l.Total != 0 {
		t.Fatalf("other tenant's list: %+v %v", l, err)
	}
}

// TestJSONBodyErrors: every JSON endpoint rejects malformed JSON, unknown
// fields, wrong types and oversized bodies with a clear 4xx, and creates
// nothing.
func TestJSONBodyErrors(t *testing.T) {
	e := newEnv(t, management.Options{MaxJSONBody: 4096})
	cases := []struct {
		name, body string
		status     int
		code       string
		fragment   string
	}{
		{"malformed", `{"key": "a", "name": }`, 400, "invalid", "malformed JSON at byte"},
		{"truncated", `{"key": "a"`, 400, "invalid", "ends before"},
		{"empty", ``, 400, "invalid", "empty"},
		{"unknown field", `{"key": "a", "name": "A", "colour": "red"}`, 400, "invalid", `unknown field "colour"`},
		{"wrong type", `{"key": 7, "name": "A"}`, 400, "invalid", `field "key" must be a string`},
		{"not an object", `["a"]`, 400, "invalid", "must be an object"},
		{"two values", `{"key": "a", "name": "A"} {}`, 400, "invalid", "exactly one JSON object"},
		{"oversized", `{"key": "a", "name": "A", "description": "` + strings.Repeat("x", 5000) + `"}`, 413, "too_large", "4096-byte limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw("POST", "/api/v1/products", "application/json", strings.NewReader(tc.body))
			var env errorBody
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("not a JSON error: %s", body)
			}
			if resp.StatusCode != tc.status || env.Code != tc.code || !strings.Contains(env.Message, tc.fragment) {
				t.Fatalf("got %d %s %q, want %d %s mentioning %q", resp.StatusCode, env.Code, env.Message, tc.status, tc.code, tc.fragment)
			}
			if env.RequestID == "" || env.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("request id %q vs header %q", env.RequestID, resp.Header.Get("X-Request-Id"))
			}
		})
	}
	if l, err := e.Client.ListProducts(context.Background(), client.Page{}); err != nil || l.Total != 0 {
		t.Fatalf("a rejected request created something: %+v %v", l, err)
	}
}

func TestModules(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	c := e.Client
	if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: "cam", Name: "Camera"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.CreateModule(ctx, "cam", client.ModuleCreate{Name: "modem", Alias: "LTE modem", Description: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Product != "cam" || m.Name != "modem" || m.Alias != "LTE modem" {
		t.Fatalf("created %+v", m)
	}
	if got, err := c.GetModule(ctx, "cam", "modem"); err != nil || got.Alias != "LTE modem" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if got, err := c.GetModule(ctx, "cam", "default"); err != nil || got.Name != "default" {
		t.Fatalf("the default module: %+v %v", got, err)
	}
	alias := "Cat-M1 modem"
	m, err = c.UpdateModule(ctx, "cam", "modem", client.ModuleUpdate{Alias: &alias})
	if err != nil || m.Alias != alias || m.Description != "d" {
		t.Fatalf("patch: %+v %v", m, err)
	}
	l, err := c.ListModules(ctx, "cam", client.Page{})
	if err != nil || l.Total != 1 || l.Items[0].Alias != alias {
		t.Fatalf("list: %+v %v", l, err)
	}
	_, err = c.CreateModule(ctx, "cam", client.ModuleCreate{Name: "default"})
	if e := wantAPIError(t, err, 400, "invalid", "reserved"); e.Field != "module_name" {
		t.Errorf("field %q", e.Field)
	}
	_, err = c.CreateModule(ctx, "nocam", client.ModuleCreate{Name: "x"})
	wantAPIError(t, err, 404, "not_found")
	if err := c.DeleteModule(ctx, "cam", "modem"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetModule(ctx, "cam", "modem")
	wantAPIError(t, err, 404, "not_found")

	resp, _ := e.raw("PATCH", "/api/v1/products/cam/modules/default", "application/json", strings.NewReader(`{"alias":"x"}`))
	if resp.StatusCode != 400 {
		t.Errorf("PATCH with an unknown field: %d", resp.StatusCode)
	}
}

func TestDevices(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	c := e.Client
	if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: "thermo", Name: "Thermostat"}); err != nil {
		t.Fatal(err)
	}
	d, err := c.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "t-001", Groups: []string{"eu", "beta"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Secret == "" || d.Product != "thermo" || d.Name != "t-001" || len(d.Groups) != 2 || d.Online || d.LastSeen != nil {
		t.Fatalf("created %+v", d)
	}
	if d.Versions == nil {
		t.Errorf("versions is null, want {}")
	}
	if _, err := c.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "t-002", Secret: "my-own-secret-0123456789"}); err != nil {
		t.Fatal(err)
	}

	// The secret is shown once: never by get or list.
	resp, body := e.raw("GET", "/api/v1/products/thermo/devices/t-001", "", nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"secret"`) || strings.Contains(string(body), d.Secret) {
		t.Fatalf("get shows the secret: %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"versions":{}`, `"online":false`, `"last_seen":null`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("device JSON %s lacks %s", body, want)
		}
	}
	resp, body = e.raw("GET", "/api/v1/products/thermo/devices", "", nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), `"secret"`) {
		t.Fatalf("list shows secrets: %d %s", resp.StatusCode, body)
	}
	l, err := c.ListDevices(ctx, "thermo", client.DeviceFilter{})
	if err != nil || l.Total != 2 {
		t.Fatalf("list: %+v %v", l, err)
	}
	l, err = c.ListDevices(ctx, "thermo", client.DeviceFilter{Groups: []string{"beta"}})
	if err != nil || l.Total != 1 || l.Items[0].Name != "t-001" {
		t.Fatalf("list by group: %+v %v", l, err)
	}

	_, err = c.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "t-001"})
	wantAPIError(t, err, 409, "conflict")
	_, err = c.CreateDevice(ctx, "nope", client.DeviceCreate{Name: "x"})
	wantAPIError(t, err, 404, "not_found")
	_, err = c.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "bad/name"})
	wantAPIError(t, err, 400, "invalid", "device name")
	_, err = c.GetDevice(ctx, "thermo", "t-999")
	wantAPIError(t, err, 404, "not_found")
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testKeyID+":"+testSecret))

	cases := []struct {
		name, auth string
		status     int
	}{
		{"missing", "", 401},
		{"wrong secret", "Bearer " + testKeyID + ":wrong", 401},
		{"unknown key", "Bearer NOSUCHKEY:" + testSecret, 401},
		{"no colon", "Bearer " + testKeyID, 401},
		{"bad base64", "Basic !!!", 401},
		{"basic wrong secret", "Basic " + base64.StdEncoding.EncodeToString([]byte(testKeyID+":nope")), 401},
		{"other scheme", "Digest abc", 401},
		{"bearer", "Bearer " + testKeyID + ":" + testSecret, 200},
		{"basic", basic, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.raw("GET", "/api/v1/products", "", nil, "Authorization", tc.auth)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tc.status == 401 {
				if !strings.Contains(string(body), `"code":"unauthenticated"`) || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without envelope or challenge: %s", body)
				}
			}
		})
	}

	// The client reports the failure as an APIError.
	_, err := client.New(e.URL, testKeyID, "wrong").ListProducts(ctx, client.Page{})
	wantAPIError(t, err, 401, "unauthenticated")

	// A caller's request id is kept; a hostile one is replaced.
	resp, _ := e.raw("GET", "/api/v1/products", "", nil, "X-Request-Id", "trace-42.a_b")
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42.a_b" {
		t.Errorf("request id %q, want the caller's", got)
	}
	resp, _ = e.raw("GET", "/api/v1/products", "", nil, "X-Request-Id", "<script>")
	if got := resp.Header.Get("X-Request-Id"); got == "<script>" || got == "" {
		t.Errorf("request id %q, want a generated one", got)
	}

	// The OpenAPI document needs no credentials.
	resp, body := e.raw("GET", "/api/v1/openapi.json", "", nil, "Authorization", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"openapi"`) {
		t.Fatalf("openapi.json: %d", resp.StatusCode)
	}
}

func TestUnknownRoutes(t *testing.T) {
	e := newEnv(t, management.Options{})
	resp, body := e.raw("GET", "/api/v1/nothing-here", "", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":"not_found"`) || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, body)
	}
	resp, body = e.raw("PUT", "/api/v1/products", "application/json", strings.NewReader("{}"))
	if resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Allow"), "POST") || !strings.Contains(string(body), `"request_id"`) {
		t.Fatalf("wrong method: %d %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}
