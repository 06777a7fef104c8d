package service

// Single-use values (request nonces, one-time proofs): one store mechanism
// (store.Nonces) for every dialect.

import (
	"context"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// nonceSweepEvery is how often a replica removes expired nonces (they are
// reusable either way; the sweep only keeps the table small).
const nonceSweepEvery = time.Minute

// UseNonce records a signed request's nonce for an access key for ttl (how
// long a request carrying it could still pass its timestamp check) and
// reports whether it was new; a nonce seen before means a replayed request.
// The memory is the store's, so it holds across restarts and replicas.
func (s *Service) UseNonce(ctx context.Context, keyID, nonce string, ttl time.Duration) (bool, error) {
	now := s.clock.Now().UTC()
	s.sweepNonces(ctx, now)
	return s.store.UseNonce(ctx, keyID, nonce, now.Add(ttl), now)
}

// ClaimProof records a one-time proof (scope names the dialect) for ttl;
// CodeConflict if it was used before (EnOS token "encryption").
func (s *Service) ClaimProof(ctx context.Context, scope, proof string, ttl time.Duration) error {
	now := s.clock.Now().UTC()
	s.sweepNonces(ctx, now)
	fresh, err := s.store.UseNonce(ctx, scope, proof, now.Add(ttl), now)
	if err != nil {
		return err
	}
	if !fresh {
		return &ota.Error{Code: ota.CodeConflict, Message: "this proof was already used: compute a new one with a new timestamp"}
	}
	return nil
}

// ForgetNonces removes the nonces that have expired.
func (s *Service) ForgetNonces(ctx context.Context) (int64, error) {
	return s.store.ForgetNonces(ctx, s.clock.Now().UTC())
}

// sweepNonces runs ForgetNonces at most once per nonceSweepEvery on this
// replica; a failure is logged, the request goes on.
func (s *Service) sweepNonces(ctx context.Context, now time.Time) {
	last := s.nonceSweep.Load()
	if now.UnixNano()-last < int64(nonceSweepEvery) || !s.nonceSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if _, err := s.store.ForgetNonces(ctx, now); err != nil {
		s.log.Warn("removing expired nonces failed", "err", err)
	}
}
