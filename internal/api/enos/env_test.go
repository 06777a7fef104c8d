package enos_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/api/enos"
	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

// stepClock is a fake clock the test moves by hand (token expiry).
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// env is the dialect over a real service (SQLite, file blobs) on a real
// HTTP server, and a tenant with an access key.
type env struct {
	t      *testing.T
	ctx    context.Context
	svc    *service.Service
	clock  *stepClock
	url    string
	org    string
	p      service.Principal
	appKey string
	secret string
	dbPath string
	blobs  string
}

// orgParams is a request's query: orgId and the name/value pairs kv.
func orgParams(org string, kv ...string) map[string]string {
	m := map[string]string{"orgId": org}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// params is orgParams for the env's own organization.
func (e *env) params(kv ...string) map[string]string { return orgParams(e.org, kv...) }

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &stepClock{t: time.Now().UTC()}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), []byte("0123456789abcdef-test-key"), "http://127.0.0.1:1", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(st, blobs, clock, nil, nil, service.Options{DownloadURLTTL: time.Hour})
	key, _, err := svc.Bootstrap(ctx, "org1", "AK-ENOS-1", "SECRET-ENOS-1")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	enos.New(svc, enos.Options{}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{t: t, ctx: ctx, svc: svc, clock: clock, url: hs.URL, org: key.TenantID,
		p: service.Principal{TenantID: key.TenantID, AccessKeyID: key.ID}, appKey: key.ID, secret: key.Secret,
		dbPath: filepath.Join(dir, "updraft.db"), blobs: filepath.Join(dir, "blobs")}
}

// replica is a second server (own store connection, own service) on e's
// database, as after a restart or on another replica.
func (e *env) replica() string {
	e.t.Helper()
	st, err := sqlite.Open(e.ctx, e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	blobs, err := blobfs.New(e.blobs, []byte("0123456789abcdef-test-key"), "http://127.0.0.1:1", e.clock.Now)
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	enos.New(service.New(st, blobs, e.clock, nil, nil, service.Options{}), enos.Options{}).Register(mux)
	hs := httptest.NewServer(mux)
	e.t.Cleanup(hs.Close)
	return hs.URL
}

// ---- An EnOS client written from EnOS's documentation (spec §3.6), sharing
// no code with the server. ----

type enosClient struct {
	t              *testing.T
	base           string
	appKey, secret string
	token          string
	now            func() time.Time
}

func (e *env) client() *enosClient {
	return &enosClient{t: e.t, base: e.url, appKey: e.appKey, secret: e.secret, now: e.clock.Now}
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

type tokenAnswer struct {
	Status int    `json:"status"`
	Msg    string `json:"msg"`
	Data   *struct {
		AccessToken string `json:"accessToken"`
		Expire      int64  `json:"expire"`
	} `json:"data"`
}

// tokenCall posts to token/get or token/refresh with the given timestamp.
func (c *enosClient) tokenCall(op string, ts int64, secret, accessToken string) tokenAnswer {
	c.t.Helper()
	tss := strconv.FormatInt(ts, 10)
	body := map[string]any{"appKey": c.appKey, "encryption": hexSHA256(c.appKey + tss + secret), "timestamp": ts}
	if accessToken != "" {
		body["accessToken"] = accessToken
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(c.base+"/apim-token-service/v2.0/token/"+op, "application/json", bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *enosClient) login() {
	c.t.Helper()
	a := c.tokenCall("get", c.now().UnixMilli(), c.secret, "")
	if a.Status != 0 || a.Data == nil || a.Data.AccessToken == "" {
		c.t.Fatalf("token/get = %+v", a)
	}
	c.token = a.Data.AccessToken
}

type answer struct {
	Code       int             `json:"code"`
	Msg        string          `json:"msg"`
	RequestID  string          `json:"requestId"`
	Data       json.RawMessage `json:"data"`
	Pagination *struct {
		PageNo, PageSize int
		TotalSize        int64
	} `json:"pagination"`
}

// sign computes apim-signature: sha256(token + sorted query name+value +
// body + timestamp + secret).
func (c *enosClient) sign(q url.Values, body []byte, ts string) string {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	s := c.token
	for _, k := range names {
		s += k + q.Get(k)
	}
	return hexSHA256(s + string(body) + ts + c.secret)
}

// do calls resource?action=… with query params and an optional JSON body
// (POST) or none (GET); tamper changes the request after signing.
func (c *enosClient) do(resource, action string, params map[string]string, body any, tamper func(*http.Request)) answer {
	c.t.Helper()
	q := url.Values{"action": {action}}
	for k, v := range params {
		q.Set(k, v)
	}
	var raw []byte
	method := http.MethodGet
	if body != nil {
		raw, _ = json.Marshal(body)
		method = http.MethodPost
	}
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)
	req, _ := http.NewRequest(method, c.base+"/connect-service/v2.1/"+resource+"?"+q.Encode(), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("apim-accesstoken", c.token)
	req.Header.Set("apim-timestamp", ts)
	req.Header.Set("apim-signature", c.sign(q, raw, ts))
	if tamper != nil {
		tamper(req)
	}
	return c.send(req)
}

func (c *enosClient) send(req *http.Request) answer {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out answer
	if err := json.Unmarshal(b, &out); err != nil {
		c.t.Fatalf("%s %s: not JSON: %s", req.Method, req.URL, b)
	}
	return out
}

// upload creates a firmware the way the Python sample does: multipart
// metadata (Python-literal, single quotes) + file, signing the query only.
func (c *enosClient) upload(org, productKey, metadata, fileName string, file []byte) answer {
	c.t.Helper()
	q := url.Values{"action": {"create"}, "orgId": {org}, "productKey": {productKey}}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("metadata", metadata)
	fw, _ := mw.CreateFormFile("file", fileName)
	_, _ = fw.Write(file)
	_ = mw.Close()
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/connect-service/v2.1/ota-firmwares?"+q.Encode(), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("apim-accesstoken", c.token)
	req.Header.Set("apim-timestamp", ts)
	req.Header.Set("apim-signature", c.sign(q, nil, ts))
	return c.send(req)
}

func wantCode(t *testing.T, what string, a answer, code int) {
	t.Helper()
	if a.Code != code {
		t.Fatalf("%s: code %d (%s), want %d", what, a.Code, a.Msg, code)
	}
	if a.RequestID == "" {
		t.Fatalf("%s: no requestId", what)
	}
}

func dataField(t *testing.T, a answer, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Data, &m); err != nil {
		t.Fatalf("data %s: %v", a.Data, err)
	}
	return fmt.Sprint(m[field])
}

// fleet creates a product and online devices that reported version.
func (e *env) fleet(product, version string, names ...string) {
	e.t.Helper()
	if _, err := e.svc.CreateProduct(e.ctx, e.p, ota.Product{Key: product, Name: product}); err != nil {
		e.t.Fatal(err)
	}
	for _, n := range names {
		if _, err := e.svc.CreateDevice(e.ctx, e.p, ota.Device{ProductKey: product, Name: n, Secret: "s3cret-" + n}); err != nil {
			e.t.Fatal(err)
		}
		ref := ota.DeviceRef{ProductKey: product, Name: n}
		if err := e.svc.DeviceConnected(e.ctx, ref, true); err != nil {
			e.t.Fatal(err)
		}
		if err := e.svc.ReportVersion(e.ctx, ref, "", version); err != nil {
			e.t.Fatal(err)
		}
	}
}

func pyMetadata(name, version string, file []byte, verify bool) string {
	sum := sha256.Sum256(file)
	v := "False"
	if verify {
		v = "True"
	}
	return fmt.Sprintf("{'name': {'defaultValue': '%s', 'i18nValue': {'en_US': '%s'}}, 'version': '%s', 'signMethod': 'sha256', 'sign': '%s', 'enableVerification': %s, 'desc': 'new build'}",
		name, name, version, hex.EncodeToString(sum[:]), v)
}

var _ = strings.TrimSpace
