package sqlite

import (
	"context"
	"database/sql"

	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// SealSecrets seals every secret still stored in clear in one write
// transaction (SQLite's single writer: nothing changes a row between the read
// and the update); rows already sealed are left alone, so a second run seals
// nothing more.
func (s *Store) SealSecrets(ctx context.Context) (int64, error) {
	if s.box == nil {
		return 0, nil
	}
	// secure_delete zeroes the clear values the updates replace, and the
	// checkpoint afterwards moves the pages out of the WAL, so neither the
	// database file nor its WAL keeps a readable old copy.
	if _, err := s.write.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return 0, dbError(err, "seal the secrets stored in clear")
	}
	defer s.write.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF")
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		type row struct{ a, b, secret string }
		collectRows := func(q string) ([]row, error) {
			rows, err := tx.QueryContext(ctx, q, secrets.Prefix+"%")
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.a, &r.b, &r.secret); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rows.Err()
		}
		devices, err := collectRows("SELECT product_key, name, secret FROM devices WHERE secret <> '' AND secret NOT LIKE ?")
		if err != nil {
			return err
		}
		for _, d := range devices {
			if _, err := tx.ExecContext(ctx, "UPDATE devices SET secret = ? WHERE product_key = ? AND name = ?",
				s.box.Seal(secrets.DeviceID(d.a, d.b), d.secret), d.a, d.b); err != nil {
				return err
			}
		}
		keys, err := collectRows("SELECT id, '', secret FROM access_keys WHERE secret <> '' AND secret NOT LIKE ?")
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "UPDATE access_keys SET secret = ? WHERE id = ?", s.box.Seal(secrets.KeyID(k.a), k.secret), k.a); err != nil {
				return err
			}
		}
		n = int64(len(devices) + len(keys))
		return nil
	})
	if err == nil && n > 0 {
		_, err = s.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return n, dbError(err, "seal the secrets stored in clear")
}
