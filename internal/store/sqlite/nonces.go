package sqlite

import (
	"context"
	"time"
)

// UseNonce inserts the nonce, or renews it if it has expired; the row count
// says which happened (0: a live nonce, a replay). Writes are serialized on
// the single writer, so of concurrent uses exactly one is fresh.
func (s *Store) UseNonce(ctx context.Context, scope, nonce string, expiresAt, now time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx, `INSERT INTO nonces (scope, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?`,
		scope, nonce, dbTime(expiresAt), dbTime(now))
	if err != nil {
		return false, dbError(err, "record nonce")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbError(err, "record nonce")
	}
	return n == 1, nil
}

// ForgetNonces deletes the nonces expired at now.
func (s *Store) ForgetNonces(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at <= ?`, dbTime(now))
	if err != nil {
		return 0, dbError(err, "forget nonces")
	}
	n, err := res.RowsAffected()
	return n, dbError(err, "forget nonces")
}
