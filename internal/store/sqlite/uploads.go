package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/updraft-ota/updraft/internal/store"
)

// RecordUpload implements store.Uploads.
func (s *Store) RecordUpload(ctx context.Context, u store.Upload) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO uploads (bucket, object_key, tenant_id, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (bucket, object_key) DO UPDATE SET tenant_id = excluded.tenant_id, expires_at = excluded.expires_at`,
		u.Bucket, u.Key, u.TenantID, dbTime(u.ExpiresAt))
	return dbError(err, "record upload "+u.Key)
}

// TakeExpiredUploads implements store.Uploads: claimed records are dropped,
// unclaimed ones returned, in one write transaction.
func (s *Store) TakeExpiredUploads(ctx context.Context, now time.Time, limit int) ([]store.Upload, error) {
	var out []store.Upload
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE expires_at < ?
			AND EXISTS (SELECT 1 FROM packages p WHERE p.bucket = uploads.bucket AND p.object_key = uploads.object_key)`, dbTime(now)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `DELETE FROM uploads WHERE rowid IN (SELECT rowid FROM uploads WHERE expires_at < ? ORDER BY expires_at LIMIT ?)
			RETURNING bucket, object_key, tenant_id, expires_at`, dbTime(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u store.Upload
			var exp sql.NullInt64
			if err := rows.Scan(&u.Bucket, &u.Key, &u.TenantID, &exp); err != nil {
				return err
			}
			u.ExpiresAt = goTime(exp)
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, dbError(err, "take expired uploads")
}
