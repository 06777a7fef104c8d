package management_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/management"
	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

const (
	testKeyID  = "TESTKEY0123456789"
	testSecret = "test-secret-0123456789abcdef0123"
)

// env is a real server: the management API and the fs blob store's signed
// download handler on one httptest server, over SQLite and files.
type env struct {
	t        *testing.T
	URL      string
	Client   *client.Client
	Store    *sqlite.Store
	BlobRoot string
	svc      *service.Service
}

// newEnv starts an env whose clock advances a second each time it is read,
// so that ids (which sort by creation second) sort in creation order; the
// blob store's URL signing uses the real time.
func newEnv(t *testing.T, opts management.Options) *env {
	t.Helper()
	return startEnv(t, &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), step: time.Second}, nil, opts)
}

// startEnv starts an env on clock, with blobClock for the blob store's
// signed URLs (nil: the real time).
func startEnv(t *testing.T, clock service.Clock, blobClock func() time.Time, opts management.Options, svcOpts ...service.Options) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	blobRoot := filepath.Join(dir, "blobs")
	blobs, err := blobfs.New(blobRoot, []byte("0123456789abcdef0123456789abcdef"), base, blobClock)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var so service.Options
	if len(svcOpts) > 0 {
		so = svcOpts[0]
	}
	svc := service.New(st, blobs, clock, nil, log, so)
	if _, _, err := svc.Bootstrap(ctx, "default", testKeyID, testSecret); err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = log
	}
	mux := http.NewServeMux()
	mux.Handle(management.Prefix+"/", management.New(svc, opts))
	mux.Handle(blobfs.URLPrefix, blobs.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	return &env{t: t, URL: base, Client: client.New(base, testKeyID, testSecret), Store: st, BlobRoot: blobRoot, svc: svc}
}

// testClock is the injected clock. Each read advances it by step first;
// tests with a zero step move it with Set only.
type testClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// addTenant creates a second tenant with its own key and returns its client.
func (e *env) addTenant(id string) *client.Client {
	e.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := e.Store.CreateTenant(ctx, ota.Tenant{ID: id, Name: id, CreatedAt: now}); err != nil {
		e.t.Fatal(err)
	}
	keyID, secret := strings.ToUpper(id)+"KEY0123456789", id+"-secret-0123456789abcdef"
	if err := e.Store.CreateAccessKey(ctx, ota.AccessKey{ID: keyID, TenantID: id, Secret: secret, Role: ota.RoleAdmin, CreatedAt: now}); err != nil {
		e.t.Fatal(err)
	}
	return client.New(e.URL, keyID, secret)
}

// blobFiles counts the files under the blob root (objects, digest sidecars
// and temporary files alike).
func (e *env) blobFiles() int {
	e.t.Helper()
	n := 0
	err := filepath.WalkDir(e.BlobRoot, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			// Removed while we walk (the server cleans up a failed upload
			// and its empty directories): it holds no file now.
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) packageCount() int64 {
	e.t.Helper()
	l, err := e.Client.ListPackages(context.Background(), client.PackageFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return l.Total
}

// raw sends a request with the test key and returns the answer, body read.
func (e *env) raw(method, path, contentType string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKeyID+":"+testSecret)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// get GETs path with the test key and returns the body of its 200 answer.
func (e *env) get(path string) []byte {
	e.t.Helper()
	resp, body := e.raw(http.MethodGet, path, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

// post POSTs a JSON body with the test key and returns the answer.
func (e *env) post(path, body string) (*http.Response, []byte) {
	e.t.Helper()
	return e.raw(http.MethodPost, path, "application/json", strings.NewReader(body))
}

// schemaChecker checks JSON bodies against the schemas of the OpenAPI
// document the server serves.
type schemaChecker struct {
	t       *testing.T
	schemas map[string]struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
}

func (e *env) openAPISchemas() *schemaChecker {
	e.t.Helper()
	raw, err := e.Client.OpenAPI(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	c := &schemaChecker{t: e.t}
	var doc struct {
		Components struct {
			Schemas any `json:"schemas"`
		} `json:"components"`
	}
	doc.Components.Schemas = &c.schemas
	if err := json.Unmarshal(raw, &doc); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// check fails unless body is a JSON object with only the properties schema
// declares, its required ones, and those in contract.
func (c *schemaChecker) check(schema string, body []byte, contract ...string) {
	c.t.Helper()
	var got map[string]json.RawMessage
	if err := json.Unmarshal(body, &got); err != nil {
		c.t.Fatalf("%s: %v: %s", schema, err, body)
	}
	s, ok := c.schemas[schema]
	if !ok || s.Properties == nil {
		c.t.Fatalf("no schema %s", schema)
	}
	for k := range got {
		if _, ok := s.Properties[k]; !ok {
			c.t.Errorf("%s: the server sends %q, which the document does not declare", schema, k)
		}
	}
	for _, k := range append(s.Required, contract...) {
		if _, ok := got[k]; !ok {
			c.t.Errorf("%s: %q is missing from %s", schema, k, body)
		}
	}
}

// wantAPIError checks that err is an *APIError with status and code whose
// message contains every fragment, and that it carries a request id.
func wantAPIError(t *testing.T, err error, status int, code string, fragments ...string) *client.APIError {
	t.Helper()
	apiErr, ok := err.(*client.APIError)
	if !ok {
		t.Fatalf("want *client.APIError %d %s, got %T %v", status, code, err, err)
	}
	if apiErr.Status != status || apiErr.Code != code {
		t.Fatalf("want %d %s, got %d %s: %s", status, code, apiErr.Status, apiErr.Code, apiErr.Message)
	}
	for _, f := range fragments {
		if !strings.Contains(apiErr.Message, f) {
			t.Errorf("message %q does not mention %q", apiErr.Message, f)
		}
	}
	if apiErr.RequestID == "" {
		t.Errorf("error without request id: %+v", apiErr)
	}
	return apiErr
}

// errorBody is the native error envelope as a test reads it.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	RequestID string `json:"request_id"`
}
