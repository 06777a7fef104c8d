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
	schemas := e.openAPISchemas()
	check, get := schemas.check, e.get
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
	for k := range schemas.schemas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("schemas: %v", keys)
}
