package service_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// foundationEnv is a Service on a real SQLite database and a real fs blob store, both in
// temporary directories, with two tenants.
type foundationEnv struct {
	t       *testing.T
	ctx     context.Context
	svc     *service.Service
	st      store.Store
	blobDir string
	a, b    service.Principal // tenants "acme" and "other"
}

const fdnBucket = "updraft"

func newFoundationEnv(t *testing.T) *foundationEnv {
	t.Helper()
	e := newFoundationEnvEmpty(t)
	for _, id := range []string{"acme", "other"} {
		if err := e.st.CreateTenant(e.ctx, ota.Tenant{ID: id, Name: id, CreatedAt: e.svc.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// newFoundationEnvEmpty is newFoundationEnv on an empty database (first start).
func newFoundationEnvEmpty(t *testing.T) *foundationEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st := openSQLite(t, filepath.Join(dir, "updraft.db"))
	// The clock stands still: tests never depend on wall time.
	clock := &stepClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := blobfs.New(blobDir, []byte("0123456789abcdef-test-key"), "http://127.0.0.1:1", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(st, blobs, clock, nil, nil, service.Options{DefaultBucket: fdnBucket, DownloadURLTTL: time.Hour})
	e := &foundationEnv{t: t, ctx: ctx, svc: svc, st: st, blobDir: blobDir,
		a: service.Principal{TenantID: "acme", AccessKeyID: "AKACME"},
		b: service.Principal{TenantID: "other", AccessKeyID: "AKOTHER"}}
	return e
}

// product creates a product for principal p.
func (e *foundationEnv) product(p service.Principal, key string) ota.Product {
	e.t.Helper()
	pr, err := e.svc.CreateProduct(e.ctx, p, ota.Product{Key: key, Name: "Product " + key})
	if err != nil {
		e.t.Fatal(err)
	}
	return pr
}

// blobFiles lists every regular file under the blob root (data and digest
// sidecars alike), relative to it.
func (e *foundationEnv) blobFiles() []string {
	e.t.Helper()
	var files []string
	err := filepath.WalkDir(e.blobDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(e.blobDir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

func fdnReader(s string) io.Reader { return strings.NewReader(s) }

// dataFiles is blobFiles without the digest sidecars.
func (e *foundationEnv) dataFiles() []string {
	var out []string
	for _, f := range e.blobFiles() {
		if !strings.HasPrefix(f, ".meta/") {
			out = append(out, f)
		}
	}
	return out
}

// packageCount counts every package row of every tenant.
func (e *foundationEnv) packageCount() int64 {
	e.t.Helper()
	var total int64
	for _, tenant := range []string{"acme", "other"} {
		_, n, err := e.st.ListPackages(e.ctx, store.PackageFilter{TenantID: tenant}, store.Page{Limit: 1})
		if err != nil {
			e.t.Fatal(err)
		}
		total += n
	}
	return total
}

// assertNothingLeft checks that a rejected request left no row and no file.
func (e *foundationEnv) assertNothingLeft(wantRows int64, wantFiles []string) {
	e.t.Helper()
	if n := e.packageCount(); n != wantRows {
		e.t.Errorf("package rows = %d, want %d", n, wantRows)
	}
	got := e.blobFiles()
	if strings.Join(got, ",") != strings.Join(wantFiles, ",") {
		e.t.Errorf("blob files = %v, want %v", got, wantFiles)
	}
}

func fdnWantCode(t *testing.T, err error, code ota.Code, msgPart string) {
	t.Helper()
	if ota.ErrorCode(err) != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if msgPart != "" && !strings.Contains(ota.ErrorMessage(err), msgPart) {
		t.Fatalf("message %q does not contain %q", ota.ErrorMessage(err), msgPart)
	}
}

// fdnUntouchable fails the test if anything reads it: the request had to be
// rejected before the upload started.
type fdnUntouchable struct{ t *testing.T }

func (u fdnUntouchable) Read([]byte) (int, error) {
	u.t.Error("the file was read although the request should have been rejected first")
	return 0, io.ErrUnexpectedEOF
}

// fdnFailingReader returns n bytes and then err.
type fdnFailingReader struct {
	n   int
	err error
}

func (r *fdnFailingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// fdnOnEOF runs fn once, when r is exhausted (before reporting EOF): it lets a
// test act while an upload is in flight.
type fdnOnEOF struct {
	r  io.Reader
	fn func()
}

func (o *fdnOnEOF) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err == io.EOF && o.fn != nil {
		o.fn()
		o.fn = nil
	}
	return n, err
}
