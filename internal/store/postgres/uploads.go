package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/store"
)

// RecordUpload implements store.Uploads.
func (s *Store) RecordUpload(ctx context.Context, u store.Upload) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO uploads (bucket, object_key, tenant_id, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (bucket, object_key) DO UPDATE SET tenant_id = excluded.tenant_id, expires_at = excluded.expires_at`,
		u.Bucket, u.Key, u.TenantID, ts(u.ExpiresAt))
	return translate(err, "record upload "+u.Key)
}

// TakeExpiredUploads implements store.Uploads: claimed records are dropped,
// unclaimed ones returned; SKIP LOCKED hands each to one replica.
func (s *Store) TakeExpiredUploads(ctx context.Context, now time.Time, limit int) ([]store.Upload, error) {
	var out []store.Upload
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM uploads u WHERE expires_at < $1
			AND EXISTS (SELECT 1 FROM packages p WHERE p.bucket = u.bucket AND p.key = u.object_key)`, ts(now)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM uploads WHERE (bucket, object_key) IN (
				SELECT bucket, object_key FROM uploads WHERE expires_at < $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING bucket, object_key, tenant_id, expires_at`, ts(now), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Upload, error) {
			var u store.Upload
			var exp pgtype.Timestamptz
			err := row.Scan(&u.Bucket, &u.Key, &u.TenantID, &exp)
			u.ExpiresAt = exp.Time.UTC()
			return u, err
		})
		return err
	})
	return out, translate(err, "take expired uploads")
}
