package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/store"
)

func testNonces(t *testing.T, s store.Store) {
	ctx := t.Context()
	use := func(scope, nonce string, ttl time.Duration, at time.Time, want bool) {
		t.Helper()
		fresh, err := s.UseNonce(ctx, scope, nonce, at.Add(ttl), at)
		mustOK(t, err, "UseNonce")
		if fresh != want {
			t.Fatalf("UseNonce(%s, %s) at +%s fresh = %v, want %v", scope, nonce, at.Sub(base), fresh, want)
		}
	}
	use("ak1", "n1", 10*time.Minute, base, true)
	use("ak1", "n1", 10*time.Minute, base.Add(time.Second), false) // replay
	use("ak2", "n1", 10*time.Minute, base, true)                   // scopes are independent
	// A replay just before expiry is refused, and does not extend the nonce.
	use("ak1", "n1", time.Hour, base.Add(10*time.Minute-time.Microsecond), false)
	// Expired: usable again, and used again from then on.
	use("ak1", "n1", 10*time.Minute, base.Add(10*time.Minute), true)
	use("ak1", "n1", 10*time.Minute, base.Add(11*time.Minute), false)
	use("ak1", "n2", time.Minute, base.Add(20*time.Minute), true)
	// At +20m: ak2/n1 (expired at +10m) goes; ak1/n1 (until +20m) goes;
	// ak1/n2 (until +21m) stays.
	n, err := s.ForgetNonces(ctx, base.Add(20*time.Minute))
	mustOK(t, err, "ForgetNonces")
	if n != 2 {
		t.Fatalf("ForgetNonces removed %d, want 2 (ak1/n1, ak2/n1)", n)
	}
	use("ak1", "n2", time.Minute, base.Add(20*time.Minute+time.Second), false)
	use("ak2", "n1", time.Minute, base.Add(20*time.Minute), true)
}

// Of concurrent uses of one nonce exactly one is fresh: first when it is
// new, then again once it has expired (the renewal races too).
func testNoncesConcurrent(t *testing.T, s store.Store) {
	const users, nonces = 8, 20
	for round, at := range []time.Time{base, base.Add(time.Minute)} {
		var fresh [nonces]atomic.Int32
		errs := make([]error, users)
		var wg sync.WaitGroup
		for u := range users {
			wg.Go(func() {
				for i := range nonces {
					ok, err := s.UseNonce(t.Context(), "ak", fmt.Sprintf("nonce-%d", i), at.Add(time.Minute), at)
					if err != nil {
						errs[u] = err
						return
					}
					if ok {
						fresh[i].Add(1)
					}
				}
			})
		}
		wg.Wait()
		for u := range users {
			mustOK(t, errs[u], fmt.Sprintf("UseNonce in user %d", u))
		}
		for i := range nonces {
			if got := fresh[i].Load(); got != 1 {
				t.Fatalf("round %d: nonce-%d was fresh for %d concurrent users, want exactly 1", round, i, got)
			}
		}
	}
}
