package device

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// memFile is an in-memory io.WriterAt.
type memFile struct {
	mu  sync.Mutex
	buf []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.buf) {
		m.buf = append(m.buf, make([]byte, end-len(m.buf))...)
	}
	copy(m.buf[off:], p)
	return len(p), nil
}

func (m *memFile) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.buf...)
}

// pkgServer serves one file with Range support (http.ServeContent). cutFirst
// requests are cut off after cutAt bytes, like a dropped connection.
type pkgServer struct {
	*httptest.Server
	content []byte
	mu      sync.Mutex
	ranges  []string // the Range header of each request
	cuts    int
	cutAt   int
	noRange bool // ignore Range and always send the whole file
	status  int  // answer this status instead, if set
}

func newPkgServer(t *testing.T, size int) *pkgServer {
	t.Helper()
	s := &pkgServer{content: make([]byte, size)}
	rand.Read(s.content)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *pkgServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.cuts > 0
	if cut {
		s.cuts--
	}
	noRange, status := s.noRange, s.status
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "no", status)
		return
	}
	if noRange {
		r.Header.Del("Range")
	}
	if cut {
		// Announce the whole length, send part, then drop the connection.
		w.Header().Set("Content-Length", strconv.Itoa(len(s.content)))
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusOK)
		w.Write(s.content[:s.cutAt])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("ETag", `"v1"`)
	http.ServeContent(w, r, "pkg.bin", time.Time{}, bytes.NewReader(s.content))
}

func (s *pkgServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *pkgServer) notice() Notice {
	sha := sha256.Sum256(s.content)
	sum := md5.Sum(s.content)
	return Notice{TaskID: 1, Module: "default", Version: "2.0", URL: s.URL + "/pkg.bin?sig=secret", Size: int64(len(s.content)),
		SHA256: hex.EncodeToString(sha[:]), MD5: hex.EncodeToString(sum[:]), SignMethod: "SHA256", Sign: hex.EncodeToString(sha[:])}
}

var fast = &Downloader{Backoff: time.Millisecond}

func TestDownloadVerifies(t *testing.T) {
	s := newPkgServer(t, 100_000)
	var got memFile
	var last int64
	d := &Downloader{Backoff: time.Millisecond, BufferSize: 4096, OnProgress: func(n, total int64) { last = n }}
	if err := d.Download(context.Background(), s.notice(), &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), s.content) || last != 100_000 {
		t.Fatalf("got %d bytes, progress %d", len(got.Bytes()), last)
	}
	n := s.notice()
	n.SignMethod, n.Sign = "MD5", n.MD5
	if err := fast.Download(context.Background(), n, &memFile{}); err != nil {
		t.Fatalf("MD5 sign: %v", err)
	}
}

func TestDownloadResumesWithRange(t *testing.T) {
	s := newPkgServer(t, 200_000)
	s.cuts, s.cutAt = 2, 50_000
	var got memFile
	if err := fast.Download(context.Background(), s.notice(), &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), s.content) {
		t.Fatal("content differs")
	}
	req := s.requests()
	// 1st: cut at 50 000. 2nd asks from there, but the cutting handler
	// answers 200 (the whole file), so the client starts over at 0 and is
	// cut at 50 000 again. 3rd resumes from there and completes.
	want := []string{"", "bytes=50000-", "bytes=50000-"}
	if len(req) != len(want) {
		t.Fatalf("requests %q, want %q", req, want)
	}
	for i := range want {
		if req[i] != want[i] {
			t.Fatalf("requests %q, want %q", req, want)
		}
	}
}

func TestDownloadWithoutRangeSupportStartsOver(t *testing.T) {
	s := newPkgServer(t, 100_000)
	s.cuts, s.cutAt = 1, 30_000
	s.noRange = true
	var got memFile
	if err := fast.Download(context.Background(), s.notice(), &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), s.content) {
		t.Fatal("content differs")
	}
}

func TestDownloadFileResumesPartialFile(t *testing.T) {
	s := newPkgServer(t, 100_000)
	path := filepath.Join(t.TempDir(), "update.bin")
	if err := os.WriteFile(path, s.content[:60_000], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fast.DownloadFile(context.Background(), s.notice(), path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.Equal(b, s.content) {
		t.Fatal("content differs")
	}
	if req := s.requests(); len(req) != 1 || req[0] != "bytes=60000-" {
		t.Fatalf("requests %q, want one from byte 60000", req)
	}
	// Already complete: nothing fetched, still verified.
	if err := fast.DownloadFile(context.Background(), s.notice(), path); err != nil {
		t.Fatal(err)
	}
	if len(s.requests()) != 1 {
		t.Fatalf("a complete file was fetched again: %q", s.requests())
	}
}

// A partial file longer than the package (the notice gives no size) is
// overwritten from byte 0 when the server ignores Range; its old tail must
// not stay behind the verified bytes.
func TestDownloadFileDropsStaleTail(t *testing.T) {
	s := newPkgServer(t, 50_000)
	s.noRange = true
	path := filepath.Join(t.TempDir(), "update.bin")
	stale := make([]byte, 80_000)
	rand.Read(stale)
	if err := os.WriteFile(path, stale, 0o644); err != nil {
		t.Fatal(err)
	}
	n := s.notice()
	n.Size = 0
	if err := fast.DownloadFile(context.Background(), n, path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, s.content) {
		t.Fatalf("file has %d bytes, want the %d of the package", len(b), len(s.content))
	}
}

// A file that changes between a cut-off transfer and its resumption is not
// stitched: If-Range carries the first response's ETag, the server answers
// the whole new file, and the download starts over.
func TestDownloadResumeDoesNotStitchAChangedFile(t *testing.T) {
	s := newPkgServer(t, 100_000)
	s.cuts, s.cutAt = 1, 40_000
	old := append([]byte(nil), s.content...)
	s.content = make([]byte, len(old))
	rand.Read(s.content)
	n := s.notice() // the notice describes the new file
	changed := s.content
	s.content = old
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		first := s.cuts > 0
		s.mu.Unlock()
		if first {
			s.serve(w, r) // part of the old file, ETag "v1"
			return
		}
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range")+" if-range "+r.Header.Get("If-Range"))
		s.mu.Unlock()
		w.Header().Set("ETag", `"v2"`)
		http.ServeContent(w, r, "pkg.bin", time.Time{}, bytes.NewReader(changed))
	})
	var got memFile
	if err := fast.Download(context.Background(), n, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), changed) {
		t.Fatal("content differs from the new file")
	}
	if req := s.requests(); len(req) != 2 || req[1] != `bytes=40000- if-range "v1"` {
		t.Fatalf("requests %q, want a resume from byte 40000 with If-Range \"v1\"", req)
	}
}

func TestDownloadRejectsWrongBytes(t *testing.T) {
	s := newPkgServer(t, 10_000)
	for name, mutate := range map[string]func(*Notice){
		"sha256": func(n *Notice) { n.SHA256 = hex.EncodeToString(make([]byte, 32)) },
		"md5":    func(n *Notice) { n.MD5 = hex.EncodeToString(make([]byte, 16)) },
		"sign":   func(n *Notice) { n.SHA256 = ""; n.Sign = hex.EncodeToString(make([]byte, 32)) },
		"size":   func(n *Notice) { n.Size = 9_999 },
		"method": func(n *Notice) { n.SignMethod = "CRC32" },
	} {
		n := s.notice()
		mutate(&n)
		err := fast.Download(context.Background(), n, &memFile{})
		if !errors.Is(err, ErrVerify) || FailureStep(err) != wire.StepVerifyFailed {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// A file that fails verification is emptied so the next try starts over.
	path := filepath.Join(t.TempDir(), "f")
	n := s.notice()
	n.SHA256 = hex.EncodeToString(make([]byte, 32))
	if err := fast.DownloadFile(context.Background(), n, path); !errors.Is(err, ErrVerify) {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("file kept %d bytes", fi.Size())
	}
}

func TestDownloadGivesUp(t *testing.T) {
	s := newPkgServer(t, 1000)
	s.status = http.StatusForbidden // expired signature: no retry
	err := fast.Download(context.Background(), s.notice(), &memFile{})
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 403 || len(s.requests()) != 1 || FailureStep(err) != wire.StepDownloadFailed {
		t.Fatalf("err = %v after %d requests", err, len(s.requests()))
	}
	if bytes.Contains([]byte(err.Error()), []byte("sig=secret")) {
		t.Fatalf("error leaks the URL signature: %v", err)
	}
	s2 := newPkgServer(t, 1000)
	s2.status = http.StatusBadGateway // retried, then given up
	err = (&Downloader{Backoff: time.Millisecond, Attempts: 3}).Download(context.Background(), s2.notice(), &memFile{})
	if err == nil || len(s2.requests()) != 3 {
		t.Fatalf("err = %v after %d requests, want failure after 3", err, len(s2.requests()))
	}
}
