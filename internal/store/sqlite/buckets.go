package sqlite

import (
	"context"
	"time"
)

// ClaimBucket records tenantID as the owner of bucket unless it has one, and
// returns the owner. Both statements run in one write transaction on the
// single writer, so no other claim can come between them.
func (s *Store) ClaimBucket(ctx context.Context, tenantID, bucket string, now time.Time) (string, error) {
	// The insert alone carries the audit entry (exec): it is written only
	// when the bucket is new.
	if _, err := s.exec(ctx, `INSERT INTO buckets (name, tenant_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, bucket, tenantID, dbTime(now)); err != nil {
		return "", dbError(err, "claim bucket "+bucket)
	}
	var owner string
	if err := s.write.QueryRowContext(ctx, "SELECT tenant_id FROM buckets WHERE name = ?", bucket).Scan(&owner); err != nil {
		return "", dbError(err, "claim bucket "+bucket)
	}
	return owner, nil
}
