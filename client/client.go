// Package client is the Go client of Updraft's native management REST API
// (/api/v1): products, modules, devices, packages and jobs. The updraft CLI
// is built on it.
//
//	c := client.New("http://127.0.0.1:8080", keyID, secret)
//	p, err := c.CreateProduct(ctx, client.ProductCreate{Key: "thermo", Name: "Thermostat"})
//
// Every error the server answers is an *APIError carrying its status, code,
// message and request id.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/updraft-ota/updraft/apiv1"
)

// Client calls one Updraft server as one access key. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL // the server, without /api/v1
	keyID     string
	secret    string
	http      *http.Client
	userAgent string
	baseErr   error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (timeouts, transport, TLS). The default
// has no overall timeout, because uploads and downloads may be long; use
// contexts to bound calls.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the server at baseURL ("http://host:8080"; a
// trailing /api/v1 is accepted) authenticating as keyID/secret.
func New(baseURL, keyID, secret string, opts ...Option) *Client {
	c := &Client{keyID: keyID, secret: secret, http: &http.Client{}, userAgent: "updraft-client"}
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(baseURL), "/"), "/api/v1"))
	switch {
	case err != nil:
		c.baseErr = fmt.Errorf("client: bad server URL %q: %w", baseURL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		c.baseErr = fmt.Errorf("client: bad server URL %q: want http://host:port or https://host", baseURL)
	}
	c.base = u
	for _, o := range opts {
		o(c)
	}
	return c
}

// APIError is an error answer of the server.
type APIError struct {
	Status    int    // HTTP status
	Code      string // ota code: invalid, not_found, conflict, unauthenticated, …
	Message   string // what was wrong and what to do
	Field     string // the offending input field, if any
	RequestID string // quote it when reporting a problem
}

func (e *APIError) Error() string {
	var b strings.Builder
	if e.Code != "" {
		fmt.Fprintf(&b, "%s: ", e.Code)
	}
	b.WriteString(e.Message)
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (HTTP %d, request id %s)", e.Status, e.RequestID)
	} else {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	return b.String()
}

// IsNotFound reports whether err is a not_found answer.
func IsNotFound(err error) bool { return errorCode(err) == "not_found" }

// IsConflict reports whether err is a conflict answer (already exists, or the
// state forbids the change).
func IsConflict(err error) bool { return errorCode(err) == "conflict" }

func errorCode(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Page selects a slice of a listing: Limit 0 is the server's default (100),
// at most 1000.
type Page struct {
	Limit  int
	Offset int
}

func (p Page) set(q url.Values) {
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Offset > 0 {
		q.Set("offset", strconv.Itoa(p.Offset))
	}
}

// newRequest builds a request to path (under the server, "/api/v1/…") with
// query q and credentials. path is already escaped (its segments made with
// escape), so it is sent as is rather than escaped a second time.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	u := *c.base
	rawPath := strings.TrimSuffix(u.EscapedPath(), "/") + path
	unescaped, err := url.PathUnescape(rawPath)
	if err != nil {
		return nil, fmt.Errorf("client: bad request path %q: %w", rawPath, err)
	}
	u.Path, u.RawPath = unescaped, rawPath
	u.RawQuery = ""
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.keyID+":"+c.secret)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// do sends a JSON request (in may be nil) and decodes a 2xx JSON answer into
// out (may be nil). Any other answer becomes an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	// Only a 429 from the server's rate limit is sent again: refused before
	// anything was done, it is safe to repeat for any method. Everything else
	// (a network error included, as a write may have happened) is the
	// caller's to handle.
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		if r, ok := body.(*bytes.Reader); ok {
			r.Seek(0, io.SeekStart)
		}
		req, err := c.newRequest(ctx, method, path, q, body)
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		defer resp.Body.Close()
		err = decodeResponse(resp, out)
		if wait, ok := rateLimitWait(resp); ok {
			return struct{}{}, &rateLimited{err: err, after: &backoff.RetryAfterError{Duration: wait}}
		}
		return struct{}{}, backoff.Permanent(err)
	}, backoff.WithMaxTries(maxRateLimitRetries+1), backoff.WithMaxElapsedTime(0))
	if rl, ok := err.(*rateLimited); ok {
		return rl.err // retries spent: the server's last answer
	}
	return err
}

// maxRateLimitRetries bounds how often one call is sent again after a 429.
const maxRateLimitRetries = 5

// rateLimitWait tells whether a 429 answer is worth waiting for, and how
// long: its Retry-After seconds (1 s when absent), unless that is a ban
// longer than 30 s, which is the caller's to handle.
func rateLimitWait(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || secs < 1 {
		secs = 1
	}
	if secs > 30 {
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

// rateLimited is a 429 answer to send again: backoff.Retry finds the wait in
// after; once the retries are spent, do returns err (the server's *APIError).
type rateLimited struct {
	err   error
	after *backoff.RetryAfterError
}

func (e *rateLimited) Error() string   { return e.err.Error() }
func (e *rateLimited) Unwrap() []error { return []error{e.err, e.after} }

func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: decoding the answer to %s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// responseError reads an error answer: the native envelope when there is one,
// else the start of the body (a proxy's page, say).
func responseError(resp *http.Response) error {
	e := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env apiv1.Error
	if json.Unmarshal(raw, &env) == nil && env.Code != "" {
		e.Code, e.Message, e.Field = env.Code, env.Message, env.Field
		if env.RequestID != "" {
			e.RequestID = env.RequestID
		}
		return e
	}
	e.Message = strings.TrimSpace(string(raw))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// escape makes one path segment.
func escape(s string) string { return url.PathEscape(s) }

// escapeKey escapes an object key segment by segment, so its "/" stay
// separators.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = escape(seg)
	}
	return strings.Join(segs, "/")
}

// OpenAPI returns the server's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	err := c.do(ctx, http.MethodGet, "/api/v1/openapi.json", nil, nil, &doc)
	return doc, err
}
