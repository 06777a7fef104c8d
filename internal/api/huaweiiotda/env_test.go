package huaweiiotda_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	sdkconfig "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/region"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	iotda "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// regionID is any region: Updraft has one, and V11 signs with the name.
const regionID = "cn-north-4"

// Signing modes the SDK offers.
const (
	modeSDK = "SDK-HMAC-SHA256"
	modeV11 = "V11-HMAC-SHA256"
)

var modes = []string{modeSDK, modeV11}

// env is a real Updraft server (SQLite, file blobs) and its first tenant.
type env struct {
	t       *testing.T
	srv     *server.Server
	svc     *service.Service
	p       service.Principal
	ak, sk  string
	project string
	native  *client.Client
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith starts the server with a changed configuration.
func newEnvWith(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	srv := server.StartForTest(t, mutate)
	creds, ok := srv.Credentials()
	if !ok {
		t.Fatal("the test server has no bootstrap credentials")
	}
	// Runs before the server's shutdown: a connection the client dialed but
	// never used would otherwise hold http.Server.Shutdown for 5 s.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	return &env{
		t:       t,
		srv:     srv,
		svc:     srv.Service(),
		p:       service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID},
		ak:      creds.AccessKeyID,
		sk:      creds.SecretAccessKey,
		project: creds.Tenant,
		native:  client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey),
	}
}

// clientOpts change how an SDK client signs.
type clientOpts struct {
	ak, sk, project string
	headers         map[string]string
	rec             *recorder
}

type clientOpt func(*clientOpts)

func withKey(ak, sk string) clientOpt    { return func(o *clientOpts) { o.ak, o.sk = ak, sk } }
func withProject(p string) clientOpt     { return func(o *clientOpts) { o.project = p } }
func withRecorder(r *recorder) clientOpt { return func(o *clientOpts) { o.rec = r } }
func withHeader(k, v string) clientOpt {
	return func(o *clientOpts) {
		if o.headers == nil {
			o.headers = map[string]string{}
		}
		o.headers[k] = v
	}
}

// client is the official IoTDA SDK pointed at the server, signing in mode.
func (e *env) client(mode string, opts ...clientOpt) *iotda.IoTDAClient {
	e.t.Helper()
	o := clientOpts{ak: e.ak, sk: e.sk, project: e.project}
	for _, f := range opts {
		f(&o)
	}
	cred := basic.NewCredentialsBuilder().WithAk(o.ak).WithSk(o.sk).WithProjectId(o.project)
	if mode == modeV11 {
		cred = cred.WithDerivedPredicate(auth.GetDefaultDerivedPredicate())
	}
	built, err := cred.SafeBuild()
	if err != nil {
		e.t.Fatal(err)
	}
	hc := sdkconfig.DefaultHttpConfig()
	rt := &recorder{next: http.DefaultTransport}
	if o.rec != nil {
		o.rec.next = http.DefaultTransport
		rt = o.rec
	}
	hc.WithHttpRoundTripper(rt)
	hcc, err := iotda.IoTDAClientBuilder().
		WithRegion(region.NewRegion(regionID, e.srv.URL())).
		WithCredential(built).
		WithHttpConfig(hc).
		SafeBuild()
	if err != nil {
		e.t.Fatal(err)
	}
	if o.headers != nil {
		hcc.WithExtraHeaders(o.headers)
	}
	return iotda.NewIoTDAClient(hcc)
}

// product registers a product.
func (e *env) product(key string) {
	e.t.Helper()
	if _, err := e.svc.CreateProduct(context.Background(), e.p, ota.Product{Key: key, Name: "Product " + key, Protocol: ota.ProtocolHuawei}); err != nil {
		e.t.Fatal(err)
	}
}

// devices registers devices of a product, all in the given groups.
func (e *env) devices(product string, groups []string, names ...string) {
	e.t.Helper()
	for _, n := range names {
		if _, err := e.svc.CreateDevice(context.Background(), e.p, ota.Device{ProductKey: product, Name: n, Groups: groups}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// putObject stores content through the native object API and returns its SHA-256.
func (e *env) putObject(bucket, key string, content []byte) string {
	e.t.Helper()
	obj, err := e.native.PutObject(context.Background(), bucket, key, bytes.NewReader(content), int64(len(content)))
	if err != nil {
		e.t.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
	sum := sha256.Sum256(content)
	if want := hex.EncodeToString(sum[:]); obj.SHA256 != want || obj.Size != int64(len(content)) {
		e.t.Fatalf("PutObject measured %d bytes %s, want %d bytes %s", obj.Size, obj.SHA256, len(content), want)
	}
	return obj.SHA256
}

// packageCount is how many packages the tenant has.
func (e *env) packageCount() int64 {
	e.t.Helper()
	_, n, err := e.svc.ListPackages(context.Background(), e.p, store.PackageFilter{}, store.Page{Limit: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// jobCount is how many jobs the tenant has.
func (e *env) jobCount() int64 {
	e.t.Helper()
	_, n, err := e.svc.ListJobs(context.Background(), e.p, store.JobFilter{}, store.Page{Limit: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// advance runs the rollout engine until it has nothing left to do.
func (e *env) advance() {
	e.t.Helper()
	for range 50 {
		rep, err := e.svc.Advance(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if !rep.DidWork() {
			return
		}
	}
	e.t.Fatal("the engine still had work after 50 ticks")
}

// wantAPIError checks that err is Huawei's error answer with status and code.
func wantAPIError(t *testing.T, err error, status int, code string) *sdkerr.ServiceResponseError {
	t.Helper()
	var se *sdkerr.ServiceResponseError
	if !errors.As(err, &se) {
		t.Fatalf("want HTTP %d %s, got %v", status, code, err)
	}
	if se.StatusCode != status || se.ErrorCode != code {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s: %s", status, code, se.StatusCode, se.ErrorCode, se.ErrorMessage)
	}
	if se.ErrorMessage == "" {
		t.Errorf("error %s has no error_msg", code)
	}
	if se.RequestId == "" {
		t.Errorf("error %s has no X-Request-Id", code)
	}
	return se
}

// recorder keeps the last exchange that passed through it, for golden files.
type recorder struct {
	next     http.RoundTripper
	method   string
	path     string
	query    string
	reqBody  []byte
	status   int
	respBody []byte
	header   http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.method, r.path, r.query = req.Method, req.URL.Path, req.URL.RawQuery
	r.reqBody = nil
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		r.reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.status, r.respBody, r.header = resp.StatusCode, b, resp.Header
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

var (
	hexID    = regexp.MustCompile(`^[0-9a-f]{24}$`)
	iotdaTS  = regexp.MustCompile(`^\d{8}T\d{6}Z$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	pathIDs  = regexp.MustCompile(`/[0-9a-f]{24}(/|$)`)
)

// normalize replaces what changes from run to run (ids, times, digests of
// random content) with placeholders.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			x[k] = normalize(val)
		}
		// task_progress: the server's engine wakes on create and may notify
		// a target before the response is read back (Waitting → Processing);
		// the golden files hold the shape, so both count as waiting.
		w, okW := x["waitting"].(float64)
		p, okP := x["processing"].(float64)
		if okW && okP {
			x["waitting"], x["processing"] = w+p, float64(0)
		}
	case []any:
		for i, val := range x {
			x[i] = normalize(val)
		}
	case string:
		switch {
		case hexID.MatchString(x):
			return "<id>"
		case iotdaTS.MatchString(x):
			return "<time>"
		case sha256Re.MatchString(x):
			return "<sha256>"
		}
	}
	return v
}

type golden struct {
	Request struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		Query  string `json:"query,omitempty"`
		Body   any    `json:"body,omitempty"`
	} `json:"request"`
	Status   int `json:"status"`
	Response any `json:"response,omitempty"`
}

// checkGolden compares the recorded exchange with testdata/name.json (or
// writes it with -update).
func checkGolden(t *testing.T, rec *recorder, project, name string) {
	t.Helper()
	var g golden
	g.Request.Method = rec.method
	g.Request.Path = pathIDs.ReplaceAllString(rec.path, "/<id>$1")
	g.Request.Path = regexp.MustCompile(`^/v5/iot/`+regexp.QuoteMeta(project)+`/`).ReplaceAllString(g.Request.Path, "/v5/iot/{project_id}/")
	g.Request.Query = rec.query
	if len(rec.reqBody) > 0 {
		var body any
		if err := json.Unmarshal(rec.reqBody, &body); err != nil {
			t.Fatalf("request body is not JSON: %v", err)
		}
		g.Request.Body = normalize(body)
	}
	g.Status = rec.status
	if len(rec.respBody) > 0 {
		var body any
		if err := json.Unmarshal(rec.respBody, &body); err != nil {
			t.Fatalf("response body is not JSON: %v: %s", err, rec.respBody)
		}
		g.Response = normalize(body)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
