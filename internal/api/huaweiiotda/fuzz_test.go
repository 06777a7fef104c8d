package huaweiiotda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// FuzzHuaweiAPI: the IoTDA OTA operations' JSON bodies and query strings,
// signed with SDK-HMAC-SHA256 like the SDK, on a real server (rate limits
// off). Every answer is a 2xx or a 4xx in Huawei's envelope
// {"error_code","error_msg"}, never a 5xx; a body that is not JSON is never
// accepted; a correctly signed request is never a 401, whatever its query
// and body (the signature covers them as the SDK computes it).
func FuzzHuaweiAPI(f *testing.F) {
	srv := server.StartForTest(f, func(c *config.Config) { c.Unthrottle(); c.LogLevel = "error" })
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	if _, err := cl.CreateProduct(ctx, client.ProductCreate{Key: "hwp", Name: "hw", Protocol: "huawei"}); err != nil {
		f.Fatal(err)
	}
	base := "/v5/iot/" + creds.Tenant
	routes := []struct {
		method, path string
		json         bool
	}{
		{"POST", base + "/ota-upgrades/packages", true},
		{"GET", base + "/ota-upgrades/packages", false},
		{"POST", base + "/batchtasks", true},
		{"GET", base + "/batchtasks", false},
		{"POST", base + "/batchtasks/000000000000000000000001/retry", true},
		{"POST", base + "/batchtasks/000000000000000000000001/confirm", true},
		{"POST", base + "/ota-upgrades/modules", true},
		{"GET", base + "/ota-upgrades/modules", false},
		{"PUT", base + "/ota-upgrades/modules/m1", true},
		{"GET", base + "/ota-upgrades/packages/x/../../batchtasks", false},
	}
	for _, s := range []struct {
		route       uint8
		query, body string
	}{
		{0, "", `{"app_id":"a1","package_type":"firmwarePackage","product_id":"hwp","version":"1.1","file_location":{"obs_location":{"region_name":"r","bucket_name":"b","object_key":"k"}}}`},
		{0, "", `{"package_type":"softwarePackage","version":"\u202e1"}`},
		{1, "package_type=firmwarePackage&limit=10&offset=0&marker=ffffffffffffffffffffffff", ``},
		{1, "limit=0&marker=xyz", ``},
		{2, "", `{"task_type":"firmwareUpgrade","targets":["hwp_d1"],"document":{"package_id":"p1"}}`},
		{3, "task_type=firmwareUpgrade&status=Processing&limit=50", ``},
		{4, "", `{"target_status":["Fail"],"targets":["hwp_d1"]}`},
		{6, "", `{"module_name":"wifi","product_id":"hwp","description":"x"}`},
		{8, "", `{"description":"y"}`},
		{0, "", `{"version":1e999}`},
	} {
		f.Add(s.route, s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		rt := routes[int(route)%len(routes)]
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", "application/json")
		huaweiiotda.SignForTest(r, creds.AccessKeyID, creds.SecretAccessKey, body, time.Now())
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		what := rt.method + " " + rt.path + "?" + query
		if w.Code >= 500 {
			t.Fatalf("%s: HTTP %d for client input: %s", what, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e struct {
				ErrorCode string `json:"error_code"`
				ErrorMsg  string `json:"error_msg"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.ErrorCode == "" || e.ErrorMsg == "" {
				t.Fatalf("%s: HTTP %d, not Huawei's error envelope: %q", what, w.Code, w.Body)
			}
			if w.Code == 401 {
				t.Fatalf("%s: a request signed as the SDK signs it was refused: %s", what, w.Body)
			}
			return
		}
		if w.Code >= 300 {
			return // the mux's redirect of an unclean path (/x/../y), before the dialect
		}
		if !json.Valid(w.Body.Bytes()) && w.Body.Len() > 0 {
			t.Fatalf("%s: HTTP %d with a body that is not JSON: %q", what, w.Code, w.Body)
		}
		if rt.json && len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
			t.Fatalf("%s: a body that is not JSON was accepted (HTTP %d): %q", what, w.Code, body)
		}
	})
}
