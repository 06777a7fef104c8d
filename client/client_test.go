package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The client against the real server is tested in internal/api/management;
// these cover what that server never sends.

func TestBadServerURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		if _, err := New(u, "id", "secret").ListProducts(context.Background(), Page{}); err == nil || !strings.Contains(err.Error(), "bad server URL") {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}

func TestBaseURLForms(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer id:secret" {
			t.Errorf("authorization %q", r.Header.Get("Authorization"))
		}
		w.Write([]byte(`{"items":[],"total":0}`))
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/api/v1", srv.URL + "/api/v1/"} {
		if _, err := New(base, "id", "secret").ListProducts(context.Background(), Page{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		if p != "/api/v1/products" {
			t.Errorf("path %q", p)
		}
	}
}

func TestNonEnvelopeError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "proxy-1")
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := New(srv.URL, "id", "secret").GetProduct(context.Background(), "x")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || apiErr.Code != "" || apiErr.Message != "upstream down" || apiErr.RequestID != "proxy-1" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 502") || !strings.Contains(err.Error(), "proxy-1") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/1000", 0, 1000, true},
		{"bytes 500-999/*", 500, -1, true},
		{"bytes */1000", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"", 0, 0, false},
	} {
		start, total, err := parseContentRange(tc.in)
		if (err == nil) != tc.ok || tc.ok && (start != tc.start || total != tc.total) {
			t.Errorf("%q: %d %d %v", tc.in, start, total, err)
		}
	}
}

// TestPathSegmentsEscapedOnce: names and ids reach the server as given,
// escaped once (a second escaping would turn "a b" into "a%20b" there), and
// an object key's "/" stays a separator while its other characters do not.
func TestPathSegmentsEscapedOnce(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath())
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, base := range []string{srv.URL, srv.URL + "/prefix%20dir"} {
		got = nil
		c := New(base, "id", "secret")
		if _, err := c.GetProduct(ctx, "a b/c"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetPackage(ctx, "x%y?z"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, "bkt", "dir/a b%?#.bin", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		prefix := strings.TrimPrefix(base, srv.URL)
		want := []string{
			"GET " + prefix + "/api/v1/products/a%20b%2Fc",
			"GET " + prefix + "/api/v1/packages/x%25y%3Fz",
			"PUT " + prefix + "/api/v1/objects/bkt/dir/a%20b%25%3F%23.bin",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("base %s: requests\n%s\nwant\n%s", base, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// A 429 from the server's rate limit is sent again after Retry-After, body
// and all; the caller sees only the answer that follows.
func TestRateLimitedIsRetried(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls = append(calls, string(b))
		if len(calls) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"code":"rate_limited","message":"too many requests"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"key":"p1","name":"P"}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := New(srv.URL, "id", "secret").CreateProduct(ctx, ProductCreate{Key: "p1", Name: "P"})
	if err != nil || p.Key != "p1" {
		t.Fatalf("CreateProduct = %+v, %v", p, err)
	}
	if len(calls) != 2 || calls[0] == "" || calls[0] != calls[1] {
		t.Fatalf("bodies sent = %q, want the same body twice", calls)
	}
}

// A 429 asking for more than 30 s is a ban for the caller to handle: not
// waited for, returned at once as the server's *APIError.
func TestRateLimitedLongBanIsNotWaitedFor(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"code":"rate_limited","message":"too many requests"}`)
	}))
	defer srv.Close()
	_, err := New(srv.URL, "id", "secret").GetProduct(context.Background(), "p1")
	apiErr, ok := err.(*APIError)
	if !ok || apiErr.Status != http.StatusTooManyRequests || calls.Load() != 1 {
		t.Fatalf("GetProduct = %#v after %d requests, want one 429 as *APIError", err, calls.Load())
	}
}

// Retries after 429 are bounded: after maxRateLimitRetries the caller gets
// the last 429 as the server's *APIError.
func TestRateLimitedRetriesAreBounded(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"code":"rate_limited","message":"too many requests"}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := New(srv.URL, "id", "secret").GetProduct(ctx, "p1")
	apiErr, ok := err.(*APIError)
	if !ok || apiErr.Status != http.StatusTooManyRequests || calls.Load() != maxRateLimitRetries+1 {
		t.Fatalf("GetProduct = %#v after %d requests, want the %dth 429 as *APIError", err, calls.Load(), maxRateLimitRetries+1)
	}
}

// Canceling the context ends the wait for Retry-After at once.
func TestRateLimitedWaitStopsOnCancel(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := New(srv.URL, "id", "secret").GetProduct(ctx, "p1"); done <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the first request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || calls.Load() != 1 {
			t.Fatalf("GetProduct = %v after %d requests, want context.Canceled after 1", err, calls.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10 s after cancel for a Retry-After of 30 s")
	}
}
