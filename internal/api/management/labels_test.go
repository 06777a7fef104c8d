package management_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
)

// Device attributes and tags over the native API: set at creation, replaced
// with PATCH (each given part alone), refused when malformed without
// changing anything.
func TestDeviceLabels(t *testing.T) {
	e := newEnv(t, management.Options{})
	ctx := context.Background()
	if _, err := e.Client.CreateProduct(ctx, client.ProductCreate{Key: "meter", Name: "Meter"}); err != nil {
		t.Fatal(err)
	}
	resp, body := e.post("/api/v1/products/meter/devices", `{"name":"m1","groups":["g1"],"attributes":{"region":"north"},"tags":{"site":"a"}}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"attributes":{"region":"north"}`) {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	patch := func(body string) (int, map[string]any) {
		t.Helper()
		resp, b := e.raw("PATCH", "/api/v1/products/meter/devices/m1", "application/json", strings.NewReader(body))
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	code, d := patch(`{"attributes":{"region":"south","rated":"2"}}`)
	if code != http.StatusOK || d["attributes"].(map[string]any)["region"] != "south" || d["tags"].(map[string]any)["site"] != "a" ||
		len(d["groups"].([]any)) != 1 {
		t.Fatalf("patch attributes: %d %v", code, d)
	}
	code, d = patch(`{"tags":{}}`)
	if code != http.StatusOK || len(d["tags"].(map[string]any)) != 0 || d["attributes"].(map[string]any)["rated"] != "2" {
		t.Fatalf("clear tags: %d %v", code, d)
	}
	for _, bad := range []string{`{}`, `{"attributes":{"bad key!":"x"}}`, `{"groups":[],"tags":{"k":""}}`} {
		if code, _ := patch(bad); code != http.StatusBadRequest {
			t.Fatalf("PATCH %s: %d, want 400", bad, code)
		}
	}
	var got map[string]any
	_ = json.Unmarshal(e.get("/api/v1/products/meter/devices/m1"), &got)
	if len(got["groups"].([]any)) != 1 || len(got["tags"].(map[string]any)) != 0 || got["attributes"].(map[string]any)["region"] != "south" {
		t.Fatalf("after refused PATCHes: %v", got)
	}
}
