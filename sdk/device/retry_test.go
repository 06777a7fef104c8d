package device

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedServer answers the device API's report endpoints with statuses
// from script, one per request, then 204; it counts the requests.
type scriptedServer struct {
	script []func(w http.ResponseWriter)
	calls  atomic.Int32
}

func (s *scriptedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.calls.Add(1)) - 1
	if i < len(s.script) {
		s.script[i](w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func status(code int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(`{"code":"scripted","message":"scripted answer"}`))
	}
}

func scriptedDevice(t *testing.T, s *scriptedServer, attempts int, backoff time.Duration) *HTTP {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	dev, err := NewHTTP(HTTPConfig{Config: Config{Product: "p", Name: "d", Secret: "s", Logger: quiet()},
		Server: srv.URL, Attempts: attempts, Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

// A report refused with 5xx or 429 is sent again until it is taken.
func TestHTTPReportRetriesServerErrors(t *testing.T) {
	s := &scriptedServer{script: []func(http.ResponseWriter){status(503, ""), status(429, ""), status(502, "")}}
	dev := scriptedDevice(t, s, 5, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dev.ReportVersion(ctx, "", "1.0"); err != nil {
		t.Fatalf("report = %v, want taken on the 4th try", err)
	}
	if n := s.calls.Load(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

// A 4xx other than 429 is the device's own fault: sent once, and the caller
// gets the server's *APIError.
func TestHTTPReportDoesNotRetryClientErrors(t *testing.T) {
	s := &scriptedServer{script: []func(http.ResponseWriter){status(400, "")}}
	dev := scriptedDevice(t, s, 5, time.Millisecond)
	err := dev.ReportVersion(context.Background(), "", "1.0")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || s.calls.Load() != 1 {
		t.Fatalf("report = %v after %d requests, want one 400", err, s.calls.Load())
	}
}

// Once Attempts tries are spent the caller gets the last answer as the
// server's *APIError itself (not a wrapper around it).
func TestHTTPReportGivesUpAfterAttempts(t *testing.T) {
	s := &scriptedServer{script: []func(http.ResponseWriter){status(503, ""), status(503, ""), status(503, "1"), status(503, "")}}
	dev := scriptedDevice(t, s, 3, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err := dev.ReportVersion(ctx, "", "1.0")
	apiErr, ok := err.(*APIError)
	if !ok || apiErr.Status != 503 || s.calls.Load() != 3 {
		t.Fatalf("report = %#v after %d requests, want the 3rd 503 as *APIError", err, s.calls.Load())
	}
}

// The server's Retry-After takes the place of the device's own backoff: with
// a backoff of an hour the report still goes through within the test's
// deadline, one second after the 503 that named it.
func TestHTTPReportHonoursRetryAfter(t *testing.T) {
	s := &scriptedServer{script: []func(http.ResponseWriter){status(503, "1")}}
	dev := scriptedDevice(t, s, 3, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dev.ReportVersion(ctx, "", "1.0"); err != nil {
		t.Fatalf("report = %v, want taken after the server's Retry-After (waited for the retry within %s)", err, waitFor)
	}
	if n := s.calls.Load(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// Canceling the context ends the wait between tries at once, with the
// context's error.
func TestHTTPReportStopsWaitingOnCancel(t *testing.T) {
	s := &scriptedServer{script: []func(http.ResponseWriter){status(503, "")}}
	dev := scriptedDevice(t, s, 3, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dev.ReportVersion(ctx, "", "1.0") }()
	eventually(t, "the first try", func() bool { return s.calls.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || s.calls.Load() != 1 {
			t.Fatalf("report = %v after %d requests, want context.Canceled after 1", err, s.calls.Load())
		}
	case <-time.After(waitFor):
		t.Fatalf("report still waiting %s after cancel (backoff 1 h)", waitFor)
	}
}

// A download waiting out its backoff stops when its context is canceled.
func TestDownloadStopsWaitingOnCancel(t *testing.T) {
	s := newPkgServer(t, 1000)
	s.status = http.StatusBadGateway
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Downloader{Backoff: time.Hour}).Download(ctx, s.notice(), &memFile{}) }()
	eventually(t, "the first download request", func() bool { return len(s.requests()) == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || len(s.requests()) != 1 {
			t.Fatalf("download = %v after %d requests, want context.Canceled after 1", err, len(s.requests()))
		}
	case <-time.After(waitFor):
		t.Fatalf("download still waiting %s after cancel (backoff 1 h)", waitFor)
	}
}

// Only attempts in a row that fetched nothing count against Attempts: a
// link that alternates a refused request and one cut after some bytes
// arrived still completes with Attempts 2.
func TestDownloadProgressResetsAttempts(t *testing.T) {
	s := newPkgServer(t, 100_000)
	s.cuts, s.cutAt = 3, 10_000
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); n%2 == 1 && n < 6 {
			http.Error(w, "busy", http.StatusBadGateway) // requests 1, 3, 5: nothing fetched
			return
		}
		s.serve(w, r) // requests 2, 4, 6: cut after 10 000 bytes; then the whole file
	}))
	defer flaky.Close()
	n := s.notice()
	n.URL = flaky.URL + "/pkg.bin"
	got := &memFile{}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := (&Downloader{Backoff: time.Millisecond, Attempts: 2}).Download(ctx, n, got); err != nil {
		t.Fatalf("download = %v after %d requests", err, calls.Load())
	}
	if c := calls.Load(); c != 7 || !bytes.Equal(got.Bytes(), s.content) {
		t.Fatalf("%d requests, bytes equal %v; want 7 requests and the file", c, bytes.Equal(got.Bytes(), s.content))
	}
}
