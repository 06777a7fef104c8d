package service

import (
	"context"
	"time"
)

// Replica slots: the stable identities that server replicas lease for their
// consumer sessions on an external MQTT broker (store.ReplicaSlots). Leases
// run on the service's clock.

// LeaseReplicaSlot leases owner a slot below max for ttl, with its sessions'
// client id base (store.ReplicaSlots).
func (s *Service) LeaseReplicaSlot(ctx context.Context, owner, base string, max int, ttl time.Duration) (int, string, error) {
	now := s.clock.Now()
	return s.store.LeaseReplicaSlot(ctx, owner, base, max, now, now.Add(ttl))
}

// ClaimVacantReplicaSlot leases owner a vacant slot to drain for ttl; -1
// when none is vacant.
func (s *Service) ClaimVacantReplicaSlot(ctx context.Context, owner string, ttl time.Duration) (int, string, error) {
	now := s.clock.Now()
	return s.store.ClaimVacantReplicaSlot(ctx, owner, now, now.Add(ttl))
}

// RenewReplicaSlot extends owner's lease on slot by ttl from now.
func (s *Service) RenewReplicaSlot(ctx context.Context, slot int, owner string, ttl time.Duration) error {
	return s.store.RenewReplicaSlot(ctx, slot, owner, s.clock.Now().Add(ttl))
}

// ReleaseReplicaSlot ends owner's lease on slot; drop when its sessions are
// gone.
func (s *Service) ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error {
	return s.store.ReleaseReplicaSlot(ctx, slot, owner, drop)
}
