// Package device is the device HTTP API (/device/v1/…): the same native
// protocol as MQTT (sdk/device/wire) for devices that poll instead of
// holding a connection.
//
//	POST /device/v1/version          body {"module","version"}              → 204
//	GET  /device/v1/update?module=M  → 200 notice | 204 none; Retry-After: seconds to the next poll
//	POST /device/v1/progress         body {"task_id","module","step","desc"} → 204
//
// Every request carries "Authorization: Updraft-HMAC-SHA256
// {product}&{device}|{unix ms} {hex HMAC-SHA256(secret, that string)}", checked
// against the device's secret with a ±5 minute window: stateless, so any
// replica answers, and the secret never travels. Errors use the native
// envelope {"code","message","field","request_id"}. Downloads go to the
// notice's URL (signed and expiring, Range-capable), not through this API.
package device

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Prefix is where the API is mounted.
const Prefix = "/device/v1"

// maxBody bounds a device request body: reports are tiny.
const maxBody = 64 << 10

// Options configure the API.
type Options struct {
	Log *slog.Logger
	// Skew bounds credential timestamps (default 5 minutes).
	Skew time.Duration
	// Now is the clock for credential checks (default time.Now).
	Now func() time.Time
	// PollInterval is the Retry-After a device gets with "no update"
	// (default 1 minute).
	PollInterval time.Duration
}

// API serves /device/v1/.
type API struct {
	devices deviceproto.Devices
	opts    Options
	mux     *http.ServeMux

	// products caches each product for productTTL: every request checks
	// the product's auth mode, and polling fleets ask often.
	prodMu   sync.Mutex
	products map[string]cachedProduct
}

type cachedProduct struct {
	p  ota.Product
	at time.Time
}

// productTTL bounds how long a product is remembered. Its auth mode never
// changes, but a deleted product's key may be reused with another.
const productTTL = time.Minute

// New returns the device API handler; mount it at Prefix+"/".
func New(d deviceproto.Devices, opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Minute
	}
	a := &API{devices: d, opts: opts, mux: http.NewServeMux(), products: map[string]cachedProduct{}}
	handlers := []handler{a.version, a.update, a.progress}
	for i, pattern := range Routes {
		a.mux.Handle(pattern, a.authed(handlers[i]))
	}
	return a
}

// Routes are the API's patterns, in the order New binds them; the served
// OpenAPI document describes each (a management test checks it).
var Routes = []string{"POST " + Prefix + "/version", "GET " + Prefix + "/update", "POST " + Prefix + "/progress"}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	if pattern == "" {
		a.fail(w, r, ota.NotFound("device API endpoint", r.Method+" "+r.URL.Path))
		return
	}
	httpx.RecordRoute(r, pattern)
	a.mux.ServeHTTP(w, r)
}

type handler func(w http.ResponseWriter, r *http.Request, dev ota.DeviceRef) error

// authed checks the device's Authorization header before h runs.
func (a *API) authed(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ref ota.DeviceRef
		// Under the server's rate limits: failures count against the source
		// IP, requests against the device's own bucket (429 + Retry-After
		// in the native envelope when it polls too often).
		err := httpx.AdmitDevice(r, func() (string, error) {
			cred, err := wire.ParseAuthorization(r.Header.Get("Authorization"))
			if err != nil {
				return "", &ota.Error{Code: ota.CodeUnauthenticated, Message: err.Error()}
			}
			dev, err := deviceproto.Authenticate(r.Context(), a.devices, cred, a.opts.Now(), a.opts.Skew)
			if err != nil {
				return "", err
			}
			// A signature is a secret proof: refused for products whose
			// devices authenticate by client certificate (auth x509), which
			// device HTTP does not take.
			prod, err := a.product(r, dev.ProductKey)
			if err == nil {
				err = prod.CheckDeviceAuth(dev.Name, ota.DeviceProof{Secret: true})
			}
			if err != nil {
				return "", err
			}
			ref = ota.DeviceRef{ProductKey: dev.ProductKey, Name: dev.Name}
			return ref.ProductKey + "/" + ref.Name, nil
		})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if err := a.devices.DeviceSeen(r.Context(), ref); err != nil {
			// Presence is bookkeeping: the device's request still counts.
			a.opts.Log.WarnContext(r.Context(), "recording a device sighting failed", "device", ref.ProductKey+"/"+ref.Name, "err", err)
		}
		if err := h(w, r, ref); err != nil {
			a.fail(w, r, err)
		}
	})
}

// product is the device's product, from the cache when fresh.
func (a *API) product(r *http.Request, key string) (ota.Product, error) {
	now := time.Now()
	a.prodMu.Lock()
	c, ok := a.products[key]
	a.prodMu.Unlock()
	if ok && now.Sub(c.at) < productTTL {
		return c.p, nil
	}
	p, err := a.devices.DeviceProduct(r.Context(), key)
	if err != nil {
		return ota.Product{}, err
	}
	a.prodMu.Lock()
	if len(a.products) > 100000 {
		a.products = map[string]cachedProduct{} // bounded
	}
	a.products[key] = cachedProduct{p, now}
	a.prodMu.Unlock()
	return p, nil
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if ota.ErrorCode(err) == ota.CodeUnauthenticated {
		var cause error
		if e, ok := err.(*ota.Error); ok {
			cause = e.Err
		}
		a.opts.Log.InfoContext(r.Context(), "device request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", cause)
		w.Header().Set("WWW-Authenticate", wire.AuthScheme)
		httpx.WriteJSON(w, http.StatusUnauthorized, httpx.ErrorBody{Code: string(ota.CodeUnauthenticated), Message: ota.ErrorMessage(err), RequestID: httpx.RequestIDFrom(r.Context())})
		return
	}
	if ota.ErrorCode(err) == ota.CodeUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	httpx.WriteError(w, r, a.opts.Log, err)
}

func body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return nil, &ota.Error{Code: ota.CodeTooLarge, Message: "the request body is larger than 64 KiB"}
		}
		return nil, ota.Invalid("", "reading the request body: %v", err)
	}
	return b, nil
}

func (a *API) version(w http.ResponseWriter, r *http.Request, dev ota.DeviceRef) error {
	b, err := body(w, r)
	if err != nil {
		return err
	}
	if err := deviceproto.HandleVersion(r.Context(), a.devices, dev, b); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) progress(w http.ResponseWriter, r *http.Request, dev ota.DeviceRef) error {
	b, err := body(w, r)
	if err != nil {
		return err
	}
	if err := deviceproto.HandleProgress(r.Context(), a.devices, dev, b); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) update(w http.ResponseWriter, r *http.Request, dev ota.DeviceRef) error {
	n, err := deviceproto.Check(r.Context(), a.devices, dev, r.URL.Query().Get("module"))
	if err != nil {
		return err
	}
	if n == nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(a.opts.PollInterval/time.Second)))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, n)
	return nil
}
