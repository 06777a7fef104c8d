package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// LeaseReplicaSlot picks and leases a slot in one write transaction (SQLite
// has one writer at a time, so concurrent callers are serialized).
func (s *Store) LeaseReplicaSlot(ctx context.Context, owner, base string, max int, now, until time.Time) (int, string, error) {
	slot := -1
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT slot, expires_at, client_base FROM replica_slots WHERE slot < ? ORDER BY slot`, max)
		if err != nil {
			return err
		}
		used := map[int]bool{}
		vacant := -1
		for rows.Next() {
			var n int
			var exp int64
			var b string
			if err := rows.Scan(&n, &exp, &b); err != nil {
				rows.Close()
				return err
			}
			used[n] = true
			if vacant < 0 && exp <= now.UnixMicro() {
				vacant, base = n, b
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		slot = vacant
		for n := 0; slot < 0 && n < max; n++ {
			if !used[n] {
				slot = n
			}
		}
		if slot < 0 {
			return ota.Errorf(ota.CodeUnavailable, "all %d replica slots are leased by live replicas; raise max_replicas or stop a replica", max)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO replica_slots (slot, owner, client_base, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (slot) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`, slot, owner, base, until.UnixMicro())
		return err
	})
	return slot, base, dbError(err, "lease replica slot")
}

func (s *Store) ClaimVacantReplicaSlot(ctx context.Context, owner string, now, until time.Time) (int, string, error) {
	var slot int
	var base string
	err := s.write.QueryRowContext(ctx, `UPDATE replica_slots SET owner = ?, expires_at = ?
		WHERE slot = (SELECT slot FROM replica_slots WHERE expires_at <= ? ORDER BY slot LIMIT 1) RETURNING slot, client_base`,
		owner, until.UnixMicro(), now.UnixMicro()).Scan(&slot, &base)
	if err == sql.ErrNoRows {
		return -1, "", nil
	}
	return slot, base, dbError(err, "claim vacant replica slot")
}

func (s *Store) RenewReplicaSlot(ctx context.Context, slot int, owner string, until time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE replica_slots SET expires_at = ? WHERE slot = ? AND owner = ?`, until.UnixMicro(), slot, owner)
	if err != nil {
		return dbError(err, "renew replica slot")
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return dbError(err, "renew replica slot")
	}
	return ota.Errorf(ota.CodeConflict, "replica slot %d is no longer leased to %s: its lease expired and another replica took it", slot, owner)
}

func (s *Store) ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error {
	q := `UPDATE replica_slots SET expires_at = 0 WHERE slot = ? AND owner = ?`
	if drop {
		q = `DELETE FROM replica_slots WHERE slot = ? AND owner = ?`
	}
	_, err := s.write.ExecContext(ctx, q, slot, owner)
	return dbError(err, "release replica slot")
}
