package huaweiiotda_test

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"
)

// firmware is a package file's content.
var firmware = []byte("updraft firmware image v2.0\n")

func obs(bucket, key string, sign *string) *model.FileLocation {
	return &model.FileLocation{ObsLocation: &model.ObsLocation{RegionName: "cn-north-4", BucketName: bucket, ObjectKey: key, Sign: sign}}
}

func createPkgReq(product, version, bucket, key string, sign *string) *model.CreateOtaPackageRequest {
	return &model.CreateOtaPackageRequest{Body: &model.CreateOtaPackage{
		AppId: "app1", PackageType: "firmwarePackage", ProductId: product, Version: version,
		FileLocation: obs(bucket, key, sign),
	}}
}

// TestOtaPackageLifecycle: create, list, show and delete through the SDK in
// both signing modes; the object outlives the package.
func TestOtaPackageLifecycle(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "dir/app.bin", firmware)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			rec := &recorder{}
			c := e.client(mode, withRecorder(rec))
			req := createPkgReq("prod1", "V2.0", "fw-bucket", "dir/app.bin", ptr(sum))
			req.Body.Description = ptr("package v2.0")
			req.Body.CustomInfo = ptr("Fixed the XX issue.")
			req.Body.SupportSourceVersions = &[]string{"V1.0"}
			created, err := c.CreateOtaPackage(req)
			if err != nil {
				t.Fatal(err)
			}
			if created.HttpStatusCode != 201 || created.PackageId == nil || *created.Version != "V2.0" ||
				*created.ProductName != "Product prod1" || *created.FileLocation.ObsLocation.Sign != sum ||
				created.FileLocation.ObsLocation.BucketName != "fw-bucket" || *created.AppId != "app1" {
				t.Fatalf("create: %+v", created)
			}
			if rec.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on the response")
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "create_ota_package")
			}
			id := *created.PackageId

			shown, err := c.ShowOtaPackage(&model.ShowOtaPackageRequest{PackageId: id})
			if err != nil {
				t.Fatal(err)
			}
			if shown.HttpStatusCode != 200 || *shown.PackageId != id || *shown.CreateTime != *created.CreateTime ||
				shown.FileLocation.ObsLocation.ObjectKey != "dir/app.bin" || (*shown.SupportSourceVersions)[0] != "V1.0" {
				t.Fatalf("show: %+v", shown)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "show_ota_package")
			}

			list, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage", ProductId: ptr("prod1")})
			if err != nil {
				t.Fatal(err)
			}
			if *list.Page.Count != 1 || len(*list.Packages) != 1 || *(*list.Packages)[0].PackageId != id || *list.Page.Marker != id {
				t.Fatalf("list: %+v", list)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "list_ota_packages")
			}
			// The listing is per package type.
			sw, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "softwarePackage"})
			if err != nil || *sw.Page.Count != 0 || len(*sw.Packages) != 0 {
				t.Fatalf("software list: %+v %v", sw, err)
			}

			del, err := c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: id})
			if err != nil {
				t.Fatal(err)
			}
			if del.HttpStatusCode != 204 {
				t.Fatalf("delete answered %d", del.HttpStatusCode)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "delete_ota_package")
			}
			_, err = c.ShowOtaPackage(&model.ShowOtaPackageRequest{PackageId: id})
			wantAPIError(t, err, 404, "IOTDA.000404")
			// The object was left in place: it registers again, with the same digest.
			again, err := c.CreateOtaPackage(createPkgReq("prod1", "V2.0", "fw-bucket", "dir/app.bin", ptr(sum)))
			if err != nil {
				t.Fatalf("the object is gone after the package was deleted: %v", err)
			}
			if _, err := c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: *again.PackageId}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSeedDifferentialExample sends the seed page's second example request
// (a differential package for V1.0 and V1.1) and compares the answer with the
// seed's example response. The seed's sign is the digest of Huawei's sample
// file, which Updraft cannot hold, so the request carries the SHA-256 of the
// object actually put; package_id and create_time are the server's.
func TestSeedDifferentialExample(t *testing.T) {
	e := newEnv(t)
	raw, err := os.ReadFile("testdata/seed_create_ota_package_differential.json")
	if err != nil {
		t.Fatal(err)
	}
	var seed struct {
		Request  json.RawMessage `json:"request"`
		Status   int             `json:"status"`
		Response map[string]any  `json:"response"`
	}
	if err := json.Unmarshal(raw, &seed); err != nil {
		t.Fatal(err)
	}
	var body model.CreateOtaPackage
	if err := json.Unmarshal(seed.Request, &body); err != nil {
		t.Fatal(err)
	}
	e.product(body.ProductId)
	sum := e.putObject(body.FileLocation.ObsLocation.BucketName, body.FileLocation.ObsLocation.ObjectKey, firmware)
	body.FileLocation.ObsLocation.Sign = &sum

	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			rec := &recorder{}
			_, err := e.client(mode, withRecorder(rec)).CreateOtaPackage(&model.CreateOtaPackageRequest{Body: &body})
			if err != nil {
				t.Fatal(err)
			}
			if rec.status != seed.Status {
				t.Fatalf("status %d, want %d", rec.status, seed.Status)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.respBody, &got); err != nil {
				t.Fatal(err)
			}
			if id, _ := got["package_id"].(string); !hexID.MatchString(id) {
				t.Errorf("package_id %q is not an IoTDA id", id)
			}
			if ts, _ := got["create_time"].(string); !iotdaTS.MatchString(ts) {
				t.Errorf("create_time %q is not yyyyMMdd'T'HHmmss'Z'", ts)
			}
			if got["product_name"] != "Product "+body.ProductId {
				t.Errorf("product_name = %v", got["product_name"])
			}
			want := seed.Response
			want["file_location"].(map[string]any)["obs_location"].(map[string]any)["sign"] = sum
			for k, v := range want {
				if k == "package_id" || k == "create_time" {
					continue
				}
				gb, _ := json.Marshal(got[k])
				wb, _ := json.Marshal(v)
				if string(gb) != string(wb) {
					t.Errorf("%s = %s, the seed says %s", k, gb, wb)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok && k != "product_name" {
					t.Errorf("unexpected response field %s", k)
				}
			}
		})
	}
}

// TestCreateOtaPackageLimits: every documented limit just inside and just
// outside; a rejected request stores nothing.
func TestCreateOtaPackageLimits(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	e.product("prod-mod")
	sum := e.putObject("fw-bucket", "limits/app.bin", firmware)
	c := e.client(modeSDK)

	versions := func(n int) *[]string {
		vs := make([]string, n)
		for i := range vs {
			vs[i] = "V1." + strings.Repeat("1", i+1)
		}
		return &vs
	}
	type tc struct {
		name   string
		mutate func(*model.CreateOtaPackage)
		status int
		code   string
	}
	cases := []tc{
		{"20 source versions", func(b *model.CreateOtaPackage) { b.SupportSourceVersions = versions(20) }, 201, ""},
		{"21 source versions", func(b *model.CreateOtaPackage) { b.SupportSourceVersions = versions(21) }, 400, "IOTDA.000006"},
		{"source version with a bad character", func(b *model.CreateOtaPackage) { b.SupportSourceVersions = &[]string{"V1/0"} }, 400, "IOTDA.000006"},
		{"version of 256", func(b *model.CreateOtaPackage) { b.Version = "V" + strings.Repeat("9", 255) }, 201, ""},
		{"version of 257", func(b *model.CreateOtaPackage) { b.Version = "V" + strings.Repeat("9", 256) }, 400, "IOTDA.000006"},
		{"version with a space", func(b *model.CreateOtaPackage) { b.Version = "V 2" }, 400, "IOTDA.000006"},
		{"version with _ - .", func(b *model.CreateOtaPackage) { b.Version = "v_2-0.1" }, 201, ""},
		{"missing version", func(b *model.CreateOtaPackage) { b.Version = "" }, 400, "IOTDA.000006"},
		{"description of 1024", func(b *model.CreateOtaPackage) { b.Description = ptr(strings.Repeat("d", 1024)) }, 201, ""},
		{"description of 1025", func(b *model.CreateOtaPackage) { b.Description = ptr(strings.Repeat("d", 1025)) }, 400, "IOTDA.000006"},
		{"custom_info of 4096", func(b *model.CreateOtaPackage) { b.CustomInfo = ptr(strings.Repeat("c", 4096)) }, 201, ""},
		{"custom_info of 4097", func(b *model.CreateOtaPackage) { b.CustomInfo = ptr(strings.Repeat("c", 4097)) }, 400, "IOTDA.000006"},
		{"app_id of 36", func(b *model.CreateOtaPackage) { b.AppId = strings.Repeat("a", 36) }, 201, ""},
		{"app_id of 37", func(b *model.CreateOtaPackage) { b.AppId = strings.Repeat("a", 37) }, 400, "IOTDA.000006"},
		{"app_id with a dot", func(b *model.CreateOtaPackage) { b.AppId = "app.1" }, 400, "IOTDA.000006"},
		{"missing app_id", func(b *model.CreateOtaPackage) { b.AppId = "" }, 400, "IOTDA.000006"},
		{"unknown package_type", func(b *model.CreateOtaPackage) { b.PackageType = "bootPackage" }, 400, "IOTDA.000006"},
		{"unknown product", func(b *model.CreateOtaPackage) { b.ProductId = "nope" }, 404, "IOTDA.000404"},
		{"module_name on a firmware package", func(b *model.CreateOtaPackage) { b.ModuleName = ptr("mcu") }, 400, "IOTDA.000006"},
		{"modulePackage without module_name", func(b *model.CreateOtaPackage) { b.PackageType = "modulePackage" }, 400, "IOTDA.000006"},
		{"modulePackage of an unknown module", func(b *model.CreateOtaPackage) {
			b.PackageType, b.ProductId, b.ModuleName = "modulePackage", "prod-mod", ptr("mcu")
		}, 404, "IOTDA.000404"},
		{"no file_location", func(b *model.CreateOtaPackage) { b.FileLocation = nil }, 400, "IOTDA.000006"},
		{"bucket of 3", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = "abc" }, 404, "IOTDA.000404"}, // valid name, no such object
		{"bucket of 2", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = "ab" }, 400, "IOTDA.000006"},
		{"bucket of 63", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = strings.Repeat("b", 63) }, 404, "IOTDA.000404"},
		{"bucket of 64", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = strings.Repeat("b", 64) }, 400, "IOTDA.000006"},
		{"bucket with upper case", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = "Fw-bucket" }, 400, "IOTDA.000006"},
		{"bucket with _", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.BucketName = "fw_bucket" }, 400, "IOTDA.000006"},
		{"object key of 1025", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.ObjectKey = strings.Repeat("k", 1025) }, 400, "IOTDA.000006"},
		{"missing object", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.ObjectKey = "limits/none.bin" }, 404, "IOTDA.000404"},
		{"sign mismatch", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.Sign = ptr(strings.Repeat("0", 64)) }, 400, "IOTDA.000006"},
		{"sign of 63", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.Sign = ptr(sum[:63]) }, 400, "IOTDA.000006"},
		{"sign upper case", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.Sign = ptr(strings.ToUpper(sum)) }, 201, ""},
		{"no sign", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.Sign = nil }, 201, ""},
		{"sign_method SHA256", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.SignMethod = ptr("SHA256") }, 201, ""},
		{"sign_method MD5", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.SignMethod = ptr("MD5") }, 400, "IOTDA.000006"},
		{"region with a dot", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.RegionName = "cn.north" }, 400, "IOTDA.000006"},
		{"region of 257", func(b *model.CreateOtaPackage) { b.FileLocation.ObsLocation.RegionName = strings.Repeat("r", 257) }, 400, "IOTDA.000006"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := createPkgReq("prod1", "V2.0", "fw-bucket", "limits/app.bin", ptr(sum)).Body
			tc.mutate(body)
			before := e.packageCount()
			resp, err := c.CreateOtaPackage(&model.CreateOtaPackageRequest{Body: body})
			if tc.status == 201 {
				if err != nil {
					t.Fatalf("want 201, got %v", err)
				}
				if *resp.FileLocation.ObsLocation.Sign != sum {
					t.Errorf("sign = %s, want the object's SHA-256", *resp.FileLocation.ObsLocation.Sign)
				}
				if e.packageCount() != before+1 {
					t.Error("the package was not stored")
				}
				return
			}
			wantAPIError(t, err, tc.status, tc.code)
			if e.packageCount() != before {
				t.Error("a rejected request stored a package")
			}
		})
	}

	t.Run("malformed JSON", func(t *testing.T) {
		// The SDK always sends well-formed JSON: these are signed by its signer.
		before := e.packageCount()
		status, code := rawCall(t, e, "POST", "/v5/iot/"+e.project+"/ota-upgrades/packages", `{"app_id": 1`)
		if status != 400 || code != "IOTDA.000008" {
			t.Fatalf("got %d %s, want 400 IOTDA.000008", status, code)
		}
		status, code = rawCall(t, e, "POST", "/v5/iot/"+e.project+"/ota-upgrades/packages", `{"version": 2}`)
		if status != 400 || code != "IOTDA.000008" {
			t.Fatalf("got %d %s, want 400 IOTDA.000008", status, code)
		}
		if e.packageCount() != before {
			t.Error("a malformed request stored a package")
		}
	})
}

// TestListOtaPackagesPaging: limit 1–50, offset 0–500, a 24-hex marker, ids
// below the marker, newest first.
func TestListOtaPackagesPaging(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "paging/app.bin", firmware)
	c := e.client(modeV11)
	var ids []string
	for _, v := range []string{"V1", "V2", "V3"} {
		r, err := c.CreateOtaPackage(createPkgReq("prod1", v, "fw-bucket", "paging/app.bin", ptr(sum)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *r.PackageId)
	}
	list := func(limit, offset *int32, marker *string) (*model.ListOtaPackageInfoResponse, error) {
		return c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage", Limit: limit, Offset: offset, Marker: marker})
	}
	// Newest first means highest id first (ids start with their creation
	// second); walk the pages with the marker.
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	page, err := list(ptr(int32(2)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(*page.Packages); n != 2 || *page.Page.Count != 3 || *(*page.Packages)[0].PackageId != ids[0] ||
		*(*page.Packages)[1].PackageId != ids[1] || *page.Page.Marker != ids[1] {
		t.Fatalf("first page: %+v, want %v", page, ids)
	}
	next, err := list(ptr(int32(2)), nil, page.Page.Marker)
	if err != nil {
		t.Fatal(err)
	}
	if len(*next.Packages) != 1 || *(*next.Packages)[0].PackageId != ids[2] {
		t.Fatalf("page after marker %s: %+v", *page.Page.Marker, next)
	}
	off, err := list(ptr(int32(50)), ptr(int32(1)), ptr("ffffffffffffffffffffffff"))
	if err != nil || len(*off.Packages) != 2 || *(*off.Packages)[0].PackageId != ids[1] {
		t.Fatalf("offset 1: %+v %v", off, err)
	}
	if r, err := list(ptr(int32(1)), ptr(int32(500)), nil); err != nil || len(*r.Packages) != 0 {
		t.Fatalf("offset 500: %+v %v", r, err)
	}
	// Defaults: 10 per page.
	if r, err := list(nil, nil, nil); err != nil || len(*r.Packages) != 3 {
		t.Fatalf("default page: %+v %v", r, err)
	}

	_, err = list(ptr(int32(51)), nil, nil)
	wantAPIError(t, err, 400, "IOTDA.000017")
	_, err = list(ptr(int32(0)), nil, nil)
	wantAPIError(t, err, 400, "IOTDA.000017")
	_, err = list(nil, ptr(int32(501)), nil)
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = list(nil, ptr(int32(-1)), nil)
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = list(nil, nil, ptr("xyz"))
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{})
	wantAPIError(t, err, 400, "IOTDA.000006")

	// app_id filters (the resource space).
	other := createPkgReq("prod1", "V4", "fw-bucket", "paging/app.bin", ptr(sum))
	other.Body.AppId = "space2"
	if _, err := c.CreateOtaPackage(other); err != nil {
		t.Fatal(err)
	}
	sp, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage", AppId: ptr("space2")})
	if err != nil || *sp.Page.Count != 1 || *(*sp.Packages)[0].AppId != "space2" {
		t.Fatalf("app_id filter: %+v %v", sp, err)
	}
}

// TestUnknownOperation: paths under /v5/iot/ that are not OTA operations get
// Huawei's envelope, not a plain-text 404.
func TestUnknownOperation(t *testing.T) {
	e := newEnv(t)
	for _, r := range []rawRequest{
		{method: "GET", path: "/v5/iot/" + e.project + "/devices"},
		{method: "PATCH", path: "/v5/iot/" + e.project + "/ota-upgrades/packages"},
	} {
		status, code, body := e.send(t, r)
		if status != 404 || code != "IOTDA.000404" {
			t.Errorf("%s %s: %d %s", r.method, r.path, status, body)
		}
	}
}
