package service

// Request nonces. Owner: alibaba (signed-request replay guard).

import (
	"context"
	"time"
)

// UseNonce records a signed request's nonce for an access key and reports
// whether it was new; a nonce seen before means a replayed request. The
// memory is the store's, so it holds across restarts and replicas.
func (s *Service) UseNonce(ctx context.Context, keyID, nonce string) (bool, error) {
	return s.store.UseNonce(ctx, keyID, nonce, s.clock.Now().UTC())
}

// ForgetNonces drops nonces used longer than window ago: a request that old
// is refused by its timestamp, so its nonce need not be remembered.
func (s *Service) ForgetNonces(ctx context.Context, window time.Duration) (int64, error) {
	return s.store.ForgetNonces(ctx, s.clock.Now().UTC().Add(-window))
}
