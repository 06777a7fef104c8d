package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/updraft-ota/updraft/internal/store"
)

func testBucketClaim(t *testing.T, s store.Store) {
	ctx := t.Context()
	claim := func(tenant, bucket, want string) {
		t.Helper()
		owner, err := s.ClaimBucket(ctx, tenant, bucket, base)
		mustOK(t, err, fmt.Sprintf("ClaimBucket(%s, %s)", tenant, bucket))
		if owner != want {
			t.Fatalf("ClaimBucket(%s, %s) = owner %q, want %q", tenant, bucket, owner, want)
		}
	}
	claim("acme", "acme-fw", "acme")       // first claim wins
	claim("globex", "acme-fw", "acme")     // a second tenant gets the first owner back
	claim("acme", "acme-fw", "acme")       // the owner again is fine
	claim("globex", "globex-fw", "globex") // buckets are independent
	claim("acme", "globex-fw", "globex")
}

func testBucketClaimConcurrent(t *testing.T, s store.Store) {
	const claimers, buckets = 8, 20
	owners := make([][]string, claimers)
	errs := make([]error, claimers)
	var wg sync.WaitGroup
	for c := range claimers {
		owners[c] = make([]string, buckets)
		wg.Go(func() {
			for b := range buckets {
				owner, err := s.ClaimBucket(t.Context(), fmt.Sprintf("tenant%d", c), fmt.Sprintf("bucket-%02d", b), base)
				if err != nil {
					errs[c] = err
					return
				}
				owners[c][b] = owner
			}
		})
	}
	wg.Wait()
	for c := range claimers {
		mustOK(t, errs[c], fmt.Sprintf("ClaimBucket in claimer %d", c))
	}
	for b := range buckets {
		want := owners[0][b]
		if want == "" {
			t.Fatalf("bucket-%02d: claimer 0 got no owner", b)
		}
		for c := range claimers {
			if owners[c][b] != want {
				t.Fatalf("bucket-%02d: claimer %d sees owner %q, claimer 0 sees %q: claims must agree on one owner", b, c, owners[c][b], want)
			}
		}
		// The agreed owner is the one stored: a later claim returns it.
		owner, err := s.ClaimBucket(t.Context(), "latecomer", fmt.Sprintf("bucket-%02d", b), base)
		mustOK(t, err, "ClaimBucket after the race")
		if owner != want {
			t.Fatalf("bucket-%02d: a later claim returns owner %q, want the agreed %q", b, owner, want)
		}
	}
}
