package device

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ErrVerify is wrapped by every error about a package that does not match
// its notice (size, SHA-256, MD5 or sign). Report it as
// wire.StepVerifyFailed (FailureStep does).
var ErrVerify = errors.New("package does not match the notice")

func isVerify(err error) bool { return errors.Is(err, ErrVerify) }

// HTTPError is a download answered with an unexpected status.
type HTTPError struct {
	Status int
	URL    string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("download: %s answered %d %s", redactURL(e.URL), e.Status, http.StatusText(e.Status))
}

// redactURL drops the query (the signature) from a URL for messages.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// Downloader fetches packages with HTTP Range: an interrupted transfer
// resumes where it stopped instead of starting over. The zero value is ready
// to use.
type Downloader struct {
	// Client does the requests (default: a client with a 30 s response
	// header timeout and no overall timeout; bound the whole download with
	// the context).
	Client *http.Client
	// Attempts is how many attempts in a row may fail without receiving a
	// byte before the download gives up (default 5). An attempt that made
	// progress resets the count.
	Attempts int
	// Backoff is the first wait between attempts (default 1 s), randomized
	// by ±50 % and doubling up to 30 s.
	Backoff time.Duration
	// OnProgress, if set, is called as bytes arrive (received of total).
	OnProgress func(received, total int64)
	// BufferSize is the copy buffer (default 32 KiB).
	BufferSize int
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 30 * time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConnsPerHost:   4,
}}

// Download fetches n.URL into dst and verifies it (see Downloader).
func Download(ctx context.Context, n Notice, dst io.WriterAt) error {
	return (&Downloader{}).Download(ctx, n, dst)
}

// DownloadFile fetches n.URL into the file at path, resuming a partial file
// left by an earlier attempt, and verifies it (see Downloader.DownloadFile).
func DownloadFile(ctx context.Context, n Notice, path string) error {
	return (&Downloader{}).DownloadFile(ctx, n, path)
}

// transfer is the state of one download: how far it got, the running hashes
// and the validator that lets a resumed request refuse a changed file.
type transfer struct {
	off  int64
	sha  hash.Hash
	md5  hash.Hash
	etag string
}

func newTransfer() *transfer { return &transfer{sha: sha256.New(), md5: md5.New()} }

func (t *transfer) reset() {
	t.off = 0
	t.sha.Reset()
	t.md5.Reset()
	t.etag = ""
}

// Download fetches n.URL into dst (written sequentially from offset 0, so
// dst may be a file, a buffer or a discarding writer) and verifies size,
// SHA-256, MD5 and sign against the notice. A failure wrapping ErrVerify
// means the bytes are wrong; any other error means they could not all be
// fetched.
func (d *Downloader) Download(ctx context.Context, n Notice, dst io.WriterAt) error {
	return d.run(ctx, n, dst, newTransfer())
}

// DownloadFile fetches n.URL into the file at path. A partial file from an
// earlier, interrupted run is hashed and continued rather than fetched
// again. If the result fails verification the file is truncated so the next
// attempt starts afresh.
func (d *Downloader) DownloadFile(ctx context.Context, n Notice, path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	t := newTransfer()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if n.Size > 0 && fi.Size() > n.Size {
		if err := f.Truncate(0); err != nil {
			return err
		}
	} else if fi.Size() > 0 {
		// Continue the partial file: its bytes feed the hashes first.
		k, err := io.Copy(io.MultiWriter(t.sha, t.md5), f)
		if err != nil {
			return err
		}
		t.off = k
	}
	err = d.run(ctx, n, f, t)
	if isVerify(err) {
		_ = f.Truncate(0)
		return err
	}
	if err != nil {
		return err
	}
	// A server that restarted the file from byte 0 (no Range support, or it
	// changed) may have sent less than the partial file held: drop the tail.
	if err := f.Truncate(t.off); err != nil {
		return err
	}
	return f.Sync()
}

func (d *Downloader) run(ctx context.Context, n Notice, dst io.WriterAt, t *transfer) error {
	attempts := d.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	initial := d.Backoff
	if initial <= 0 {
		initial = time.Second
	}
	wait := newBackOff(initial)
	failures := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		progressed, done, err := d.attempt(ctx, n, dst, t)
		if err == nil && done {
			return struct{}{}, nil
		}
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		var he *HTTPError
		if isVerify(err) || errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != http.StatusRequestTimeout && he.Status != http.StatusTooManyRequests {
			return struct{}{}, backoff.Permanent(err) // retrying cannot help: wrong bytes, or the URL is refused or expired
		}
		if progressed {
			// Only attempts in a row that fetched nothing count, and the
			// wait starts over: a flaky link that keeps making progress
			// finishes the download.
			failures = 0
			wait.Reset()
		} else {
			failures++
		}
		if failures >= attempts {
			return struct{}{}, backoff.Permanent(fmt.Errorf("download failed after %d attempts without progress (%d of %d bytes): %w", failures, t.off, n.Size, err))
		}
		return struct{}{}, err
	}, backoff.WithBackOff(wait), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return err
	}
	return verify(n, t)
}

// attempt makes one request from t.off. done is true when the whole file
// has arrived.
func (d *Downloader) attempt(ctx context.Context, n Notice, dst io.WriterAt, t *transfer) (progressed, done bool, err error) {
	if n.Size > 0 && t.off == n.Size {
		return false, true, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL, nil)
	if err != nil {
		return false, false, fmt.Errorf("download: bad URL %q: %w", redactURL(n.URL), err)
	}
	if t.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(t.off, 10)+"-")
		if t.etag != "" {
			req.Header.Set("If-Range", t.etag)
		}
	}
	client := d.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if t.off > 0 {
			t.reset() // the server sent the whole file (no Range support, or it changed)
		}
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != t.off {
			t.reset()
			return false, false, fmt.Errorf("download: the server answered range %q to a request from byte %d", resp.Header.Get("Content-Range"), t.off)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		t.reset() // the local part is longer than the file: start over
		return false, false, errors.New("download: the server refused the resume range; restarting")
	default:
		return false, false, &HTTPError{Status: resp.StatusCode, URL: n.URL}
	}
	if t.etag == "" {
		t.etag = resp.Header.Get("ETag")
	}
	size := d.BufferSize
	if size <= 0 {
		size = 32 << 10
	}
	buf := make([]byte, size)
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			if n.Size > 0 && t.off+int64(k) > n.Size {
				return progressed, false, fmt.Errorf("%w: more than the announced %d bytes", ErrVerify, n.Size)
			}
			if _, werr := dst.WriteAt(buf[:k], t.off); werr != nil {
				return progressed, false, fmt.Errorf("download: writing: %w", werr)
			}
			t.sha.Write(buf[:k])
			t.md5.Write(buf[:k])
			t.off += int64(k)
			progressed = true
			if d.OnProgress != nil {
				d.OnProgress(t.off, n.Size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return progressed, false, fmt.Errorf("download: interrupted at byte %d: %w", t.off, rerr)
		}
	}
	if n.Size > 0 && t.off < n.Size {
		return progressed, false, fmt.Errorf("download: the connection ended at byte %d of %d", t.off, n.Size)
	}
	return progressed, true, nil
}

// contentRangeStart parses the first byte of "bytes START-END/TOTAL".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(start, 10, 64)
	return v, err == nil
}

// verify checks what arrived against the notice.
func verify(n Notice, t *transfer) error {
	if n.Size > 0 && t.off != n.Size {
		return fmt.Errorf("%w: got %d bytes, the notice says %d", ErrVerify, t.off, n.Size)
	}
	sha := hex.EncodeToString(t.sha.Sum(nil))
	sum := hex.EncodeToString(t.md5.Sum(nil))
	if n.SHA256 != "" && !strings.EqualFold(n.SHA256, sha) {
		return fmt.Errorf("%w: SHA-256 is %s, the notice says %s", ErrVerify, sha, n.SHA256)
	}
	if n.MD5 != "" && !strings.EqualFold(n.MD5, sum) {
		return fmt.Errorf("%w: MD5 is %s, the notice says %s", ErrVerify, sum, n.MD5)
	}
	if n.Sign == "" {
		return nil
	}
	var got string
	switch strings.ToUpper(strings.ReplaceAll(n.SignMethod, "-", "")) {
	case "", "SHA256":
		got = sha
	case "MD5":
		got = sum
	default:
		return fmt.Errorf("%w: unsupported sign method %q", ErrVerify, n.SignMethod)
	}
	if !strings.EqualFold(n.Sign, got) {
		return fmt.Errorf("%w: %s sign is %s, the notice says %s", ErrVerify, n.SignMethod, got, n.Sign)
	}
	return nil
}
