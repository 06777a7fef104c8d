package httpx

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/updraft-ota/updraft/internal/ota"
)

// RateLimits bound how fast callers may use the management APIs, so that a
// runaway script cannot starve the other tenants: every authenticated call
// draws from its access key's bucket and from its tenant's (all the
// tenant's keys together), and every call that fails to
// authenticate (no, bad or forged credentials) from its source IP's bucket,
// which, once empty, refuses that IP's calls before any signature is
// checked. A refusal is CodeRateLimited in the caller's dialect, with a
// Retry-After header. Zero rates turn a limit off.
//
// Devices on the device HTTP APIs (native /device/v1, EnOS's HTTP login and
// download) draw from their own device's bucket instead (AdmitDevice), so a
// device that polls too often is refused in its protocol's throttling form
// while the rest of the fleet is not. Buckets live in each replica's
// memory: every replica limits what it serves itself, so behind a load
// balancer that spreads one device over N replicas the device gets up to N
// times the rate.
type RateLimits struct {
	PerKey       float64 // requests per second per access key
	KeyBurst     int     // default 2 × PerKey (at least 1)
	PerTenant    float64 // requests per second per tenant, all its keys together
	TenantBurst  int     // default 2 × PerTenant (at least 1)
	PerIP        float64 // failed authentications per second per source IP
	IPBurst      int     // default 5 × PerIP (at least 1)
	PerDevice    float64 // device HTTP requests per second per device
	DeviceBurst  int     // default 10 × PerDevice (at least 1)
	MaxEntries   int     // buckets remembered per kind before idle ones go; default 100 000
	clockForTest func() time.Time
}

// DefaultRateLimits are the server's defaults: far above what an operator's
// scripts or the CLI need (Alibaba documents 10–20 QPS per operation and
// account), low enough that one key cannot take the whole server.
//
// A device polls once a minute (the Retry-After of an empty check) and
// reports a handful of progress steps per upgrade: 5 requests a second with
// a burst of 50 never touches a well-behaved device (nor a test fleet
// polling every 200 ms) and stops a runaway poll loop.
//
// A tenant's keys together get 2.5 times one key's rate: a tenant cannot
// escape the limit by minting keys, and one busy tenant leaves room for
// the others.
var DefaultRateLimits = RateLimits{PerKey: 200, PerTenant: 500, PerIP: 10, PerDevice: 5}

// buckets is one token bucket per key, with idle buckets forgotten.
type buckets struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	max   int
	m     map[string]*rate.Limiter
}

func newBuckets(perSecond float64, burst, max int, factor float64) *buckets {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max1(int(math.Ceil(perSecond * factor)))
	}
	return &buckets{limit: rate.Limit(perSecond), burst: burst, max: max, m: map[string]*rate.Limiter{}}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func (b *buckets) get(key string, now time.Time) *rate.Limiter {
	l := b.m[key]
	if l == nil {
		if len(b.m) >= b.max {
			// A full bucket is the same as no bucket: forget those.
			for k, v := range b.m {
				if v.TokensAt(now) >= float64(b.burst) {
					delete(b.m, k)
				}
			}
		}
		l = rate.NewLimiter(b.limit, b.burst)
		b.m[key] = l
	}
	return l
}

// take draws a token; when none is left it returns how long until one is.
func (b *buckets) take(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.get(key, now)
	if l.AllowN(now, 1) {
		return true, 0
	}
	r := l.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, d
}

// peek reports whether a token is left, without drawing it.
func (b *buckets) peek(key string, now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.get(key, now)
	if t := l.TokensAt(now); t >= 1 {
		return true, 0
	} else {
		return false, time.Duration((1 - t) / float64(b.limit) * float64(time.Second))
	}
}

// Throttle holds a server's rate limits; Throttled puts it in every
// request's context, and Admit consults it.
type Throttle struct {
	keys, tenants, ips, devices *buckets
	now                         func() time.Time
}

// NewThrottle builds the limits.
func NewThrottle(l RateLimits) *Throttle {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 100_000
	}
	t := &Throttle{keys: newBuckets(l.PerKey, l.KeyBurst, l.MaxEntries, 2), tenants: newBuckets(l.PerTenant, l.TenantBurst, l.MaxEntries, 2), ips: newBuckets(l.PerIP, l.IPBurst, l.MaxEntries, 5),
		devices: newBuckets(l.PerDevice, l.DeviceBurst, l.MaxEntries, 10), now: time.Now}
	if l.clockForTest != nil {
		t.now = l.clockForTest
	}
	return t
}

type throttleKey struct{}

type throttleCtx struct {
	t *Throttle
	w http.ResponseWriter
}

// Throttled makes t available to the handlers' Admit calls.
func Throttled(t *Throttle, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.WithContext(context.WithValue(r.Context(), throttleKey{}, throttleCtx{t: t, w: w}))
		next.ServeHTTP(w, r2)
		r.Pattern = r2.Pattern // the mux sets it on the copy; metrics outside read it
	})
}

// Caller is who a management request authenticated as: the access key it
// is charged to, and the key's tenant ("" when not known yet, as for a
// token request, which is charged to the key alone).
type Caller struct {
	Key, Tenant string
}

// Admit runs a dialect's authentication under the rate limits: refused
// at once when the source IP has failed too often, charged to the IP when
// auth fails, charged to the access key it names and to its tenant when it
// succeeds. Without Throttled (tests of one API) it only runs auth.
func Admit(r *http.Request, auth func() (Caller, error)) error {
	return admit(r, auth, func(t *Throttle) *buckets { return t.keys }, "access key")
}

// AdmitDevice is Admit for the device HTTP APIs: auth names the device
// ("{product}/{device}"), whose own bucket (RateLimits.PerDevice) the
// request draws from. Failed authentications count against the source IP
// as on the management APIs.
func AdmitDevice(r *http.Request, auth func() (device string, err error)) error {
	return admit(r, func() (Caller, error) {
		device, err := auth()
		return Caller{Key: device}, err
	}, func(t *Throttle) *buckets { return t.devices }, "device")
}

// admit runs auth under the IP limit, then charges the caller's key to
// bucketsOf's bucket and, when it names one, its tenant to the tenant's.
func admit(r *http.Request, auth func() (Caller, error), bucketsOf func(*Throttle) *buckets, kind string) error {
	tc, ok := r.Context().Value(throttleKey{}).(throttleCtx)
	if !ok || tc.t == nil {
		_, err := auth()
		return err
	}
	now := tc.t.now()
	ip := clientIP(r)
	if tc.t.ips != nil {
		if ok, wait := tc.t.ips.peek(ip, now); !ok {
			return tc.refuse(wait, "too many failed authentications from %s", ip)
		}
	}
	c, err := auth()
	if err != nil {
		if tc.t.ips != nil {
			tc.t.ips.take(ip, now)
		}
		return err
	}
	if b := bucketsOf(tc.t); b != nil {
		if ok, wait := b.take(c.Key, now); !ok {
			return tc.refuse(wait, "too many requests with %s %s (limit %g per second)", kind, c.Key, float64(b.limit))
		}
	}
	if b := tc.t.tenants; b != nil && c.Tenant != "" {
		if ok, wait := b.take(c.Tenant, now); !ok {
			return tc.refuse(wait, "too many requests from tenant %s, all its access keys together (limit %g per second)", c.Tenant, float64(b.limit))
		}
	}
	return nil
}

func (tc throttleCtx) refuse(wait time.Duration, format string, args ...any) error {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	tc.w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &ota.Error{Code: ota.CodeRateLimited, Message: fmt.Sprintf(format, args...) + fmt.Sprintf(": retry after %d s", secs)}
}

// clientIP is the connection's peer address. Forwarded headers are not
// trusted: anyone could set them to spread failures over made-up IPs.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Authenticated is Admit for an auth function returning a principal P,
// which names its access key and tenant.
func Authenticated[P interface {
	Key() string
	Tenant() string
}](r *http.Request, auth func() (P, error)) (P, error) {
	var p P
	err := Admit(r, func() (Caller, error) {
		var err error
		if p, err = auth(); err != nil {
			return Caller{}, err
		}
		return Caller{Key: p.Key(), Tenant: p.Tenant()}, nil
	})
	return p, err
}
