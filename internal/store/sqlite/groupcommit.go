package sqlite

// Group commit: the writes that queue up while one transaction runs are
// committed together.
//
// SQLite has one writer at a time, and a commit writes every page the
// transaction changed to the WAL (the task's row, each index it is in),
// one frame per page. A fleet's progress and version reports are small
// writes to the same few index pages, so once they arrive faster than one
// writer commits them, most of each commit's time was writing the same
// pages again. The store's writes (inTx and exec) go to one goroutine that
// takes every write waiting and runs them in one transaction, each under a
// savepoint of its own: a write that fails is rolled back to its savepoint
// and reports its error, and the others still commit. A write that finds
// nothing queued runs alone, exactly as before, so an idle store adds no
// latency.
//
// A write whose context ends while it runs is interrupted, and SQLite may
// then roll back the whole transaction (an interrupted statement inside an
// explicit transaction can end it). The writer notices when the savepoint
// is gone, reports an error to every write of the batch whose work was
// lost, and runs the ones not yet started in a new transaction.

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"
)

// maxGroupedWrites bounds one group commit, so that the last write of a
// burst waits for at most this many others.
const maxGroupedWrites = 256

// groupLinger is how long the writer waits for a batch to fill to the size
// of the previous one. Writes from concurrent callers (a fleet's reports)
// seldom queue while one commit runs, since each caller reads before it
// writes, so without a wait most commit alone; and a commit costs far more
// than a write added to one (each page changed goes to the WAL once per
// commit, with a lock round and two syscalls per page). Waiting for the
// previous batch's size keeps a steady stream grouped, lets a fixed set of
// callers writing in a loop go as soon as all of them are in, and turns
// itself off: a commit of one write (an idle store, one caller) asks for no
// wait, and a batch that did not fill in time asks for less next time.
const groupLinger = 2 * time.Millisecond

type writeRequest struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

// groupStats count transactions and the writes they carried.
type groupStats struct {
	commits, writes atomic.Int64
}

// errWriteLost is what a write of a batch hears when another write's
// interruption rolled the batch back after this one had succeeded.
var errWriteLost = errors.New("the transaction this write was grouped with was rolled back (another write of it was interrupted): send it again")

// write runs fn in a write transaction, grouped with the writes that
// queued meanwhile, and returns fn's error or the commit's.
func (s *Store) grouped(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeRequest{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.stopWriter:
		return errors.New("the store is closed")
	}
	return <-req.done
}

// writer is the goroutine that owns group commits until Close.
func (s *Store) writer() {
	defer close(s.writerDone)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	previous := 1 // writes in the previous commit
	for {
		var first *writeRequest
		select {
		case first = <-s.writes:
		case <-s.stopWriter:
			return
		}
		batch := []*writeRequest{first}
	gather:
		for len(batch) < maxGroupedWrites {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		if len(batch) < previous {
			linger.Reset(groupLinger)
		wait:
			for len(batch) < previous {
				select {
				case r := <-s.writes:
					batch = append(batch, r)
				case <-linger.C:
					break wait
				case <-s.stopWriter:
					break wait
				}
			}
			linger.Stop()
		}
		previous = len(batch)
		for len(batch) > 0 {
			batch = s.commitGroup(batch)
		}
	}
}

// commitGroup runs the batch in one transaction and answers every request
// it settled. It returns the requests not yet run when the transaction was
// lost midway (they go into the next one).
func (s *Store) commitGroup(batch []*writeRequest) []*writeRequest {
	if len(batch) == 1 {
		r := batch[0]
		r.done <- s.runAlone(r)
		s.group.commits.Add(1)
		s.group.writes.Add(1)
		return nil
	}
	tx, err := s.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return nil
	}
	results := make([]error, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := tx.Exec("SAVEPOINT grouped_write"); err != nil {
			if i == 0 { // nothing settled yet: this one fails, so the loop ends
				results[0] = err
				i = 1
			}
			return s.abandon(tx, batch, results, i, err)
		}
		err := r.fn(tx)
		if err != nil {
			if _, rbErr := tx.Exec("ROLLBACK TO grouped_write"); rbErr != nil {
				// The transaction itself is gone: this write failed, the
				// ones before it are lost.
				results[i] = err
				return s.abandon(tx, batch, results, i+1, rbErr)
			}
		}
		if _, relErr := tx.Exec("RELEASE grouped_write"); relErr != nil {
			if err == nil {
				err = relErr
			}
			results[i] = err
			return s.abandon(tx, batch, results, i+1, relErr)
		}
		results[i] = err
	}
	commitErr := tx.Commit()
	s.group.commits.Add(1)
	s.group.writes.Add(int64(len(batch)))
	for i, r := range batch {
		if results[i] == nil {
			results[i] = commitErr
		}
		r.done <- results[i]
	}
	return nil
}

// abandon rolls tx back after it was lost at batch[next-1]: writes that
// had succeeded hear errWriteLost, writes that failed keep their error,
// and the ones from next on are returned to be run again.
func (s *Store) abandon(tx *sql.Tx, batch []*writeRequest, results []error, next int, cause error) []*writeRequest {
	_ = tx.Rollback()
	for i := 0; i < next; i++ {
		err := results[i]
		if err == nil {
			err = errors.Join(errWriteLost, cause)
		}
		batch[i].done <- err
	}
	return batch[next:]
}

// runAlone is one write in a transaction of its own.
func (s *Store) runAlone(r *writeRequest) error {
	tx, err := s.write.BeginTx(r.ctx, nil)
	if err != nil {
		return err
	}
	if err := r.fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
