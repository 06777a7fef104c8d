package huaweiiotda_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/signer"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/request"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"
)

// rawRequest is a request signed by the SDK's own signer (core/auth/signer)
// but built by hand, for what the generated client cannot send: malformed
// bodies, a mismatched X-Project-Id, another derived service name.
type rawRequest struct {
	method, path, body string
	query              map[string]string
	headers            map[string]string
	ak, sk             string
	derived            string // "" = SDK-HMAC-SHA256, else the V11 service name
}

func (e *env) send(t *testing.T, r rawRequest) (int, string, []byte) {
	t.Helper()
	if r.ak == "" {
		r.ak, r.sk = e.ak, e.sk
	}
	b := request.NewHttpRequestBuilder().WithEndpoint(e.srv.URL()).WithMethod(r.method).WithPath(r.path).
		AddHeaderParam("Content-Type", "application/json").AddHeaderParam("X-Project-Id", e.project)
	for k, v := range r.query {
		// The SDK keeps query values as reflect.Values; its signer and
		// request writer skip anything else.
		b.AddQueryParam(k, reflect.ValueOf(v))
	}
	for k, v := range r.headers {
		b.AddHeaderParam(k, v)
	}
	if r.body != "" {
		b.WithBody("body", r.body)
	}
	req := b.Build()
	var signed map[string]string
	var err error
	if r.derived != "" {
		signed, err = signer.SignDerived(req, r.ak, r.sk, r.derived, regionID)
	} else {
		signed, err = signer.Sign(req, r.ak, r.sk)
	}
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range signed {
		req.AddHeaderParam(k, v)
	}
	hr, err := req.ConvertRequest()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		ErrorCode string `json:"error_code"`
	}
	_ = json.Unmarshal(body, &env)
	return resp.StatusCode, env.ErrorCode, body
}

// rawCall sends a signed JSON body and returns the status and error_code.
func rawCall(t *testing.T, e *env, method, path, body string) (int, string) {
	t.Helper()
	status, code, _ := e.send(t, rawRequest{method: method, path: path, body: body})
	return status, code
}

// TestAuthentication: both signing modes pass; every way a signature can be
// wrong is a 401 IOTDA.000002 that changes nothing.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "auth/app.bin", firmware)
	create := func() *model.CreateOtaPackageRequest {
		return createPkgReq("prod1", "V2.0", "fw-bucket", "auth/app.bin", ptr(sum))
	}
	sdkDate := func(d time.Duration) string { return time.Now().UTC().Add(d).Format("20060102T150405Z") }

	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			ok := []struct {
				name string
				opts []clientOpt
			}{
				{"plain", nil},
				{"date 14 minutes behind", []clientOpt{withHeader("X-Sdk-Date", sdkDate(-14*time.Minute))}},
				{"date 14 minutes ahead", []clientOpt{withHeader("X-Sdk-Date", sdkDate(14*time.Minute))}},
				{"Instance-Id signed too", []clientOpt{withHeader("Instance-Id", "inst-1")}},
			}
			for _, tc := range ok {
				if _, err := e.client(mode, tc.opts...).CreateOtaPackage(create()); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			bad := []struct {
				name string
				opts []clientOpt
			}{
				{"wrong secret key", []clientOpt{withKey(e.ak, e.sk+"x")}},
				{"unknown access key", []clientOpt{withKey("AKNOTKNOWN", e.sk)}},
				{"date 16 minutes behind", []clientOpt{withHeader("X-Sdk-Date", sdkDate(-16*time.Minute))}},
				{"date 16 minutes ahead", []clientOpt{withHeader("X-Sdk-Date", sdkDate(16*time.Minute))}},
				{"another project", []clientOpt{withProject("someone-else")}},
			}
			for _, tc := range bad {
				before := e.packageCount()
				_, err := e.client(mode, tc.opts...).CreateOtaPackage(create())
				se := wantAPIError(t, err, 401, "IOTDA.000002")
				if e.packageCount() != before {
					t.Errorf("%s: a rejected request stored a package", tc.name)
				}
				t.Logf("%s: %s", tc.name, se.ErrorMessage)
			}
		})
	}

	path := "/v5/iot/" + e.project + "/ota-upgrades/packages"
	query := map[string]string{"package_type": "firmwarePackage"}
	t.Run("signer accepted", func(t *testing.T) {
		odd := map[string]string{"package_type": "firmwarePackage", "version": "v 1*~é/+&=%", "product_id": "p_1-x.y"}
		for _, d := range []string{"", "iotdm"} {
			for _, q := range []map[string]string{query, odd} {
				if status, code, body := e.send(t, rawRequest{method: "GET", path: path, query: q, derived: d}); status != 200 {
					t.Fatalf("derived %q, query %v: %d %s %s", d, q, status, code, body)
				}
			}
		}
	})
	rejected := []struct {
		name string
		r    rawRequest
	}{
		{"X-Project-Id differs from the path", rawRequest{method: "GET", path: path, query: query, headers: map[string]string{"X-Project-Id": "other"}}},
		{"V11 for another service", rawRequest{method: "GET", path: path, query: query, derived: "ecs"}},
		{"unsigned payload on JSON", rawRequest{method: "GET", path: path, query: query, headers: map[string]string{"X-Sdk-Content-Sha256": "UNSIGNED-PAYLOAD"}}},
	}
	for _, tc := range rejected {
		t.Run(tc.name, func(t *testing.T) {
			if status, code, body := e.send(t, tc.r); status != 401 || code != "IOTDA.000002" {
				t.Fatalf("got %d %s %s, want 401 IOTDA.000002", status, code, body)
			}
		})
	}

	t.Run("unsigned and tampered", func(t *testing.T) {
		cases := map[string]func(*http.Request){
			"no Authorization": func(r *http.Request) { r.Header.Del("Authorization") },
			"IAM token":        func(r *http.Request) { r.Header.Del("Authorization"); r.Header.Set("X-Auth-Token", "MIIx") },
			"other scheme":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") },
			"query changed":    func(r *http.Request) { r.URL.RawQuery = "package_type=softwarePackage" },
			"no X-Sdk-Date":    func(r *http.Request) { r.Header.Del("X-Sdk-Date") },
		}
		for name, tamper := range cases {
			rec := &recorder{}
			c := e.client(modeSDK, withRecorder(rec))
			rec.next = tamperer{tamper}
			_, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage"})
			se := wantAPIError(t, err, 401, "IOTDA.000002")
			t.Logf("%s: %s", name, se.ErrorMessage)
		}
	})
	t.Run("body changed after signing", func(t *testing.T) {
		before := e.packageCount()
		rec := &recorder{}
		c := e.client(modeV11, withRecorder(rec))
		rec.next = tamperer{func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			m["version"] = "V6.6"
			nb, _ := json.Marshal(m)
			r.Body = io.NopCloser(bytesReader(nb))
			r.ContentLength = int64(len(nb))
		}}
		_, err := c.CreateOtaPackage(create())
		wantAPIError(t, err, 401, "IOTDA.000002")
		if e.packageCount() != before {
			t.Error("a tampered request stored a package")
		}
	})
}

// tamperer changes a signed request before sending it.
type tamperer struct{ f func(*http.Request) }

func (t tamperer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.f(r)
	return http.DefaultTransport.RoundTrip(r)
}
