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
// draws from its access key's bucket, and every call that fails to
// authenticate (no, bad or forged credentials) from its source IP's bucket,
// which, once empty, refuses that IP's calls before any signature is
// checked. A refusal is CodeRateLimited in the caller's dialect, with a
// Retry-After header. Zero rates turn a limit off.
type RateLimits struct {
	PerKey       float64 // requests per second per access key
	KeyBurst     int     // default 2 × PerKey (at least 1)
	PerIP        float64 // failed authentications per second per source IP
	IPBurst      int     // default 5 × PerIP (at least 1)
	MaxEntries   int     // buckets remembered per kind before idle ones go; default 100 000
	clockForTest func() time.Time
}

// DefaultRateLimits are the server's defaults: far above what an operator's
// scripts or the CLI need (Alibaba documents 10–20 QPS per operation and
// account), low enough that one key cannot take the whole server.
var DefaultRateLimits = RateLimits{PerKey: 200, PerIP: 10}

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
	keys, ips *buckets
	now       func() time.Time
}

// NewThrottle builds the limits.
func NewThrottle(l RateLimits) *Throttle {
	if l.MaxEntries <= 0 {
		l.MaxEntries = 100_000
	}
	t := &Throttle{keys: newBuckets(l.PerKey, l.KeyBurst, l.MaxEntries, 2), ips: newBuckets(l.PerIP, l.IPBurst, l.MaxEntries, 5), now: time.Now}
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

// Admit runs a dialect's authentication under the rate limits: refused
// at once when the source IP has failed too often, charged to the IP when
// auth fails, charged to the access key it names when it succeeds. Without
// Throttled (tests of one API) it only runs auth.
func Admit(r *http.Request, auth func() (keyID string, err error)) error {
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
	keyID, err := auth()
	if err != nil {
		if tc.t.ips != nil {
			tc.t.ips.take(ip, now)
		}
		return err
	}
	if tc.t.keys != nil {
		if ok, wait := tc.t.keys.take(keyID, now); !ok {
			return tc.refuse(wait, "too many requests with access key %s (limit %g per second)", keyID, float64(tc.t.keys.limit))
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

// Authenticated is Admit for an auth function returning a principal P, with
// keyOf naming its access key.
func Authenticated[P any](r *http.Request, auth func() (P, error), keyOf func(P) string) (P, error) {
	var p P
	err := Admit(r, func() (string, error) {
		var err error
		if p, err = auth(); err != nil {
			return "", err
		}
		return keyOf(p), nil
	})
	return p, err
}
