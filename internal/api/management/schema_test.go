package management_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
)

// TestResponsesMatchOpenAPI: the JSON the server sends has exactly the
// properties the served OpenAPI document declares, and at least the fields
// the wire contract promises.
func TestResponsesMatchOpenAPI(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	raw, err := e.Client.OpenAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(schema string, body []byte, contract ...string) {
		t.Helper()
		var got map[string]json.RawMessage
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v: %s", schema, err, body)
		}
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("no schema %s", schema)
		}
		for k := range got {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: the server sends %q, which the document does not declare", schema, k)
			}
		}
		for _, k := range append(s.Required, contract...) {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: %q is missing from %s", schema, k, body)
			}
		}
	}
	get := func(path string) []byte {
		t.Helper()
		resp, body := e.raw("GET", path, "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	firstItem := func(list []byte) []byte {
		var l struct{ Items []json.RawMessage }
		if err := json.Unmarshal(list, &l); err != nil || len(l.Items) == 0 {
			t.Fatalf("list %s: %v", list, err)
		}
		return l.Items[0]
	}

	setupProduct(t, e, "thermo")
	if _, err := e.Client.CreateModule(ctx, "thermo", client.ModuleCreate{Name: "modem"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client.CreateDevice(ctx, "thermo", client.DeviceCreate{Name: "d1"}); err != nil {
		t.Fatal(err)
	}
	pkg, err := e.Client.UploadPackage(ctx, client.PackageMetadata{Product: "thermo", Name: "fw", Version: "1"}, "fw.bin", strings.NewReader("firmware"))
	if err != nil {
		t.Fatal(err)
	}

	check("Product", get("/api/v1/products/thermo"), "key", "name", "description", "created_at")
	check("ProductList", get("/api/v1/products"), "items", "total")
	check("Product", firstItem(get("/api/v1/products")))
	check("Module", get("/api/v1/products/thermo/modules/modem"))
	check("ModuleList", get("/api/v1/products/thermo/modules"))
	check("Device", get("/api/v1/products/thermo/devices/d1"), "versions", "online", "last_seen")
	check("DeviceList", get("/api/v1/products/thermo/devices"))
	check("Package", get("/api/v1/packages/"+pkg.ID), "id", "product", "module", "kind", "name", "version",
		"source_versions", "differential", "description", "custom_info", "sign_method", "sign", "need_verify",
		"verify_status", "size", "sha256", "md5", "file_name", "created_at", "modified_at")
	check("PackageList", get("/api/v1/packages"), "items", "total")
	check("Package", firstItem(get("/api/v1/packages")))

	resp, body := e.raw("POST", "/api/v1/products/thermo/devices", "application/json", bytes.NewReader([]byte(`{"name":"d2"}`)))
	if resp.StatusCode != 201 {
		t.Fatalf("create device: %d", resp.StatusCode)
	}
	check("Device", body, "secret")
	_, body = e.raw("GET", "/api/v1/products/nope", "", nil)
	check("Error", body, "code", "message", "request_id")

	// Times are RFC 3339 in UTC.
	var p map[string]string
	_ = json.Unmarshal(get("/api/v1/products/thermo"), &p)
	if !strings.HasSuffix(p["created_at"], "Z") {
		t.Errorf("created_at %q is not UTC", p["created_at"])
	}
	var keys []string
	for k := range doc.Components.Schemas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("schemas: %v", keys)
}
