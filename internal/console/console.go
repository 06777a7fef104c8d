// Package console is Updraft's web console: server-rendered pages
// (html/template) with a little embedded vanilla JavaScript for the upload
// progress bar and the live job page (server-sent events). It is a front-end
// like the REST APIs: it signs an operator in with an access key, translates
// forms into service calls and renders the answers; every rule lives in the
// service and the domain.
//
// Sessions need no server state, so they work across replicas: the cookie
// carries the access key id and an expiry, signed with a key derived from the
// access key's own secret. Each request reads the key from the store again
// and re-authenticates through the service, so a revoked or rotated key stops
// at once. The CSRF token (a synchronizer token in every form and in the
// X-CSRF-Token header of scripted requests) is derived the same way and bound
// to the session.
package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	// SessionCookie names the session cookie.
	SessionCookie = "updraft_session"
	// CSRFField is the hidden form field, CSRFHeader the header scripted
	// requests send the token in.
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = 12 * time.Hour
)

// Options configure the console.
type Options struct {
	Log *slog.Logger
	// SessionTTL bounds a session (default DefaultSessionTTL).
	SessionTTL time.Duration
	// RootAPI answers the requests to "/" that IsRootAPICall says are API
	// calls (the Alibaba RPC API shares the root path with the console's
	// overview); the console shows its overview for the rest.
	RootAPI       http.Handler
	IsRootAPICall func(*http.Request) bool
	// LiveInterval is how often the live job page is refreshed (default 1 s).
	LiveInterval time.Duration
}

// Console is the web console's handler set.
type Console struct {
	svc   *service.Service
	log   *slog.Logger
	opts  Options
	pages map[string]*template.Template
}

// New builds the console.
func New(svc *service.Service, opts Options) *Console {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.LiveInterval <= 0 {
		opts.LiveInterval = time.Second
	}
	return &Console{svc: svc, log: opts.Log, opts: opts, pages: parsePages()}
}

// Register mounts the console's routes on mux. The APIs keep their own
// prefixes (/api/v1, /v5/iot, …); the console takes "/" and a few page paths.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", c.root)
	mux.HandleFunc("GET /signin", c.signinForm)
	mux.HandleFunc("POST /signin", c.signin)
	mux.HandleFunc("POST /signout", c.change(c.signout))
	mux.HandleFunc("GET /products", c.page(c.products))
	mux.HandleFunc("GET /devices", c.page(c.devices))
	mux.HandleFunc("GET /devices/{product}/{name}", c.page(c.device))
	mux.HandleFunc("GET /packages", c.page(c.packages))
	mux.HandleFunc("POST /packages", c.streamChange(c.uploadPackage))
	mux.HandleFunc("GET /packages/{id}", c.page(c.packageDetail))
	mux.HandleFunc("POST /packages/{id}/delete", c.change(c.deletePackage))
	mux.HandleFunc("GET /jobs", c.page(c.jobs))
	mux.HandleFunc("GET /jobs/new", c.page(c.jobForm))
	mux.HandleFunc("POST /jobs", c.change(c.createJob))
	mux.HandleFunc("GET /jobs/{id}", c.page(c.job))
	mux.HandleFunc("GET /jobs/{id}/events", c.events)
	mux.HandleFunc("POST /jobs/{id}/{action}", c.change(c.jobAction))
}

// root is the overview, unless the request is an API call by Action.
func (c *Console) root(w http.ResponseWriter, r *http.Request) {
	if c.opts.IsRootAPICall != nil && c.opts.IsRootAPICall(r) && c.opts.RootAPI != nil {
		c.opts.RootAPI.ServeHTTP(w, r)
		return
	}
	c.page(c.overview)(w, r)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Assets change only with the binary; an hour keeps reloads cheap.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// session is a signed-in operator.
type session struct {
	p      service.Principal
	keyID  string
	expiry int64
	csrf   string
}

// sessionKey derives the MAC key of a key's sessions from its secret.
func sessionKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("updraft-console-session-v1"))
	return m.Sum(nil)
}

func mac(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// cookieValue is keyid(base64url).expiry.nonce.mac; the random nonce makes
// every sign-in a session of its own (with its own CSRF token).
func cookieValue(keyID, secret string, expiry int64) string {
	exp := strconv.FormatInt(expiry, 10)
	var n [12]byte
	_, _ = rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	return base64.RawURLEncoding.EncodeToString([]byte(keyID)) + "." + exp + "." + nonce + "." + mac(sessionKey(secret), "session", keyID, exp, nonce)
}

var errNoSession = ota.Errorf(ota.CodeUnauthenticated, "sign in with an access key")

// currentSession checks the cookie against the key in the store now.
func (c *Console) currentSession(r *http.Request) (*session, error) {
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 4 {
		return nil, errNoSession
	}
	rawID, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errNoSession
	}
	keyID := string(rawID)
	expiry, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || time.Now().Unix() >= expiry {
		return nil, ota.Errorf(ota.CodeUnauthenticated, "the session has expired: sign in again")
	}
	k, err := c.svc.AccessKey(r.Context(), keyID)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeUnauthenticated {
			return nil, errNoSession
		}
		return nil, err
	}
	sk := sessionKey(k.Secret)
	if !hmac.Equal([]byte(parts[3]), []byte(mac(sk, "session", keyID, parts[1], parts[2]))) {
		return nil, errNoSession
	}
	// The service decides who the key is (tenant, and whatever else a
	// principal carries): the console never builds a principal itself.
	p, err := c.svc.Authenticate(r.Context(), keyID, k.Secret)
	if err != nil {
		return nil, err
	}
	return &session{p: p, keyID: keyID, expiry: expiry, csrf: mac(sk, "csrf", keyID, parts[1], parts[2])}, nil
}

func (c *Console) setSession(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// page wraps a GET handler that needs a session; without one it redirects
// to the sign-in form.
func (c *Console) page(h func(w http.ResponseWriter, r *http.Request, s *session) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		s, err := c.currentSession(r)
		if err != nil {
			if ota.ErrorCode(err) == ota.CodeUnauthenticated {
				http.Redirect(w, r, "/signin?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, err)
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	}
}

// change wraps a POST handler: it needs a session and the session's CSRF
// token, in the form field or the header. (The upload streams its body and
// checks the token itself: streamChange.)
func (c *Console) change(h func(w http.ResponseWriter, r *http.Request, s *session) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		s, err := c.currentSession(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		token := r.Header.Get(CSRFHeader)
		if token == "" {
			r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxJSONBody)
			token = r.PostFormValue(CSRFField)
		}
		if token == "" || !hmac.Equal([]byte(token), []byte(s.csrf)) {
			c.fail(w, r, s, errCSRF)
			return
		}
		// The role check every front-end makes (signing out changes nothing
		// of the tenant's, so a readonly key may).
		if r.URL.Path != "/signout" {
			if err := s.p.Allow(service.ActionWrite); err != nil {
				c.fail(w, r, s, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	}
}

// streamChange wraps a POST handler that streams a multipart body: the token
// comes in the header (the script's upload) or as the body's first part (a
// plain form post: the hidden field is the form's first field), which the
// handler reads with firstPartToken.
func (c *Console) streamChange(h func(w http.ResponseWriter, r *http.Request, s *session, headerToken bool) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secureHeaders(w)
		s, err := c.currentSession(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		token := r.Header.Get(CSRFHeader)
		if token != "" && !hmac.Equal([]byte(token), []byte(s.csrf)) {
			c.fail(w, r, s, errCSRF)
			return
		}
		if err := s.p.Allow(service.ActionWrite); err != nil {
			c.fail(w, r, s, err)
			return
		}
		if err := h(w, r, s, token != ""); err != nil {
			c.fail(w, r, s, err)
		}
	}
}

var errCSRF = ota.Errorf(ota.CodeForbidden, "the form's security token is missing or wrong (CSRF): reload the page and try again")

func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// fail renders err as an error page with the native status code.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := ota.ErrorCode(err)
	msg := ota.ErrorMessage(err)
	if code == ota.CodeInternal || code == ota.CodeUnavailable {
		c.log.Error("console", "path", r.URL.Path, "err", err)
		if code == ota.CodeUnavailable {
			msg = "a dependency is unavailable; try again shortly (details are in the server log)"
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code, msg = ota.CodeTooLarge, "the request is too large"
	}
	if r.Header.Get("Accept") == "application/json" || r.Header.Get(CSRFHeader) != "" {
		httpx.WriteJSON(w, httpx.Status(code), httpx.ErrorBody{Code: string(code), Message: msg, Field: ota.ErrorField(err), RequestID: httpx.RequestIDFrom(r.Context())})
		return
	}
	c.render(w, r, s, httpx.Status(code), "error", "Error", map[string]any{"Code": code, "Message": msg})
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string
	CSRF  string
	Key   string
	Data  any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any) {
	v := view{Title: title, Nav: name, Data: data}
	if s != nil {
		v.CSRF, v.Key = s.csrf, s.keyID
	}
	t := c.pages[name]
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		c.log.Error("console: rendering", "page", name, "err", err)
	}
}

// signinForm shows the sign-in form.
func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	c.render(w, r, nil, http.StatusOK, "signin", "Sign in", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// signin checks the key through the service and sets the session cookie.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, httpx.MaxJSONBody)
	id, secret := strings.TrimSpace(r.PostFormValue("access_key_id")), r.PostFormValue("secret")
	next := safeNext(r.PostFormValue("next"))
	if _, err := c.svc.Authenticate(r.Context(), id, secret); err != nil {
		status := httpx.Status(ota.ErrorCode(err))
		c.render(w, r, nil, status, "signin", "Sign in", map[string]any{"Next": next, "KeyID": id, "Error": ota.ErrorMessage(err)})
		return
	}
	expiry := time.Now().Add(c.opts.SessionTTL).Unix()
	c.setSession(w, r, cookieValue(id, secret, expiry), int(c.opts.SessionTTL/time.Second))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, _ *session) error {
	c.setSession(w, r, "", -1)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}
