package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/ota"
)

// LeaseReplicaSlot picks and leases a slot in one transaction that holds
// the table in a mode that conflicts with itself, so concurrent replicas
// pick one after the other (this runs once per replica start).
func (s *Store) LeaseReplicaSlot(ctx context.Context, owner, base string, max int, now, until time.Time) (int, string, error) {
	slot := -1
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE replica_slots IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT slot, expires_at <= $2, client_base FROM replica_slots WHERE slot < $1 ORDER BY slot`, max, ts(now))
		if err != nil {
			return err
		}
		used := map[int]bool{}
		vacant := -1
		var n int
		var expired bool
		var b string
		if _, err := pgx.ForEachRow(rows, []any{&n, &expired, &b}, func() error {
			used[n] = true
			if vacant < 0 && expired {
				vacant, base = n, b
			}
			return nil
		}); err != nil {
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
		_, err = tx.Exec(ctx, `INSERT INTO replica_slots (slot, owner, client_base, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slot) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`, slot, owner, base, ts(until))
		return err
	})
	return slot, base, translate(err, "lease replica slot")
}

// ClaimVacantReplicaSlot takes the lowest vacant row; SKIP LOCKED keeps two
// replicas from claiming the same one.
func (s *Store) ClaimVacantReplicaSlot(ctx context.Context, owner string, now, until time.Time) (int, string, error) {
	var slot int
	var base string
	err := s.pool.QueryRow(ctx, `UPDATE replica_slots SET owner = $1, expires_at = $2
		WHERE slot = (SELECT slot FROM replica_slots WHERE expires_at <= $3 ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
		  AND expires_at <= $3
		RETURNING slot, client_base`, owner, ts(until), ts(now)).Scan(&slot, &base)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1, "", nil
	}
	return slot, base, translate(err, "claim vacant replica slot")
}

func (s *Store) RenewReplicaSlot(ctx context.Context, slot int, owner string, until time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE replica_slots SET expires_at = $3 WHERE slot = $1 AND owner = $2`, slot, owner, ts(until))
	if err != nil {
		return translate(err, "renew replica slot")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return ota.Errorf(ota.CodeConflict, "replica slot %d is no longer leased to %s: its lease expired and another replica took it", slot, owner)
}

func (s *Store) ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error {
	q := `UPDATE replica_slots SET expires_at = 'epoch' WHERE slot = $1 AND owner = $2`
	if drop {
		q = `DELETE FROM replica_slots WHERE slot = $1 AND owner = $2`
	}
	_, err := s.pool.Exec(ctx, q, slot, owner)
	return translate(err, "release replica slot")
}
