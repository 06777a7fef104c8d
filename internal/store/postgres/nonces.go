package postgres

import (
	"context"
	"time"
)

// UseNonce inserts the nonce, or renews it if it has expired; the row count
// says which happened (0: a live nonce, a replay). ON CONFLICT … DO UPDATE
// locks the row, so of concurrent uses on any replicas exactly one is fresh.
func (s *Store) UseNonce(ctx context.Context, scope, nonce string, expiresAt, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO nonces (scope, nonce, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE nonces.expires_at <= $4`,
		scope, nonce, ts(expiresAt), ts(now))
	if err != nil {
		return false, translate(err, "record nonce")
	}
	return tag.RowsAffected() == 1, nil
}

// ForgetNonces deletes the nonces expired at now.
func (s *Store) ForgetNonces(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM nonces WHERE expires_at <= $1`, ts(now))
	if err != nil {
		return 0, translate(err, "forget nonces")
	}
	return tag.RowsAffected(), nil
}
