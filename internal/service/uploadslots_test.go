package service_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	blobfs "github.com/updraft-ota/updraft/internal/blob/fs"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// heldUpload is an upload whose file is still arriving: it holds its slot
// until finish.
type heldUpload struct {
	w    *io.PipeWriter
	done chan error
}

// holdUpload starts upload with a file that never ends and returns once the
// service is reading it (so the upload holds its slot).
func holdUpload(t *testing.T, upload func(io.Reader) error) *heldUpload {
	t.Helper()
	r, w := io.Pipe()
	h := &heldUpload{w: w, done: make(chan error, 1)}
	go func() { h.done <- upload(r) }()
	// The write returns once the service has read the byte, that is, once
	// it is inside the blob store's Put, past taking the slot; or fails
	// when the upload was refused (the pipe is then never read: see below).
	wrote := make(chan error, 1)
	go func() { _, err := w.Write([]byte("x")); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the held upload: %v", err)
		}
	case err := <-h.done:
		t.Fatalf("the held upload ended before its file did: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30 s for the service to start reading the held upload's file")
	}
	return h
}

// finish ends the file and waits for the upload's answer.
func (h *heldUpload) finish(t *testing.T) {
	t.Helper()
	_ = h.w.Close()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("the held upload failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("waited 30 s for a finished upload to be answered")
	}
}

// TestConcurrentUploadLimits: with 2 uploads per tenant and 3 per server, a
// tenant's 2nd upload in progress is accepted (just inside) and its 3rd
// refused (just outside) at once, rate_limited with a retry hint, before any
// byte of it is read; another tenant's upload takes the server's 3rd slot
// (just inside) and its 2nd is refused by the server's limit (just
// outside); once an upload finishes its slot serves the next one. Package
// files and objects share the slots.
func TestConcurrentUploadLimits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openSQLite(t, filepath.Join(dir, "updraft.db"))
	clock := &stepClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	blobs, err := blobfs.New(filepath.Join(dir, "blobs"), []byte("0123456789abcdef-test-key"), "http://127.0.0.1:1", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(st, blobs, clock, nil, nil, service.Options{DefaultBucket: fdnBucket, MaxUploads: 3, MaxUploadsPerTenant: 2})
	a := service.Principal{TenantID: "acme", AccessKeyID: "AKACME"}
	b := service.Principal{TenantID: "other", AccessKeyID: "AKOTHER"}
	for _, p := range []service.Principal{a, b} {
		if err := st.CreateTenant(ctx, ota.Tenant{ID: p.TenantID, Name: p.TenantID, CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateProduct(ctx, a, ota.Product{Key: "sensor", Name: "sensor"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	pkgUpload := func(file io.Reader) error {
		n++
		_, err := svc.CreatePackage(ctx, a, fdnPackage("fw-"+string(rune('a'+n))), "fw.bin", file)
		return err
	}
	objUpload := func(p service.Principal, key string) func(io.Reader) error {
		return func(file io.Reader) error {
			_, err := svc.PutObject(ctx, p, "bucket-"+p.TenantID, key, file)
			return err
		}
	}
	wantRefused := func(what string, err error) {
		t.Helper()
		var oe *ota.Error
		if ota.ErrorCode(err) != ota.CodeRateLimited || !asOTAError(err, &oe) || oe.RetryAfter <= 0 {
			t.Fatalf("%s: %v; want rate_limited with a retry hint", what, err)
		}
	}
	// The refused upload's file must not be read at all.
	untouched := strings.NewReader("never read")

	a1 := holdUpload(t, pkgUpload)
	a2 := holdUpload(t, objUpload(a, "obj-1")) // tenant's 2nd: just inside
	wantRefused("acme's 3rd upload", pkgUpload(untouched))
	if untouched.Len() != len("never read") {
		t.Fatal("the refused upload's file was read")
	}
	b1 := holdUpload(t, objUpload(b, "obj-1")) // server's 3rd: just inside
	wantRefused("other's upload over the server's limit", objUpload(b, "obj-2")(strings.NewReader("x")))

	a1.finish(t)
	b2 := holdUpload(t, objUpload(b, "obj-3")) // the freed slot
	wantRefused("after the freed slot was taken", pkgUpload(strings.NewReader("x")))
	a2.finish(t)
	b1.finish(t)
	b2.finish(t)
	if err := pkgUpload(strings.NewReader("after")); err != nil {
		t.Fatalf("an upload after all finished: %v", err)
	}
}

func asOTAError(err error, target **ota.Error) bool {
	e, ok := err.(*ota.Error)
	*target = e
	return ok
}
