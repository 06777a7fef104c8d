// Package blobtest is the contract suite every blob.Store backend must pass:
// streaming puts with exact size and digests, size limits and failed puts that
// leave nothing, seekable reads, idempotent deletes, key validation, and signed
// URLs that an unmodified net/http client can download with Range.
package blobtest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
)

// Option adapts the suite to what a backend's test harness can do.
type Option func(*config)

type config struct {
	advance   func(s blob.Store, d time.Duration)
	leftovers func(t *testing.T, s blob.Store, bucket string) []string
	largeSize int64
	noIfRange string
}

// WithClock lets the suite move a store's clock forward, so that URL expiry is
// tested without waiting. Without it the expiry subtest is skipped (S3 servers
// check expiry against their own clock).
func WithClock(advance func(s blob.Store, d time.Duration)) Option {
	return func(c *config) { c.advance = advance }
}

// WithLeftovers lets the suite see everything the backend holds for a bucket,
// committed or not (files and temp files for fs; objects and incomplete
// multipart uploads for S3). After a failed put into a fresh bucket it must be
// empty.
func WithLeftovers(list func(t *testing.T, s blob.Store, bucket string) []string) Option {
	return func(c *config) { c.leftovers = list }
}

// WithoutIfRange skips the If-Range checks of signed URLs, for a server that
// ignores the header; reason says which server and why. Resuming clients can
// use If-Match with Range there instead, which the suite always checks.
func WithoutIfRange(reason string) Option {
	return func(c *config) { c.noIfRange = reason }
}

// WithLargeSize sets the size of the streaming-memory subtest (default 64 MiB).
func WithLargeSize(n int64) Option {
	return func(c *config) { c.largeSize = n }
}

// Run runs the contract suite. open returns a ready store for one subtest;
// every subtest uses its own fresh bucket name, so stores may share a backend.
func Run(t *testing.T, open func(t *testing.T) blob.Store, opts ...Option) {
	c := config{largeSize: 64 << 20}
	for _, o := range opts {
		o(&c)
	}
	s := &suite{cfg: c, open: open}
	t.Run("PutMeasures", s.putMeasures)
	t.Run("PutOverwrites", s.putOverwrites)
	t.Run("PutAtLimit", s.putAtLimit)
	t.Run("PutTooLarge", s.putTooLarge)
	t.Run("PutTooLargeKeepsPrevious", s.putTooLargeKeepsPrevious)
	t.Run("PutReaderFails", s.putReaderFails)
	t.Run("PutCanceled", s.putCanceled)
	t.Run("OpenSeeks", s.openSeeks)
	t.Run("StatAndDelete", s.statAndDelete)
	t.Run("Missing", s.missing)
	t.Run("BadNames", s.badNames)
	t.Run("SignedURL", s.signedURL)
	t.Run("SignedURLTampered", s.signedURLTampered)
	t.Run("SignedURLExpires", s.signedURLExpires)
	t.Run("LargePutStreams", s.largePutStreams)
}

type suite struct {
	cfg  config
	open func(t *testing.T) blob.Store
}

// Bucket returns a fresh bucket name, valid for every backend.
func Bucket(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "blobtest-" + hex.EncodeToString(b)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func digests(b []byte) (sha, md string) {
	s, m := sha256.Sum256(b), md5.Sum(b)
	return hex.EncodeToString(s[:]), hex.EncodeToString(m[:])
}

// plainReader hides io.WriterTo and friends so backends see a bare stream of
// unknown length, as they do from an HTTP request body.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

func stream(b []byte) io.Reader { return plainReader{bytes.NewReader(b)} }

func wantCode(t *testing.T, what string, err error, code ota.Code) {
	t.Helper()
	if got := ota.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

func (s *suite) put(t *testing.T, st blob.Store, bucket, key string, content []byte) blob.Info {
	t.Helper()
	info, err := st.Put(context.Background(), bucket, key, stream(content), int64(len(content))+1)
	if err != nil {
		t.Fatalf("Put %s/%s: %v", bucket, key, err)
	}
	return info
}

func checkInfo(t *testing.T, what string, got blob.Info, bucket, key string, content []byte) {
	t.Helper()
	sha, md := digests(content)
	if got.Bucket != bucket || got.Key != key {
		t.Errorf("%s: Bucket/Key = %q/%q, want %q/%q", what, got.Bucket, got.Key, bucket, key)
	}
	if got.Size != int64(len(content)) {
		t.Errorf("%s: Size = %d, want %d", what, got.Size, len(content))
	}
	if got.SHA256 != sha {
		t.Errorf("%s: SHA256 = %q, want %q", what, got.SHA256, sha)
	}
	if got.MD5 != md {
		t.Errorf("%s: MD5 = %q, want %q", what, got.MD5, md)
	}
	if len(got.ETag) < 3 || !strings.HasPrefix(got.ETag, `"`) || !strings.HasSuffix(got.ETag, `"`) {
		t.Errorf("%s: ETag = %q, want a quoted strong validator", what, got.ETag)
	}
	if got.ModTime.IsZero() {
		t.Errorf("%s: ModTime is zero", what)
	}
}

// expectNothing checks that bucket/key does not exist and, when the harness
// can look, that the backend holds nothing at all for the bucket.
func (s *suite) expectNothing(t *testing.T, st blob.Store, bucket, key string) {
	t.Helper()
	_, err := st.Stat(context.Background(), bucket, key)
	wantCode(t, "Stat after failed Put", err, ota.CodeNotFound)
	if s.cfg.leftovers != nil {
		if left := s.cfg.leftovers(t, st, bucket); len(left) > 0 {
			t.Fatalf("failed Put left %v behind", left)
		}
	}
}

func (s *suite) putMeasures(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	for _, tc := range []struct {
		key  string
		size int
	}{
		{"empty", 0},
		{"one-byte", 1},
		{"dir/sub/odd-size.bin", 1<<20 + 3},
		// Spaces and punctuation of the documented safe set (ota.ObjectKeyChars)
		// must survive signing and URL escaping.
		{"name with spaces (1)'s copy!*.bin", 4099},
	} {
		content := randomBytes(t, tc.size)
		put := s.put(t, st, bucket, tc.key, content)
		checkInfo(t, "Put "+tc.key, put, bucket, tc.key, content)
		stat, err := st.Stat(context.Background(), bucket, tc.key)
		if err != nil {
			t.Fatalf("Stat %s: %v", tc.key, err)
		}
		checkInfo(t, "Stat "+tc.key, stat, bucket, tc.key, content)
		if stat.ETag != put.ETag || !stat.ModTime.Equal(put.ModTime) {
			t.Errorf("Stat %s: ETag/ModTime %s/%v differ from Put's %s/%v", tc.key, stat.ETag, stat.ModTime, put.ETag, put.ModTime)
		}
		if got := s.readAll(t, st, bucket, tc.key); !bytes.Equal(got, content) {
			t.Errorf("Open %s: read %d bytes that differ from the %d put", tc.key, len(got), len(content))
		}
	}
}

func (s *suite) readAll(t *testing.T, st blob.Store, bucket, key string) []byte {
	t.Helper()
	obj, err := st.Open(context.Background(), bucket, key)
	if err != nil {
		t.Fatalf("Open %s/%s: %v", bucket, key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}

func (s *suite) putOverwrites(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	s.put(t, st, bucket, "k", randomBytes(t, 5000))
	second := randomBytes(t, 300)
	s.put(t, st, bucket, "k", second)
	stat, err := st.Stat(context.Background(), bucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	checkInfo(t, "Stat after overwrite", stat, bucket, "k", second)
	if got := s.readAll(t, st, bucket, "k"); !bytes.Equal(got, second) {
		t.Fatalf("read after overwrite: %d bytes, want the second content (%d bytes)", len(got), len(second))
	}
}

func (s *suite) putAtLimit(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	content := randomBytes(t, 1000)
	info, err := st.Put(context.Background(), bucket, "exact", stream(content), 1000)
	if err != nil {
		t.Fatalf("Put of exactly maxSize bytes: %v", err)
	}
	checkInfo(t, "Put at limit", info, bucket, "exact", content)
	_, err = st.Put(context.Background(), bucket, "bad-limit", stream(content), 0)
	wantCode(t, "Put with maxSize 0", err, ota.CodeInvalid)
}

func (s *suite) putTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name          string
		size, maxSize int64
	}{
		{"OneByteOver", 1001, 1000},
		// Large enough that backends with multipart uploads (16 MiB parts)
		// have sent a whole part before the overflow shows.
		{"AfterFirstPart", 20 << 20, 17 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s.open(t)
			bucket := Bucket(t)
			_, err := st.Put(context.Background(), bucket, "big", newGenerator(tc.size), tc.maxSize)
			wantCode(t, "Put over maxSize", err, ota.CodeTooLarge)
			s.expectNothing(t, st, bucket, "big")
		})
	}
}

func (s *suite) putTooLargeKeepsPrevious(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	first := randomBytes(t, 100)
	s.put(t, st, bucket, "k", first)
	_, err := st.Put(context.Background(), bucket, "k", newGenerator(2000), 1000)
	wantCode(t, "Put over maxSize", err, ota.CodeTooLarge)
	stat, err := st.Stat(context.Background(), bucket, "k")
	if err != nil {
		t.Fatalf("Stat after a failed overwrite: %v", err)
	}
	checkInfo(t, "Stat after failed overwrite", stat, bucket, "k", first)
	if got := s.readAll(t, st, bucket, "k"); !bytes.Equal(got, first) {
		t.Fatal("a failed overwrite changed the stored content")
	}
}

var errBrokenReader = errors.New("blobtest: reader broke on purpose")

// failingReader yields n generated bytes and then fails.
type failingReader struct {
	r io.Reader
}

func (f failingReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if err == io.EOF {
		return n, errBrokenReader
	}
	return n, err
}

func (s *suite) putReaderFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"Early", 100 << 10},
		{"AfterFirstPart", 17 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := s.open(t)
			bucket := Bucket(t)
			_, err := st.Put(context.Background(), bucket, "broken", failingReader{newGenerator(tc.size)}, 1<<30)
			if err == nil {
				t.Fatal("Put from a failing reader succeeded")
			}
			if code := ota.ErrorCode(err); code == ota.CodeTooLarge || code == ota.CodeNotFound {
				t.Fatalf("Put from a failing reader: code %q (%v), want a read failure", code, err)
			}
			s.expectNothing(t, st, bucket, "broken")
		})
	}
}

// cancelingReader cancels its context after n bytes and keeps yielding data.
type cancelingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func (s *suite) putCanceled(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := st.Put(ctx, bucket, "canceled", &cancelingReader{r: newGenerator(40 << 20), n: 1 << 20, cancel: cancel}, 1<<30)
	if err == nil {
		t.Fatal("Put whose context was canceled mid-way succeeded")
	}
	s.expectNothing(t, st, bucket, "canceled")
}

func (s *suite) openSeeks(t *testing.T) {
	st := s.open(t)
	bucket := Bucket(t)
	content := randomBytes(t, 300_000)
	put := s.put(t, st, bucket, "seek.bin", content)
	obj, err := st.Open(context.Background(), bucket, "seek.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	info := obj.Info()
	checkInfo(t, "Object.Info", info, bucket, "seek.bin", content)
	if info.ETag != put.ETag {
		t.Errorf("Object.Info ETag %s, Put returned %s", info.ETag, put.ETag)
	}

	read := func(n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(obj, b); err != nil {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		return b
	}
	seek := func(off int64, whence int, want int64) {
		t.Helper()
		pos, err := obj.Seek(off, whence)
		if err != nil || pos != want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", off, whence, pos, err, want)
		}
	}
	if got := read(10); !bytes.Equal(got, content[:10]) {
		t.Error("first 10 bytes differ")
	}
	seek(200_000, io.SeekStart, 200_000)
	if got := read(100); !bytes.Equal(got, content[200_000:200_100]) {
		t.Error("bytes at 200000 differ")
	}
	seek(-50, io.SeekCurrent, 200_050)
	if got := read(50); !bytes.Equal(got, content[200_050:200_100]) {
		t.Error("bytes after a relative seek differ")
	}
	seek(-7, io.SeekEnd, 300_000-7)
	rest, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(rest, content[300_000-7:]) {
		t.Errorf("tail after SeekEnd: %q, %v", rest, err)
	}
	seek(0, io.SeekStart, 0)
	if all, err := io.ReadAll(obj); err != nil || !bytes.Equal(all, content) {
		t.Errorf("re-read from start: %d bytes, %v", len(all), err)
	}
}

func (s *suite) statAndDelete(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	content := randomBytes(t, 1234)
	s.put(t, st, bucket, "a/b", content)
	s.put(t, st, bucket, "keep", content)
	if _, err := st.Stat(ctx, bucket, "a/b"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, bucket, "a/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := st.Stat(ctx, bucket, "a/b")
	wantCode(t, "Stat after Delete", err, ota.CodeNotFound)
	_, err = st.Open(ctx, bucket, "a/b")
	wantCode(t, "Open after Delete", err, ota.CodeNotFound)
	if err := st.Delete(ctx, bucket, "a/b"); err != nil {
		t.Fatalf("second Delete: %v, want nil (idempotent)", err)
	}
	if _, err := st.Stat(ctx, bucket, "keep"); err != nil {
		t.Fatalf("Delete removed another object: %v", err)
	}
}

func (s *suite) missing(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	check := func(what, b string) {
		t.Helper()
		_, err := st.Stat(ctx, b, "nope")
		wantCode(t, what+": Stat", err, ota.CodeNotFound)
		_, err = st.Open(ctx, b, "nope")
		wantCode(t, what+": Open", err, ota.CodeNotFound)
		if err := st.Delete(ctx, b, "nope"); err != nil {
			t.Fatalf("%s: Delete: %v, want nil", what, err)
		}
	}
	check("bucket never created", bucket)
	// A prefix of an existing key is not an object.
	s.put(t, st, bucket, "dir/file", []byte("x"))
	check("existing bucket", bucket)
	_, err := st.Stat(ctx, bucket, "dir")
	wantCode(t, "Stat of a key prefix", err, ota.CodeNotFound)
	_, err = st.Open(ctx, bucket, "dir")
	wantCode(t, "Open of a key prefix", err, ota.CodeNotFound)
}

func (s *suite) badNames(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	try := func(what, b, k string) {
		t.Helper()
		_, err := st.Put(ctx, b, k, stream([]byte("x")), 10)
		wantCode(t, what+": Put", err, ota.CodeInvalid)
		_, err = st.Open(ctx, b, k)
		wantCode(t, what+": Open", err, ota.CodeInvalid)
		_, err = st.Stat(ctx, b, k)
		wantCode(t, what+": Stat", err, ota.CodeInvalid)
		wantCode(t, what+": Delete", st.Delete(ctx, b, k), ota.CodeInvalid)
		_, err = st.SignedURL(ctx, b, k, time.Minute)
		wantCode(t, what+": SignedURL", err, ota.CodeInvalid)
	}
	for _, k := range []string{"", "../x", "a/../../x", "/abs", "a/./b", "..", "nul\x00byte"} {
		try(fmt.Sprintf("key %q", k), bucket, k)
	}
	for _, b := range []string{"", "ab", "UPPER", "under_score", "../etc", strings.Repeat("a", 64)} {
		try(fmt.Sprintf("bucket %q", b), b, "k")
	}
}

// get performs a plain GET of u with the given request headers.
func get(t *testing.T, method, u string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of %s %s: %v", method, u, err)
	}
	return resp, body
}

func wantStatus(t *testing.T, what string, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		b := body
		if len(b) > 300 {
			b = b[:300]
		}
		t.Fatalf("%s: status %d, want %d; body %q", what, resp.StatusCode, status, b)
	}
}

func (s *suite) signedURL(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	const size = 5000
	content := randomBytes(t, size)
	key := "signed/firmware v1.bin"
	info := s.put(t, st, bucket, key, content)
	u, err := st.SignedURL(ctx, bucket, key, time.Hour)
	if err != nil {
		t.Fatalf("SignedURL: %v", err)
	}

	resp, body := get(t, http.MethodGet, u)
	wantStatus(t, "GET", resp, body, http.StatusOK)
	if !bytes.Equal(body, content) {
		t.Fatalf("GET returned %d bytes that differ from the %d put", len(body), size)
	}
	if et := resp.Header.Get("ETag"); et != info.ETag {
		t.Errorf("GET ETag %q, want Info.ETag %q", et, info.ETag)
	}
	if resp.Header.Get("Last-Modified") == "" {
		t.Error("GET sent no Last-Modified")
	}

	// No HEAD: the contract promises GET, and an S3 presigned URL signs the
	// method, so HEAD on it is refused.

	ranged := func(t *testing.T, what, rng string, from, to int, hdr ...string) {
		t.Helper()
		resp, body := get(t, http.MethodGet, u, append([]string{"Range", rng}, hdr...)...)
		wantStatus(t, what, resp, body, http.StatusPartialContent)
		if !bytes.Equal(body, content[from:to+1]) {
			t.Errorf("%s: %d bytes that are not content[%d:%d]", what, len(body), from, to+1)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", from, to, size); resp.Header.Get("Content-Range") != want {
			t.Errorf("%s: Content-Range %q, want %q", what, resp.Header.Get("Content-Range"), want)
		}
	}
	ranged(t, "Range 100-199", "bytes=100-199", 100, 199)
	ranged(t, "open-ended Range", "bytes=4000-", 4000, size-1)
	ranged(t, "suffix Range", "bytes=-10", size-10, size-1)
	ranged(t, "If-Match current ETag", "bytes=100-199", 100, 199, "If-Match", info.ETag)

	resp, body = get(t, http.MethodGet, u, "Range", fmt.Sprintf("bytes=%d-", size))
	wantStatus(t, "unsatisfiable Range", resp, body, http.StatusRequestedRangeNotSatisfiable)

	const staleETag = `"0123456789abcdef"`
	resp, body = get(t, http.MethodGet, u, "Range", "bytes=100-199", "If-Match", staleETag)
	wantStatus(t, "If-Match stale ETag", resp, body, http.StatusPreconditionFailed)

	t.Run("IfRange", func(t *testing.T) {
		if s.cfg.noIfRange != "" {
			t.Skip(s.cfg.noIfRange)
		}
		ranged(t, "If-Range current ETag", "bytes=100-199", 100, 199, "If-Range", info.ETag)
		resp, body := get(t, http.MethodGet, u, "Range", "bytes=100-199", "If-Range", staleETag)
		wantStatus(t, "If-Range stale ETag", resp, body, http.StatusOK)
		if !bytes.Equal(body, content) {
			t.Error("If-Range with a stale ETag did not return the full body")
		}
	})

	resp, body = get(t, http.MethodGet, u, "If-None-Match", info.ETag)
	wantStatus(t, "If-None-Match current ETag", resp, body, http.StatusNotModified)
	if len(body) != 0 {
		t.Errorf("304 carried a %d-byte body", len(body))
	}

	// A URL for a missing object is refused, never a server error.
	u2, err := st.SignedURL(ctx, bucket, "not/there", time.Hour)
	if err != nil {
		t.Fatalf("SignedURL of a missing key: %v", err)
	}
	resp, body = get(t, http.MethodGet, u2)
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET of a missing object: status %d, want 404 or 403; body %q", resp.StatusCode, body)
	}
}

var hexSignature = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *suite) signedURLTampered(t *testing.T) {
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	s.put(t, st, bucket, "one", []byte("first object"))
	s.put(t, st, bucket, "two", []byte("second object"))
	raw, err := st.SignedURL(ctx, bucket, "one", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, http.MethodGet, raw)
	wantStatus(t, "untampered GET", resp, body, http.StatusOK)

	// Flip one hex digit of the signature: the query value that is 64
	// lowercase hex digits (HMAC-SHA256 for fs, SigV4 for S3).
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	found := false
	for name, vs := range q {
		if len(vs) == 1 && hexSignature.MatchString(vs[0]) {
			v := []byte(vs[0])
			if v[len(v)-1] == '0' {
				v[len(v)-1] = '1'
			} else {
				v[len(v)-1] = '0'
			}
			q.Set(name, string(v))
			found = true
		}
	}
	if !found {
		t.Fatalf("no 64-hex-digit signature parameter in %s", raw)
	}
	bad := *u
	bad.RawQuery = q.Encode()
	resp, body = get(t, http.MethodGet, bad.String())
	wantStatus(t, "GET with a tampered signature", resp, body, http.StatusForbidden)

	// The signature of one key does not open another.
	other := *u
	other.Path = strings.TrimSuffix(u.Path, "one") + "two"
	other.RawPath = ""
	resp, body = get(t, http.MethodGet, other.String())
	wantStatus(t, "GET of another key with this signature", resp, body, http.StatusForbidden)
}

func (s *suite) signedURLExpires(t *testing.T) {
	if s.cfg.advance == nil {
		t.Skip("this backend's harness has no controllable clock (S3 checks expiry against the server's clock); expiry is tested on fs")
	}
	st := s.open(t)
	ctx := context.Background()
	bucket := Bucket(t)
	s.put(t, st, bucket, "k", []byte("expiring"))
	u, err := st.SignedURL(ctx, bucket, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.advance(st, 59*time.Second)
	resp, body := get(t, http.MethodGet, u)
	wantStatus(t, "GET before expiry", resp, body, http.StatusOK)
	s.cfg.advance(st, 2*time.Second)
	resp, body = get(t, http.MethodGet, u)
	wantStatus(t, "GET after expiry", resp, body, http.StatusForbidden)
	_, err = st.SignedURL(ctx, bucket, "k", 0)
	wantCode(t, "SignedURL with ttl 0", err, ota.CodeInvalid)
}

// largePutStreams puts cfg.largeSize bytes from a generator and checks that
// the live heap never grew by more than half of that while the content was
// flowing: the sampler forces a GC every few MiB read, so what it sees is
// memory the store actually holds on to, not garbage awaiting collection.
func (s *suite) largePutStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("large put skipped in -short mode")
	}
	st := s.open(t)
	bucket := Bucket(t)
	size := s.cfg.largeSize
	gen := newGenerator(size)
	sampler := &heapSampler{r: gen, every: 4 << 20}
	sampler.start()
	info, err := st.Put(context.Background(), bucket, "large.bin", sampler, size)
	if err != nil {
		t.Fatalf("large Put: %v", err)
	}
	growth := int64(sampler.peak) - int64(sampler.base)
	t.Logf("streamed %d MiB; peak live-heap growth during Put: %.1f MiB", size>>20, float64(growth)/(1<<20))
	if growth > size/2 {
		t.Errorf("live heap grew by %d bytes while putting %d: the store holds the content in memory", growth, size)
	}
	if info.Size != size || info.SHA256 != gen.sha256() || info.MD5 != gen.md5() {
		t.Errorf("large Put info %+v, want size %d sha256 %s md5 %s", info, size, gen.sha256(), gen.md5())
	}
	obj, err := st.Open(context.Background(), bucket, "large.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h := sha256.New()
	if n, err := io.Copy(h, obj); err != nil || n != size {
		t.Fatalf("reading back: %d bytes, %v", n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != gen.sha256() {
		t.Errorf("read back sha256 %s, want %s", got, gen.sha256())
	}
}

type heapSampler struct {
	r          io.Reader
	every      int64
	sinceLast  int64
	base, peak uint64
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func (h *heapSampler) start() { h.base = liveHeap(); h.peak = h.base }

func (h *heapSampler) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	h.sinceLast += int64(n)
	if h.sinceLast >= h.every || err != nil {
		h.sinceLast = 0
		if l := liveHeap(); l > h.peak {
			h.peak = l
		}
	}
	return n, err
}
