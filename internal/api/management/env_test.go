package management_test

import (
	"context"
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
}

func newEnv(t *testing.T, opts management.Options) *env {
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
	blobs, err := blobfs.New(blobRoot, []byte("0123456789abcdef0123456789abcdef"), base, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(st, blobs, &stepClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}, nil, log, service.Options{})
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

	return &env{t: t, URL: base, Client: client.New(base, testKeyID, testSecret), Store: st, BlobRoot: blobRoot}
}

// stepClock advances a second each time it is read, so that ids (which sort
// by creation second) sort in creation order.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
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
	if err := e.Store.CreateAccessKey(ctx, ota.AccessKey{ID: keyID, TenantID: id, Secret: secret, CreatedAt: now}); err != nil {
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
