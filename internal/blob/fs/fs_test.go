package fs_test

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/blob/blobtest"
	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
)

var signingKey = []byte("0123456789abcdef-test-signing-key")

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// clocks maps each store a test opened to its clock.
var clocks sync.Map // *blobfs.Store → *fakeClock

// newStore returns a store in a temp dir, served by an httptest server the
// way the Updraft server mounts it (at /blob/, no prefix stripping).
func newStore(t *testing.T) *blobfs.Store {
	t.Helper()
	var st *blobfs.Store
	mux := http.NewServeMux()
	mux.Handle(blobfs.URLPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { st.Handler().ServeHTTP(w, r) }))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	clock := &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	st, err := blobfs.New(t.TempDir(), signingKey, srv.URL+"/", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	clocks.Store(st, clock)
	return st
}

// leftovers lists every file the store holds for bucket: data, sidecars and
// temp files alike.
func leftovers(t *testing.T, s blob.Store, bucket string) []string {
	root := s.(*blobfs.Store).Root()
	var files []string
	for _, dir := range []string{filepath.Join(root, bucket), filepath.Join(root, ".meta", bucket)} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if !d.IsDir() {
				files = append(files, strings.TrimPrefix(p, root))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestFS(t *testing.T) {
	blobtest.Run(t,
		func(t *testing.T) blob.Store { return newStore(t) },
		blobtest.WithClock(func(s blob.Store, d time.Duration) {
			c, _ := clocks.Load(s)
			c.(*fakeClock).Advance(d)
		}),
		blobtest.WithLeftovers(leftovers),
	)
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, root, base string
		key              []byte
	}{
		{"empty root", "", "http://x", signingKey},
		{"short key", dir, "http://x", []byte("short")},
		{"relative URL", dir, "/downloads", signingKey},
		{"ftp URL", dir, "ftp://x", signingKey},
		{"URL with query", dir, "http://x/?a=b", signingKey},
	} {
		if _, err := blobfs.New(tc.root, tc.key, tc.base, nil); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

func TestLayoutAndSidecar(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	content := []byte("hello firmware")
	if _, err := st.Put(ctx, "updraft", "p/1/fw.bin", strings.NewReader(string(content)), 100); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(st.Root(), "updraft", "p", "1", "fw.bin"))
	if err != nil || string(got) != string(content) {
		t.Fatalf("data file: %q, %v", got, err)
	}

	// A file changed behind the store's back keeps no stale digests: they
	// become unknown and the ETag still changes.
	before, err := st.Stat(ctx, "updraft", "p/1/fw.bin")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(st.Root(), "updraft", "p", "1", "fw.bin")
	if err := os.WriteFile(p, []byte("replaced by hand!"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := st.Stat(ctx, "updraft", "p/1/fw.bin")
	if err != nil {
		t.Fatal(err)
	}
	if after.SHA256 != "" || after.MD5 != "" {
		t.Errorf("digests %q/%q after an outside change, want unknown", after.SHA256, after.MD5)
	}
	if after.ETag == before.ETag || after.ETag == "" {
		t.Errorf("ETag %q after an outside change, before %q", after.ETag, before.ETag)
	}
}

func TestKeyConflicts(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.Put(ctx, "updraft", "a", strings.NewReader("x"), 10); err != nil {
		t.Fatal(err)
	}
	_, err := st.Put(ctx, "updraft", "a/b", strings.NewReader("x"), 10)
	if ota.ErrorCode(err) != ota.CodeConflict {
		t.Errorf("Put under an existing object: %v, want conflict", err)
	}
	if _, err := st.Put(ctx, "updraft", "c/d", strings.NewReader("x"), 10); err != nil {
		t.Fatal(err)
	}
	_, err = st.Put(ctx, "updraft", "c", strings.NewReader("x"), 10)
	if ota.ErrorCode(err) != ota.CodeConflict {
		t.Errorf("Put onto a key prefix: %v, want conflict", err)
	}
	if err := st.Delete(ctx, "updraft", "c"); err != nil {
		t.Errorf("Delete of a key prefix: %v", err)
	}
	if _, err := st.Stat(ctx, "updraft", "c/d"); err != nil {
		t.Errorf("Delete of a prefix removed what is under it: %v", err)
	}
	// Once the objects under a prefix are gone (deleted, or never completed),
	// the prefix can become an object.
	if err := st.Delete(ctx, "updraft", "c/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "updraft", "c", strings.NewReader("x"), 10); err != nil {
		t.Errorf("Put onto a prefix whose objects were deleted: %v", err)
	}
	if _, err := st.Put(ctx, "updraft", "e/f/g", strings.NewReader("too large"), 1); ota.ErrorCode(err) != ota.CodeTooLarge {
		t.Fatalf("oversized Put: %v", err)
	}
	if _, err := st.Put(ctx, "updraft", "e", strings.NewReader("x"), 10); err != nil {
		t.Errorf("Put onto the prefix of a failed Put: %v", err)
	}
	for _, bad := range []struct{ bucket, key string }{{".meta", "x"}, {"-ab", "x"}, {"updraft", "a//b"}, {"updraft", "dir/"}} {
		_, err := st.Put(ctx, bad.bucket, bad.key, strings.NewReader("x"), 10)
		if ota.ErrorCode(err) != ota.CodeInvalid {
			t.Errorf("Put %q/%q: %v, want invalid", bad.bucket, bad.key, err)
		}
	}
}

func TestHandlerRefusals(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.Put(ctx, "updraft", "k", strings.NewReader("data"), 10); err != nil {
		t.Fatal(err)
	}
	u, err := st.SignedURL(ctx, "updraft", "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, url string
		status      int
	}{
		{http.MethodGet, u, http.StatusOK},
		{http.MethodPost, u, http.StatusMethodNotAllowed},
		{http.MethodGet, strings.Replace(u, "expires=", "expires=1", 1), http.StatusForbidden}, // expiry is signed
		{http.MethodGet, strings.Split(u, "?")[0], http.StatusForbidden},                       // no signature
		{http.MethodGet, strings.Replace(u, "/blob/updraft/k", "/blob/updraft", 1), http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, tc.url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.url, resp.StatusCode, tc.status)
		}
	}
	// A second store with another signing key does not accept this URL.
	other, err := blobfs.New(st.Root(), []byte("another-signing-key-16+"), "http://x", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	other.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("URL signed with another key: %d, want 403", rec.Code)
	}
}

func TestHandlerHEAD(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	if _, err := st.Put(ctx, "updraft", "k", strings.NewReader("0123456789"), 10); err != nil {
		t.Fatal(err)
	}
	u, err := st.SignedURL(ctx, "updraft", "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Head(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 10 || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD: %d, length %d, Accept-Ranges %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
	}
}

// BenchmarkFS500MB: go test -run XXX -bench FS500MB -benchtime 3x ./internal/blob/fs/
// UPDRAFT_BENCH_DIR picks the filesystem (e.g. /dev/shm to leave the disk out).
func BenchmarkFS500MB(b *testing.B) {
	dir := b.TempDir()
	if d := os.Getenv("UPDRAFT_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "updraft-bench-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	var st *blobfs.Store
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { st.Handler().ServeHTTP(w, r) }))
	defer srv.Close()
	st, err := blobfs.New(dir, signingKey, srv.URL, nil)
	if err != nil {
		b.Fatal(err)
	}
	blobtest.Bench(b, st, blobtest.Bucket(b), 500e6)
}
