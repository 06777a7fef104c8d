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
	use := func(scope, nonce string, at time.Time, want bool) {
		t.Helper()
		fresh, err := s.UseNonce(ctx, scope, nonce, at)
		mustOK(t, err, "UseNonce")
		if fresh != want {
			t.Fatalf("UseNonce(%s, %s) fresh = %v, want %v", scope, nonce, fresh, want)
		}
	}
	use("ak1", "n1", base, true)
	use("ak1", "n1", base.Add(time.Second), false) // replay
	use("ak2", "n1", base, true)                   // scopes are independent
	use("ak1", "n2", base.Add(20*time.Minute), true)
	n, err := s.ForgetNonces(ctx, base.Add(10*time.Minute))
	mustOK(t, err, "ForgetNonces")
	if n != 2 {
		t.Fatalf("ForgetNonces removed %d, want 2 (ak1/n1, ak2/n1)", n)
	}
	use("ak1", "n1", base.Add(30*time.Minute), true) // forgotten, usable again
	use("ak1", "n2", base.Add(30*time.Minute), false)
}

func testNoncesConcurrent(t *testing.T, s store.Store) {
	const users, nonces = 8, 20
	var fresh [nonces]atomic.Int32
	errs := make([]error, users)
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for i := range nonces {
				ok, err := s.UseNonce(t.Context(), "ak", fmt.Sprintf("nonce-%d", i), base)
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
			t.Fatalf("nonce-%d was fresh for %d concurrent users, want exactly 1", i, got)
		}
	}
}
