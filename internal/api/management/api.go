// Package management is Updraft's native management REST API (/api/v1):
// products, modules, devices and packages (and jobs, in jobs.go). Handlers
// authenticate the caller, decode and translate the request, call the service
// and translate its answer; rules live in the service and the domain.
//
// Adding routes: write a file with `func (a *API) registerX(mux *http.ServeMux)`
// that calls a.route for each route, call it from New, and describe each
// route in openapi.json (TestOpenAPICoversRoutes fails otherwise).
package management

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

// Prefix is where the API lives.
const Prefix = "/api/v1"

// Options configure the API.
type Options struct {
	// Log receives internal errors (with request ids). Default slog.Default().
	Log *slog.Logger
	// MaxJSONBody limits JSON request bodies and the upload's metadata part.
	// Default httpx.MaxJSONBody.
	MaxJSONBody int64
}

// API is the native management API's handler set.
type API struct {
	svc  *service.Service
	log  *slog.Logger
	opts Options
	// routes lists every registered pattern, for the OpenAPI coverage test.
	routes []string
}

// handlerFunc is an authenticated handler: it writes its success response
// itself and returns an error for the one error writer.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p service.Principal) error

// New returns the API's handler. Routes are full paths (/api/v1/…), so mount
// it at /api/v1/ unchanged.
func New(svc *service.Service, opts Options) http.Handler {
	a := newAPI(svc, opts)
	return a.handler()
}

func newAPI(svc *service.Service, opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxJSONBody <= 0 {
		opts.MaxJSONBody = httpx.MaxJSONBody
	}
	return &API{svc: svc, log: opts.Log, opts: opts}
}

func (a *API) handler() http.Handler {
	mux := http.NewServeMux()
	a.registerDocs(mux)
	a.registerProducts(mux)
	a.registerDevices(mux)
	a.registerPackages(mux)
	a.registerObjects(mux)   // objects.go (huaweiiotda helper): files registered later by bucket/key
	a.registerJobs(mux)      // jobs.go (rollout)
	a.registerLifecycle(mux) // lifecycle.go
	a.registerTenants(mux)   // tenants.go (security)
	a.registerAudit(mux)     // audit.go
	return httpx.RequestID(a.fallback(mux))
}

// route registers an authenticated handler for pattern ("METHOD /api/v1/…").
// The key's role is checked before the handler runs: GET reads, every other
// method changes something (service.Principal.AllowMethod).
func (a *API) route(mux *http.ServeMux, pattern string, h handlerFunc) {
	a.routes = append(a.routes, pattern)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		httpx.RecordRoute(r, pattern)
		p, err := httpx.Authenticated(r, func() (service.Principal, error) { return a.authenticate(r) })
		if err == nil {
			err = p.AllowMethod(r.Method)
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			httpx.WriteError(w, r, a.log, err)
		}
	})
}

// publicRoute registers a handler that needs no credentials.
func (a *API) publicRoute(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	a.routes = append(a.routes, pattern)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		httpx.RecordRoute(r, pattern)
		h(w, r)
	})
}

// authenticate reads `Authorization: Bearer <key id>:<secret>` or HTTP Basic.
func (a *API) authenticate(r *http.Request) (service.Principal, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return service.Principal{}, ota.Errorf(ota.CodeUnauthenticated,
			"missing credentials: send Authorization: Bearer <access key id>:<secret> (or HTTP Basic)")
	}
	scheme, cred, _ := strings.Cut(auth, " ")
	cred = strings.TrimSpace(cred)
	var pair string
	switch strings.ToLower(scheme) {
	case "bearer":
		pair = cred
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return service.Principal{}, ota.Errorf(ota.CodeUnauthenticated, "malformed Basic credentials: not base64")
		}
		pair = string(raw)
	default:
		return service.Principal{}, ota.Errorf(ota.CodeUnauthenticated,
			"unsupported authorization scheme %q: use Bearer <access key id>:<secret> or Basic", scheme)
	}
	id, secret, ok := strings.Cut(pair, ":")
	if !ok || id == "" || secret == "" {
		return service.Principal{}, ota.Errorf(ota.CodeUnauthenticated,
			"malformed credentials: expected <access key id>:<secret>")
	}
	return a.svc.Authenticate(r.Context(), id, secret)
}

// fallback answers requests no route matches (404, 405) in the native error
// envelope instead of ServeMux's plain text.
func (a *API) fallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux decide between 404, 405 (with Allow) and a redirect to
		// the clean path, then replace only a 404 or 405 body.
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			httpx.WriteError(w, r, a.log, ota.Errorf(ota.CodeNotFound,
				"no such endpoint: %s %s (the API is described at %s/openapi.json)", r.Method, r.URL.Path, Prefix))
		case http.StatusMethodNotAllowed:
			// A 405 is outside the ota code table: the path exists, the
			// method does not.
			w.Header().Set("Allow", probe.header.Get("Allow"))
			httpx.WriteJSON(w, http.StatusMethodNotAllowed, httpx.ErrorBody{
				Code:      string(ota.CodeInvalid),
				Message:   "method " + r.Method + " is not allowed on " + r.URL.Path + ": allowed: " + probe.header.Get("Allow"),
				RequestID: httpx.RequestIDFrom(r.Context()),
			})
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// statusProbe records what a handler would answer, discarding the body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

// MaxPageLimit caps ?limit=.
const MaxPageLimit = 1000

// page reads ?limit= and ?offset=.
func page(r *http.Request) (store.Page, error) {
	var pg store.Page
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit {
			return pg, ota.Invalid("limit", "limit must be an integer from 1 to %d, got %q", MaxPageLimit, s)
		}
		pg.Limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return pg, ota.Invalid("offset", "offset must be a non-negative integer, got %q", s)
		}
		pg.Offset = n
	}
	return pg, nil
}
