package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// SealSecrets seals every secret still stored in clear. Each row is
// rewritten only if it still holds the clear value read (a replica sealing at
// the same time, or a changed secret, wins), so running it again or on
// several replicas at once seals nothing twice.
func (s *Store) SealSecrets(ctx context.Context) (int64, error) {
	if s.box == nil {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		type row struct{ a, b, secret string }
		read := func(q string) ([]row, error) {
			rows, err := tx.Query(ctx, q, secrets.Prefix+"%")
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var v row
				err := r.Scan(&v.a, &v.b, &v.secret)
				return v, err
			})
		}
		devices, err := read("SELECT product_key, name, secret FROM devices WHERE secret <> '' AND secret NOT LIKE $1")
		if err != nil {
			return err
		}
		for _, d := range devices {
			tag, err := tx.Exec(ctx, "UPDATE devices SET secret = $1 WHERE product_key = $2 AND name = $3 AND secret = $4",
				s.box.Seal(secrets.DeviceID(d.a, d.b), d.secret), d.a, d.b, d.secret)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		keys, err := read("SELECT id, '', secret FROM access_keys WHERE secret <> '' AND secret NOT LIKE $1")
		if err != nil {
			return err
		}
		for _, k := range keys {
			tag, err := tx.Exec(ctx, "UPDATE access_keys SET secret = $1 WHERE id = $2 AND secret = $3",
				s.box.Seal(secrets.KeyID(k.a), k.secret), k.a, k.secret)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	return n, translate(err, "seal the secrets stored in clear")
}
