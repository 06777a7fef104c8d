package aliyuniot_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
)

// regionID is any region: Updraft has one.
const regionID = "cn-shanghai"

// env is a real Updraft server (SQLite, file blobs) and its first tenant.
type env struct {
	t      *testing.T
	srv    *server.Server
	svc    *service.Service
	p      service.Principal
	ak, sk string
	host   string // host:port of the server
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

func newEnvWith(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	srv := server.StartForTest(t, mutate)
	creds, ok := srv.Credentials()
	if !ok {
		t.Fatal("the test server has no bootstrap credentials")
	}
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	u, _ := url.Parse(srv.URL())
	return &env{t: t, srv: srv, svc: srv.Service(), ak: creds.AccessKeyID, sk: creds.SecretAccessKey, host: u.Host,
		p: service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID}}
}

func (e *env) product(key string) {
	e.t.Helper()
	if _, err := e.svc.CreateProduct(context.Background(), e.p, ota.Product{Key: key, Name: "Product " + key}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) devices(product string, names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.svc.CreateDevice(context.Background(), e.p, ota.Device{ProductKey: product, Name: n}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// legacy is alibaba-cloud-sdk-go's IoT client (RPC v1 signing) aimed at the server.
func (e *env) legacy(ak, sk string) *iot.Client {
	e.t.Helper()
	c, err := iot.NewClientWithAccessKey(regionID, ak, sk)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// at points a legacy request at the server over plain HTTP.
func at[R interface {
	SetScheme(string)
	SetDomain(string)
}](e *env, req R) R {
	req.SetScheme("HTTP")
	req.SetDomain(e.host)
	return req
}

// tea is the Tea SDK's OpenAPI client as iot-20180120 builds it (Style RPC,
// CallApi), signing with ACS3-HMAC-SHA256 (alg "") or RPC v1 (alg "v2").
type tea struct {
	t   *testing.T
	c   *openapi.Client
	alg string
}

func (e *env) tea(alg, ak, sk string) *tea {
	e.t.Helper()
	cfg := &openapi.Config{AccessKeyId: dara.String(ak), AccessKeySecret: dara.String(sk),
		Endpoint: dara.String(e.host), Protocol: dara.String("http"), RegionId: dara.String(regionID)}
	if alg != "" {
		cfg.SignatureAlgorithm = dara.String(alg)
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return &tea{t: e.t, c: c, alg: alg}
}

// call runs action with flattened query parameters the way the generated
// iot-20180120 client does (Query(ToMap(request))), returning the body.
func (c *tea) call(method, action string, query map[string]string) (map[string]any, error) {
	q := map[string]*string{}
	for k, v := range query {
		q[k] = dara.String(v)
	}
	params := &openapi.Params{Action: dara.String(action), Version: dara.String("2018-01-20"), Protocol: dara.String("HTTPS"),
		Pathname: dara.String("/"), Method: dara.String(method), AuthType: dara.String("AK"), Style: dara.String("RPC"),
		ReqBodyType: dara.String("formData"), BodyType: dara.String("json")}
	res, err := c.c.CallApi(params, &openapi.OpenApiRequest{Query: q}, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	body, _ := res["body"].(map[string]any)
	return body, nil
}

// mustCall fails the test unless the call succeeded with Success:true.
func (c *tea) mustCall(action string, query map[string]string) map[string]any {
	c.t.Helper()
	body, err := c.call("POST", action, query)
	if err != nil {
		c.t.Fatalf("tea(%s) %s: %v", c.alg, action, err)
	}
	if body["Success"] != true {
		c.t.Fatalf("tea(%s) %s: %v", c.alg, action, body)
	}
	return body
}

// upload posts file to the OSS form GenerateOTAUploadURL returned, as a
// browser or the OSS PostObject docs do, and returns the HTTP status and body.
func upload(t *testing.T, host, key, akID, policy, sig string, file []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [][2]string{{"key", key}, {"OSSAccessKeyId", akID}, {"policy", policy}, {"Signature", sig}, {"success_action_status", "204"}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "firmware.bin")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	mw.Close()
	resp, err := http.Post(host, mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case json.Number:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}
