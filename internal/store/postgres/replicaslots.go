package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Replica slots on PostgreSQL are held twice: by the lease row (as on
// every backend) and by a session-level advisory lock that the owner's
// process takes on one dedicated connection. A process killed with -9
// closes that connection and PostgreSQL releases its locks at once, so a
// slot whose lease is still live but whose lock is free has a dead owner
// and is vacant now, not when its lease ends: a replica restarted after a
// kill -9 resumes its predecessor's sessions within a second instead of
// after the 30 s lease. A live owner's lock is never free, so its slot is
// never taken early. The lease stays the rule for an owner that is alive
// but cannot reach the store (it stops consuming before its lease ends).

// slotLocks are this process's advisory locks on replica slots.
// Session-level advisory locks are re-entrant within one session, so the
// process itself keeps which of its owners holds which slot: a slot held
// here by another owner (tests run several replicas in one process) is
// live, whatever pg_try_advisory_lock would say.
type slotLocks struct {
	mu   sync.Mutex
	conn *pgx.Conn      // dedicated (taken out of the pool); nil until needed, or after it broke
	held map[int]string // slot → the owner in this process whose lock it is
}

// slotLockKey names slot locks by schema: advisory locks are per database,
// and several schemas (tests, tenants of one cluster) share a database.
const slotLockKey = `hashtext(current_schema() || '/replica_slots')`

// connLocked returns the dedicated connection, opening it if needed; a
// broken one is replaced, and the locks it held are forgotten (PostgreSQL
// released them with it; the owners take them again when they renew).
// l.mu is held.
func (s *Store) slotConnLocked(ctx context.Context) (*pgx.Conn, error) {
	l := &s.slots
	if l.conn != nil && !l.conn.IsClosed() {
		return l.conn, nil
	}
	l.conn, l.held = nil, nil
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = c.Hijack()
	return l.conn, nil
}

// tryLockLocked takes slot's lock for owner if no session holds it.
// l.mu is held.
func (s *Store) tryLockLocked(ctx context.Context, slot int, owner string) (bool, error) {
	l := &s.slots
	if o, ok := l.held[slot]; ok {
		return o == owner, nil
	}
	c, err := s.slotConnLocked(ctx)
	if err != nil {
		return false, err
	}
	var got bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+slotLockKey+`, $1)`, slot).Scan(&got); err != nil {
		return false, err
	}
	if got {
		if l.held == nil {
			l.held = map[int]string{}
		}
		l.held[slot] = owner
	}
	return got, nil
}

// unlockLocked gives up owner's lock on slot, if this process holds it for
// owner. l.mu is held.
func (s *Store) unlockLocked(ctx context.Context, slot int, owner string) {
	l := &s.slots
	if o, ok := l.held[slot]; !ok || o != owner {
		return
	}
	delete(l.held, slot)
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(`+slotLockKey+`, $1)`, slot); err != nil {
		// The lock cannot be left behind with a live process: drop the
		// session (and every lock in it; the owners take theirs again
		// when they renew).
		l.conn.Close(context.Background())
		l.conn, l.held = nil, nil
	}
}

func (l *slotLocks) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn, l.held = nil, nil
	}
}

// LeaseReplicaSlot picks and leases a slot in one transaction that holds
// the table in a mode that conflicts with itself, so concurrent replicas
// pick one after the other (this runs once per replica start). Vacant: the
// lease expired, or its owner's lock is free (the owner died).
func (s *Store) LeaseReplicaSlot(ctx context.Context, owner, base string, max int, now, until time.Time) (int, string, error) {
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	had := map[int]bool{} // owner's locks before (a slot it drains)
	for n, o := range s.slots.held {
		if o == owner {
			had[n] = true
		}
	}
	slot := -1
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE replica_slots IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT slot, expires_at <= $2, client_base FROM replica_slots WHERE slot < $1 ORDER BY slot`, max, ts(now))
		if err != nil {
			return err
		}
		type row struct {
			slot    int
			expired bool
			base    string
		}
		rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.slot, &x.expired, &x.base)
		})
		if err != nil {
			return err
		}
		used := map[int]bool{}
		for _, r := range rs {
			used[r.slot] = true
		}
		for _, r := range rs {
			if !r.expired {
				// A live lease: vacant only if its owner's lock is free.
				free, err := s.tryLockLocked(ctx, r.slot, owner)
				if err != nil {
					return err
				}
				if !free {
					continue
				}
			}
			slot, base = r.slot, r.base
			break
		}
		for n := 0; slot < 0 && n < max; n++ {
			if !used[n] {
				slot = n
			}
		}
		if slot < 0 {
			return ota.Errorf(ota.CodeUnavailable, "all %d replica slots are leased by live replicas; raise max_replicas or stop a replica", max)
		}
		// An expired or new slot: its lock is normally free. If a process
		// that lost the lease still holds it, this owner takes it at a
		// renewal once that process lets go.
		if _, err := s.tryLockLocked(ctx, slot, owner); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO replica_slots (slot, owner, client_base, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (slot) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`, slot, owner, base, ts(until))
		return err
	})
	// Locks taken for slots not leased in the end (a failed transaction, or
	// a live row passed over) go back.
	for n, o := range s.slots.held {
		if o == owner && !had[n] && (err != nil || n != slot) {
			s.unlockLocked(ctx, n, owner)
		}
	}
	if err != nil {
		return -1, "", translate(err, "lease replica slot")
	}
	return slot, base, nil
}

// ClaimVacantReplicaSlot takes the lowest vacant row (its lease expired, or
// its owner's lock is free); SKIP LOCKED and the owner condition keep two
// replicas from claiming the same one.
func (s *Store) ClaimVacantReplicaSlot(ctx context.Context, owner string, now, until time.Time) (int, string, error) {
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	rows, err := s.pool.Query(ctx, `SELECT slot, owner, expires_at <= $1 FROM replica_slots ORDER BY slot`, ts(now))
	if err != nil {
		return -1, "", translate(err, "claim vacant replica slot")
	}
	type row struct {
		slot    int
		owner   string
		expired bool
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.slot, &x.owner, &x.expired)
	})
	if err != nil {
		return -1, "", translate(err, "claim vacant replica slot")
	}
	for _, r := range rs {
		if _, mine := s.slots.held[r.slot]; mine && !r.expired {
			continue // a live owner in this process
		}
		locked, err := s.tryLockLocked(ctx, r.slot, owner)
		if err != nil {
			return -1, "", translate(err, "claim vacant replica slot")
		}
		if !r.expired && !locked {
			continue // a live owner elsewhere
		}
		var base string
		err = s.pool.QueryRow(ctx, `UPDATE replica_slots SET owner = $1, expires_at = $2
			WHERE slot = $3 AND owner = $4 AND (expires_at <= $5 OR $6)
			RETURNING client_base`, owner, ts(until), r.slot, r.owner, ts(now), locked).Scan(&base)
		if errors.Is(err, pgx.ErrNoRows) {
			s.unlockLocked(ctx, r.slot, owner) // taken meanwhile
			continue
		}
		if err != nil {
			s.unlockLocked(ctx, r.slot, owner)
			return -1, "", translate(err, "claim vacant replica slot")
		}
		return r.slot, base, nil
	}
	return -1, "", nil
}

// RenewReplicaSlot extends the lease and takes the slot's lock again if
// this process does not hold it (its dedicated connection broke, or the
// previous owner's process held it when the slot was leased).
func (s *Store) RenewReplicaSlot(ctx context.Context, slot int, owner string, until time.Time) error {
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	tag, err := s.pool.Exec(ctx, `UPDATE replica_slots SET expires_at = $3 WHERE slot = $1 AND owner = $2`, slot, owner, ts(until))
	if err != nil {
		return translate(err, "renew replica slot")
	}
	if tag.RowsAffected() == 1 {
		if _, err := s.tryLockLocked(ctx, slot, owner); err != nil {
			return translate(err, "lock replica slot")
		}
		return nil
	}
	s.unlockLocked(ctx, slot, owner)
	return ota.Errorf(ota.CodeConflict, "replica slot %d is no longer leased to %s: its lease expired and another replica took it", slot, owner)
}

func (s *Store) ReleaseReplicaSlot(ctx context.Context, slot int, owner string, drop bool) error {
	s.slots.mu.Lock()
	defer s.slots.mu.Unlock()
	q := `UPDATE replica_slots SET expires_at = 'epoch' WHERE slot = $1 AND owner = $2`
	if drop {
		q = `DELETE FROM replica_slots WHERE slot = $1 AND owner = $2`
	}
	_, err := s.pool.Exec(ctx, q, slot, owner)
	s.unlockLocked(ctx, slot, owner)
	return translate(err, "release replica slot")
}
