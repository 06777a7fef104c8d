package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
)

// TestGroupCommit: writes that arrive together share transactions; each
// write's error rolls back that write only, a write whose context has
// ended does nothing, and every other write commits.
func TestGroupCommit(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "CREATE TABLE grouped (n INTEGER PRIMARY KEY)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	commits0, writes0 := s.group.commits.Load(), s.group.writes.Load()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	refused := errors.New("refused")
	const n = 600
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ctx
			if i%10 == 3 {
				c = canceled
			}
			errs[i] = s.inTx(c, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(c, "INSERT INTO grouped (n) VALUES (?)", i); err != nil {
					return err
				}
				if i%10 == 7 {
					return refused // after its insert: the savepoint must undo it
				}
				return nil
			})
		}()
	}
	wg.Wait()
	want := 0
	for i, err := range errs {
		switch {
		case i%10 == 3:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("write %d with an ended context: %v, want context.Canceled", i, err)
			}
		case i%10 == 7:
			if !errors.Is(err, refused) {
				t.Fatalf("write %d: %v, want its own error", i, err)
			}
		default:
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			want++
		}
	}
	var got int
	var bad sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*), max(CASE WHEN n % 10 IN (3, 7) THEN n END) FROM grouped").Scan(&got, &bad); err != nil {
		t.Fatal(err)
	}
	if got != want || bad.Valid {
		t.Fatalf("%d rows committed (want %d); a refused or canceled write's row: %v", got, want, bad)
	}
	commits, writes := s.group.commits.Load()-commits0, s.group.writes.Load()-writes0
	if writes != n-n/10 && writes != n {
		t.Fatalf("%d writes went through the writer, want %d or %d", writes, n-n/10, n)
	}
	t.Logf("%d writes in %d transactions", writes, commits)
	if commits >= writes {
		t.Fatalf("%d concurrent writes took %d transactions: none were grouped", writes, commits)
	}
}

// TestGroupCommitClosed: a write after Close fails instead of waiting.
func TestGroupCommitClosed(t *testing.T) {
	s := openTest(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.inTx(t.Context(), func(*sql.Tx) error { return nil })
	if err == nil {
		t.Fatal("a write after Close succeeded")
	}
}
