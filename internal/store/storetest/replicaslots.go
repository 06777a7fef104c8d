package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func testReplicaSlots(t *testing.T, s store.Store) {
	ctx := t.Context()
	ttl := 30 * time.Second
	// Each replica names its sessions with its own base ("{owner}" here)
	// unless it resumes a slot, whose base stays.
	bases := map[int]string{}
	lease := func(owner string, max int, now time.Time) int {
		t.Helper()
		n, b, err := s.LeaseReplicaSlot(ctx, owner, "base-"+owner, max, now, now.Add(ttl))
		mustOK(t, err, "LeaseReplicaSlot "+owner)
		if want, ok := bases[n]; ok && b != want {
			t.Fatalf("resumed slot %d with base %q, want its own %q", n, b, want)
		} else if !ok && b != "base-"+owner {
			t.Fatalf("new slot %d has base %q, want %q", n, b, "base-"+owner)
		}
		bases[n] = b
		return n
	}
	// Two replicas (different hosts, different ids) get distinct slots, the
	// lowest first.
	if a, b := lease("host-a/1", 2, base), lease("host-b/7", 2, base); a != 0 || b != 1 {
		t.Fatalf("slots %d, %d; want 0, 1", a, b)
	}
	// Max 2, both live: a third is refused, with what to do.
	_, _, err := s.LeaseReplicaSlot(ctx, "host-c/3", "c", 2, base, base.Add(ttl))
	wantCode(t, err, ota.CodeUnavailable, "third replica")
	// Renewal by the holder only.
	mustOK(t, s.RenewReplicaSlot(ctx, 0, "host-a/1", base.Add(ttl+10*time.Second)), "renew")
	wantCode(t, s.RenewReplicaSlot(ctx, 1, "host-a/1", base.Add(ttl)), ota.CodeConflict, "renew another's slot")
	n, _, err := s.ClaimVacantReplicaSlot(ctx, "drainer", base, base.Add(ttl))
	mustOK(t, err, "ClaimVacantReplicaSlot")
	if n != -1 {
		t.Fatalf("claimed live slot %d", n)
	}

	// host-b is killed: no renewal. Just inside its lease its slot stays
	// held; just after, a replica starting under a new name resumes it.
	_, _, err = s.LeaseReplicaSlot(ctx, "host-b-renamed/1", "x", 2, base.Add(ttl-time.Microsecond), base.Add(2*ttl))
	wantCode(t, err, ota.CodeUnavailable, "slot leased until its expiry")
	later := base.Add(ttl)
	if got := lease("host-b-renamed/1", 2, later); got != 1 {
		t.Fatalf("restarted replica got slot %d, want the dead one's 1", got)
	}
	wantCode(t, s.RenewReplicaSlot(ctx, 1, "host-b/7", later.Add(ttl)), ota.CodeConflict, "the dead owner renews")

	// A clean stop keeps the row vacant (sessions persist): the next
	// replica, even with a higher max, resumes it before a new number.
	mustOK(t, s.ReleaseReplicaSlot(ctx, 1, "host-b-renamed/1", false), "release")
	mustOK(t, s.ReleaseReplicaSlot(ctx, 0, "not-the-owner", true), "release by a non-owner")
	if got := lease("host-d/1", 5, later); got != 1 {
		t.Fatalf("got slot %d, want vacant 1", got)
	}
	if got := lease("host-e/1", 5, later); got != 2 {
		t.Fatalf("got slot %d, want new 2", got)
	}

	// A vacant slot above the current max is for a drainer; once drained
	// and dropped, the number is free again.
	mustOK(t, s.ReleaseReplicaSlot(ctx, 2, "host-e/1", false), "release 2")
	if got := lease("host-f/1", 2, later.Add(ttl+ttl)); got != 0 { // slot 0's lease expired too
		t.Fatalf("got slot %d, want expired 0", got)
	}
	n, b, err := s.ClaimVacantReplicaSlot(ctx, "drainer", later, later.Add(ttl))
	mustOK(t, err, "ClaimVacantReplicaSlot")
	if n != 2 || b != bases[2] {
		t.Fatalf("drainer claimed %d (base %q), want vacant 2 (%q)", n, b, bases[2])
	}
	if n, _, _ := s.ClaimVacantReplicaSlot(ctx, "drainer2", later, later.Add(ttl)); n != -1 {
		t.Fatalf("second drainer claimed %d", n)
	}
	mustOK(t, s.ReleaseReplicaSlot(ctx, 2, "drainer", true), "drop drained slot")
	delete(bases, 2)
	if got := lease("host-g/1", 5, later); got != 2 {
		t.Fatalf("got slot %d, want dropped 2 (lowest without a row)", got)
	}
}

// Replicas starting together never share a slot.
func testReplicaSlotsConcurrent(t *testing.T, s store.Store) {
	const replicas = 8
	slots := make([]int, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			slots[i], _, errs[i] = s.LeaseReplicaSlot(t.Context(), fmt.Sprintf("replica-%d", i), "b", replicas, base, base.Add(time.Minute))
		})
	}
	wg.Wait()
	for i := range replicas {
		mustOK(t, errs[i], fmt.Sprintf("lease %d", i))
	}
	slices.Sort(slots)
	for i, n := range slots {
		if n != i {
			t.Fatalf("slots %v, want 0…%d once each", slots, replicas-1)
		}
	}
}
