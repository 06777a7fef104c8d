// Package aliyuniot answers the Alibaba Cloud IoT Platform OTA API (version
// 2018-01-20, RPC style) the way Alibaba does, so that alibaba-cloud-sdk-go
// (services/iot) and the Tea SDK (darabonba-openapi, iot-20180120) work
// against Updraft unchanged: POST / (and GET /) with Action=, signed with RPC
// v1 HMAC-SHA1 or ACS3-HMAC-SHA256. It also serves the OSS PostObject-style
// upload that GenerateOTAUploadURL points at. It is a thin translation over
// internal/service; README.md lists what is supported.
package aliyuniot

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// APIVersion is the only Version served.
const APIVersion = "2018-01-20"

const (
	// MaxBodyBytes limits a request body (iot.check.ParameterTooLarge
	// beyond it).
	MaxBodyBytes = 4 << 20
	// DefaultMaxFirmware is Alibaba's documented limit of OTA packages per
	// account (Options.MaxFirmware changes it).
	DefaultMaxFirmware = 500
)

// Options configure the dialect.
type Options struct {
	// Now is the clock request timestamps are checked against (default: the service's).
	Now func() time.Time
	Log *slog.Logger
	// MaxFirmware is how many packages one tenant may have through this
	// dialect's CreateOTAFirmware (default DefaultMaxFirmware).
	MaxFirmware int
	// QPS limits requests per second per tenant and Action (Alibaba's
	// documented per-account limits are in DocumentedQPS). Nil or a missing
	// action means no limit: the embedded defaults do not throttle.
	QPS map[string]int
}

// DocumentedQPS are Alibaba's per-account limits (spec §2.2), for
// Options.QPS when Alibaba's throttling is wanted.
var DocumentedQPS = map[string]int{
	"GenerateOTAUploadURL": 10, "CreateOTAFirmware": 10, "CreateOTAStaticUpgradeJob": 20,
	"CreateOTADynamicUpgradeJob": 20, "QueryOTAJob": 10, "CancelOTATaskByJob": 5,
	"ReupgradeOTATask": 20, "ConfirmOTATask": 20,
}

// API serves the IoT Platform OTA operations.
type API struct {
	svc      *service.Service
	verify   verifier
	log      *slog.Logger
	opts     Options
	actions  map[string]action
	throttle throttle
	// lastSweep is when this replica last dropped expired nonces.
	sweepMu   sync.Mutex
	lastSweep time.Time
}

// call is one authenticated request.
type call struct {
	r *http.Request
	p service.Principal
	q params
}

type action func(ctx context.Context, c *call) (any, error)

// New builds the dialect over svc.
func New(svc *service.Service, opts Options) *API {
	if opts.Now == nil {
		opts.Now = svc.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxFirmware == 0 {
		opts.MaxFirmware = DefaultMaxFirmware
	}
	a := &API{svc: svc, log: opts.Log, opts: opts, throttle: throttle{limits: opts.QPS, now: opts.Now}}
	a.verify = verifier{keys: svc.AccessKey, now: opts.Now,
		// A request passes its timestamp check for ±MaxClockSkew: its nonce
		// must be remembered that long after the latest timestamp allowed.
		nonces: func(ctx context.Context, keyID, nonce string) (bool, error) {
			return svc.UseNonce(ctx, keyID, nonce, 2*MaxClockSkew)
		}}
	a.actions = a.operations()
	return a
}

// Register mounts the API on POST "/" (exactly) and the upload endpoint at
// UploadPath. GET "/" (ListOTAModuleByProduct from the Tea SDK) is shared with
// the web console, so the server mounts Handler there itself.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /{$}", a.Handler())
	mux.Handle("POST "+UploadPath, httpx.RequestID(http.HandlerFunc(a.upload)))
}

// IsCall reports whether a request to "/" is an API call: the RPC SDKs name
// the operation in the Action parameter, the Tea SDK's ACS3 requests in the
// x-acs-action header. Anything else at "/" is not this API's.
func IsCall(r *http.Request) bool {
	return r.URL.Query().Has("Action") || r.Header.Get("x-acs-action") != ""
}

// Handler answers API requests (any method) to "/".
func (a *API) Handler() http.Handler { return httpx.RequestID(http.HandlerFunc(a.serve)) }

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	rid := httpx.RequestIDFrom(r.Context())
	res, err := a.run(r)
	if err != nil {
		if c := ota.ErrorCode(err); c == ota.CodeInternal || c == ota.CodeUnavailable {
			a.log.Error("aliyun iot request failed", "request_id", rid, "err", err)
		}
		writeError(w, rid, r.Host, err)
		return
	}
	out := map[string]any{"RequestId": rid, "Success": true}
	if m, ok := res.(map[string]any); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}

func (a *API) run(r *http.Request) (any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, ota.Invalid(fieldParam, "the request body could not be read: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, &ota.Error{Code: ota.CodeTooLarge, Message: "the request body is over 4 MB"}
	}
	values, err := mergeParams(r, body)
	if err != nil {
		return nil, err
	}
	p, err := httpx.Authenticated(r, func() (service.Principal, error) { return a.verify.authenticate(r, values, body) })
	if err != nil {
		return nil, err
	}
	a.sweepNonces(r.Context())
	name := values.Get("Action")
	if name == "" {
		name = r.Header.Get("x-acs-action")
	}
	version := values.Get("Version")
	if version == "" {
		version = r.Header.Get("x-acs-version")
	}
	if version != APIVersion {
		return nil, ota.Invalid(fieldParam, "Version %q is not served: use %s", version, APIVersion)
	}
	act, ok := a.actions[name]
	if ok {
		httpx.RecordRoute(r, "Action="+name) // a served action: a bounded set
	}
	if !ok {
		if name == "" {
			return nil, ota.Invalid(fieldMissing, "Action is required")
		}
		return nil, ota.Invalid(fieldAction, "the Action %q is not an IoT Platform OTA operation Updraft serves (see README.md)", name)
	}
	if err := p.Allow(actionKind(name)); err != nil {
		return nil, err
	}
	if !a.throttle.allow(p.TenantID, name) {
		return nil, ota.Errorf(ota.CodeRateLimited, "%s is limited to %d requests per second: retry later", name, a.opts.QPS[name])
	}
	c := &call{r: r, p: p, q: params{v: values}}
	return act(r.Context(), c)
}

// mergeParams merges the query with a form body (the SDKs send parameters in
// the query and an empty body; scripts may post a form).
func mergeParams(r *http.Request, body []byte) (url.Values, error) {
	values := r.URL.Query()
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if len(body) > 0 && ct == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, ota.Invalid(fieldParam, "the form body is not valid: %v", err)
		}
		for k, vs := range form {
			values[k] = append(values[k], vs...)
		}
	}
	return values, nil
}

// sweepNonces drops nonces older than the timestamp window, at most once a
// minute per replica.
func (a *API) sweepNonces(ctx context.Context) {
	now := a.opts.Now()
	a.sweepMu.Lock()
	due := now.Sub(a.lastSweep) > time.Minute
	if due {
		a.lastSweep = now
	}
	a.sweepMu.Unlock()
	if due {
		if _, err := a.svc.ForgetNonces(ctx); err != nil {
			a.log.Warn("forgetting old request nonces failed", "err", err)
		}
	}
}

// throttle counts requests per tenant and action in one-second windows.
type throttle struct {
	limits map[string]int
	now    func() time.Time
	mu     sync.Mutex
	window int64
	counts map[string]int
}

func (t *throttle) allow(tenant, action string) bool {
	limit, ok := t.limits[action]
	if !ok || limit <= 0 {
		return true
	}
	sec := t.now().Unix()
	t.mu.Lock()
	defer t.mu.Unlock()
	if sec != t.window || t.counts == nil {
		t.window, t.counts = sec, map[string]int{}
	}
	k := tenant + "\x00" + action
	if t.counts[k] >= limit {
		return false
	}
	t.counts[k]++
	return true
}

// params reads typed business parameters.
type params struct{ v url.Values }

func (p params) str(name string) string { return p.v.Get(name) }

func (p params) required(name string) (string, error) {
	s := p.v.Get(name)
	if s == "" {
		return "", ota.Invalid(fieldMissing, "%s is required", name)
	}
	return s, nil
}

// integer reads an optional integer; def when absent.
func (p params) integer(name string, def int64) (int64, error) {
	s := p.v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, ota.Invalid(fieldParam, "%s %q is not an integer", name, s)
	}
	return n, nil
}

// boolean reads an optional true/false; def when absent.
func (p params) boolean(name string, def bool) (bool, error) {
	switch s := p.v.Get(name); strings.ToLower(s) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, ota.Invalid(fieldParam, "%s %q is not true or false", name, s)
	}
}

// list reads a 1-based flattened list prefix.1, prefix.2, … . Indexes must
// run from 1 without gaps; at most max entries.
func (p params) list(prefix string, max int) ([]string, error) {
	n, err := p.count(prefix, "")
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, ota.Invalid(prefix, "%s may have at most %d entries, got %d", prefix, max, n)
	}
	out := make([]string, n)
	for i := range n {
		out[i] = p.v.Get(prefix + "." + strconv.Itoa(i+1))
	}
	return out, nil
}

// count finds how many entries prefix.N[suffix] has, and refuses gaps.
func (p params) count(prefix, suffix string) (int, error) {
	seen := map[int]bool{}
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		idx, tail, _ := strings.Cut(rest, ".")
		if suffix == "" && tail != "" || suffix != "" && tail == "" {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 {
			return 0, ota.Invalid(fieldParam, "%s: list indexes start at 1, got %q", k, idx)
		}
		seen[i] = true
	}
	for i := 1; i <= len(seen); i++ {
		if !seen[i] {
			return 0, ota.Invalid(fieldParam, "%s.%d is missing: list indexes must run 1, 2, 3, … without gaps", prefix, i)
		}
	}
	return len(seen), nil
}

// tags reads prefix.N.Key / prefix.N.Value.
func (p params) tags(prefix string, max int) ([]ota.Tag, error) {
	n, err := p.count(prefix, ".")
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, ota.Invalid(prefix, "%s may have at most %d tags, got %d", prefix, max, n)
	}
	out := make([]ota.Tag, n)
	for i := range n {
		base := prefix + "." + strconv.Itoa(i+1)
		out[i] = ota.Tag{Key: p.v.Get(base + ".Key"), Value: p.v.Get(base + ".Value")}
	}
	return out, nil
}

// page reads CurrentPage / PageSize (1-based; PageSize up to max).
func (p params) page(max int64) (current, size int64, err error) {
	if current, err = p.integer("CurrentPage", 1); err != nil {
		return 0, 0, err
	}
	if size, err = p.integer("PageSize", 10); err != nil {
		return 0, 0, err
	}
	if current < 1 {
		return 0, 0, ota.Invalid(fieldPage, "CurrentPage must be 1 or more, got %d", current)
	}
	if size < 1 || size > max {
		return 0, 0, ota.Invalid(fieldPage, "PageSize must be 1–%d, got %d", max, size)
	}
	// A CurrentPage so large that the offset would not fit is refused, not
	// wrapped into a negative offset (which the store reads as page 1).
	if current-1 > maxPageOffset/size {
		return 0, 0, ota.Invalid(fieldPage, "CurrentPage %d is beyond the last page of any list (PageSize %d)", current, size)
	}
	return current, size, nil
}

// maxPageOffset bounds the rows a page may skip: far past any list, and
// small enough that CurrentPage × PageSize never overflows.
const maxPageOffset = math.MaxInt32

// storePage is the store's page for page cur of size rows (page checked
// that the offset fits).
func storePage(cur, size int64) store.Page {
	return store.Page{Limit: int(size), Offset: int((cur - 1) * size)}
}

func pageCount(total, size int64) int64 { return (total + size - 1) / size }

// utc formats a time as Alibaba's UTC strings ("" for the zero time).
func utc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// actionKind tells the role check whether an operation only reads: Alibaba's
// read operations are the Query… and List… ones; everything else changes
// state (GenerateOTAUploadURL hands out the right to upload).
func actionKind(name string) service.Action {
	if strings.HasPrefix(name, "Query") || strings.HasPrefix(name, "List") {
		return service.ActionRead
	}
	return service.ActionWrite
}
