package device

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
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// HTTPConfig configures a device that polls over HTTP.
type HTTPConfig struct {
	Config
	// Server is the server's base URL ("https://updraft.example.com").
	Server string
	// Client does the requests (default: 30 s timeout).
	Client *http.Client
	// Modules are polled for updates (default: the modules in Versions, or
	// the default module).
	Modules []string
	// PollInterval, when set, is the wait between polls. When zero, the
	// device follows the server's Retry-After (1 minute if it says nothing),
	// which lets the operator pace a fleet.
	PollInterval time.Duration
	// Attempts is how many times a report is sent before giving up
	// (default 5); Backoff the first wait between attempts (default 1 s),
	// randomized by ±50 % and doubling up to 30 s; a Retry-After from the
	// server takes its place.
	Attempts int
	Backoff  time.Duration
}

// HTTP is a device that polls the device API for notices.
type HTTP struct {
	cfg  HTTPConfig
	base string
	disp *dispatcher
	wg   sync.WaitGroup
	once sync.Once
}

// APIError is an error answer of the device API.
type APIError struct {
	Status int
	Body   wire.Error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("device API: %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// NewHTTP prepares a polling device; Start begins polling.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	cfg.defaults()
	if cfg.Product == "" || cfg.Name == "" || cfg.Secret == "" {
		return nil, errors.New("device: Product, Name and Secret are required")
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("device: Server %q is not http(s)://host[:port]", cfg.Server)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if len(cfg.Modules) == 0 {
		for m := range cfg.Versions {
			cfg.Modules = append(cfg.Modules, module(m))
		}
		if len(cfg.Modules) == 0 {
			cfg.Modules = []string{DefaultModule}
		}
	}
	return &HTTP{cfg: cfg, base: u.String() + "/device/v1", disp: newDispatcher()}, nil
}

// OnNotice sets the notice handler.
func (d *HTTP) OnNotice(h Handler) { d.disp.setHandler(h) }

// Start reports the configured versions, then polls each module in the
// background until Close. A module is not polled while its notice's handler
// runs.
func (d *HTTP) Start(ctx context.Context) error {
	for m, v := range d.cfg.Versions {
		if err := d.ReportVersion(ctx, m, v); err != nil {
			return err
		}
	}
	d.once.Do(func() {
		for _, m := range d.cfg.Modules {
			d.wg.Add(1)
			go d.poll(m)
		}
	})
	return nil
}

func (d *HTTP) poll(mod string) {
	defer d.wg.Done()
	ctx := d.disp.ctx
	for {
		wait := d.cfg.PollInterval
		if wait <= 0 {
			wait = time.Minute
		}
		if !d.disp.busy(mod) {
			n, retry, err := d.check(ctx, mod)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				d.cfg.Logger.Debug("device: poll failed", "device", d.cfg.Product+"/"+d.cfg.Name, "err", err)
			case n != nil:
				d.disp.deliver(*n)
			}
			if retry > 0 && d.cfg.PollInterval <= 0 {
				wait = retry
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// Check asks whether an update waits for module (nil if none).
func (d *HTTP) Check(ctx context.Context, mod string) (*Notice, error) {
	n, _, err := d.check(ctx, mod)
	return n, err
}

func (d *HTTP) check(ctx context.Context, mod string) (*Notice, time.Duration, error) {
	resp, err := d.do(ctx, http.MethodGet, "/update?module="+url.QueryEscape(module(mod)), nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	retry := retryAfter(resp.Header.Get("Retry-After"))
	switch resp.StatusCode {
	case http.StatusNoContent:
		return nil, retry, nil
	case http.StatusOK:
		var n Notice
		if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
			return nil, retry, fmt.Errorf("device API: malformed notice: %w", err)
		}
		n.Module = module(n.Module)
		return &n, retry, nil
	}
	return nil, retry, apiError(resp)
}

func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// ReportVersion reports the version module runs now.
func (d *HTTP) ReportVersion(ctx context.Context, mod, version string) error {
	return d.send(ctx, "/version", wire.VersionReport{Module: module(mod), Version: version})
}

// ReportProgress reports progress on a task.
func (d *HTTP) ReportProgress(ctx context.Context, p Progress) error {
	p.Module = module(p.Module)
	return d.send(ctx, "/progress", p)
}

// send POSTs v, retrying network failures and 5xx/429 answers: Attempts
// tries in all, waiting Backoff (±50 %, so a fleet does not retry in step)
// doubling up to 30 s between them, or the server's Retry-After when it
// names one.
func (d *HTTP) send(ctx context.Context, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		resp, err := d.do(ctx, http.MethodPost, path, b)
		if err != nil {
			return struct{}{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return struct{}{}, nil
		}
		apiErr := apiError(resp)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return struct{}{}, backoff.Permanent(apiErr)
		}
		if ra := retryAfter(resp.Header.Get("Retry-After")); ra > 0 {
			return struct{}{}, &serverPaced{err: apiErr, after: &backoff.RetryAfterError{Duration: ra}}
		}
		return struct{}{}, apiErr
	}, backoff.WithBackOff(newBackOff(d.cfg.Backoff)), backoff.WithMaxTries(uint(d.cfg.Attempts)), backoff.WithMaxElapsedTime(0))
	if sp, ok := err.(*serverPaced); ok {
		return sp.err // tries spent: the server's last answer
	}
	return err
}

// newBackOff is the wait between a device's tries: first about initial, then
// doubling up to 30 s, each randomized by ±50 % so that a fleet refused at
// the same moment does not come back at the same moment.
func newBackOff(initial time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 30 * time.Second}
}

// serverPaced is a retryable answer that named its Retry-After: backoff.Retry
// waits that long before the next try; the caller sees only err.
type serverPaced struct {
	err   error
	after *backoff.RetryAfterError
}

func (e *serverPaced) Error() string   { return e.err.Error() }
func (e *serverPaced) Unwrap() []error { return []error{e.err, e.after} }

func (d *HTTP) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", wire.Authorization(d.cfg.Product, d.cfg.Name, d.cfg.Secret, d.cfg.Now()))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return d.cfg.Client.Do(req)
}

func apiError(resp *http.Response) error {
	e := &APIError{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e.Body) != nil || e.Body.Code == "" {
		e.Body.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Body.Message = strings.TrimSpace(string(b))
	}
	return e
}

// Close stops polling and waits for running handlers to return.
func (d *HTTP) Close() error {
	d.disp.close()
	d.wg.Wait()
	return nil
}
