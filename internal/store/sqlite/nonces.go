package sqlite

import (
	"context"
	"time"
)

// UseNonce inserts the nonce unless it is there; the insert's row count says
// whether it was new.
func (s *Store) UseNonce(ctx context.Context, scope, nonce string, now time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx, `INSERT INTO request_nonces (scope, nonce, used_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, nonce) DO NOTHING`, scope, nonce, dbTime(now))
	if err != nil {
		return false, dbError(err, "record nonce")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, dbError(err, "record nonce")
	}
	return n == 1, nil
}

// ForgetNonces deletes nonces used before before.
func (s *Store) ForgetNonces(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM request_nonces WHERE used_at < ?`, dbTime(before))
	if err != nil {
		return 0, dbError(err, "forget nonces")
	}
	n, err := res.RowsAffected()
	return n, dbError(err, "forget nonces")
}
