package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// ClaimBucket records tenantID as the owner of bucket unless it has one, and
// returns the owner. Both statements run in one write transaction on the
// single writer, so no other claim can come between them.
func (s *Store) ClaimBucket(ctx context.Context, tenantID, bucket string, now time.Time) (string, error) {
	var owner string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO buckets (name, tenant_id, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, bucket, tenantID, dbTime(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT tenant_id FROM buckets WHERE name = ?", bucket).Scan(&owner)
	})
	if err != nil {
		return "", dbError(err, "claim bucket "+bucket)
	}
	return owner, nil
}
