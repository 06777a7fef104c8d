package postgres

import (
	"context"
	"time"
)

// ClaimBucket records tenantID as the owner of bucket unless it has one, and
// returns the owner. The two statements run separately on purpose: an INSERT
// that meets a concurrent claim waits for it to commit and then does nothing,
// and only a new statement's snapshot (READ COMMITTED) sees the winner's row;
// a single statement (CTE) could find neither its own row nor the winner's.
func (s *Store) ClaimBucket(ctx context.Context, tenantID, bucket string, now time.Time) (string, error) {
	if _, err := s.exec(ctx, `INSERT INTO buckets (name, tenant_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO NOTHING`, bucket, tenantID, ts(now)); err != nil {
		return "", translate(err, "claim bucket "+bucket)
	}
	var owner string
	if err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM buckets WHERE name = $1`, bucket).Scan(&owner); err != nil {
		return "", translate(err, "claim bucket "+bucket)
	}
	return owner, nil
}
