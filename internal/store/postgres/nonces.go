package postgres

import (
	"context"
	"time"
)

// UseNonce inserts the nonce unless it is there; the primary key makes
// concurrent inserts of one nonce agree on a single winner.
func (s *Store) UseNonce(ctx context.Context, scope, nonce string, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO request_nonces (scope, nonce, used_at) VALUES ($1, $2, $3)
		ON CONFLICT (scope, nonce) DO NOTHING`, scope, nonce, ts(now))
	if err != nil {
		return false, translate(err, "record nonce")
	}
	return tag.RowsAffected() == 1, nil
}

// ForgetNonces deletes nonces used before before.
func (s *Store) ForgetNonces(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM request_nonces WHERE used_at < $1`, ts(before))
	if err != nil {
		return 0, translate(err, "forget nonces")
	}
	return tag.RowsAffected(), nil
}
