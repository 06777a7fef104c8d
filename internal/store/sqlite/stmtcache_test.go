package sqlite

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestStatementCache: a statement run again is not compiled again, on the
// read pool and inside a write transaction alike.
func TestStatementCache(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "acme", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProduct(ctx, ota.Product{TenantID: "acme", Key: "pk", Name: "pk", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDevice(ctx, ota.Device{TenantID: "acme", ProductKey: "pk", Name: "d1", Secret: "s1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for range 5 { // every read connection compiles it once at most
		if _, err := s.GetDevice(ctx, "pk", "d1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetDeviceSeen(ctx, "pk", "d1", time.Unix(999, 0), time.Unix(999, 0)); err != nil {
		t.Fatal(err)
	}
	hits, compiled := s.stmts.hits.Load(), s.stmts.compiled.Load()
	for i := range 100 {
		if _, err := s.GetDevice(ctx, "pk", "d1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDeviceSeen(ctx, "pk", "d1", time.Unix(int64(1000+i), 0), time.Unix(int64(1000+i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.stmts.compiled.Load() - compiled; got != 0 {
		t.Fatalf("100 device reads and sightings compiled %d statements, want 0", got)
	}
	if got := s.stmts.hits.Load() - hits; got < 200 {
		t.Fatalf("%d cache hits for 100 reads and 100 sightings, want at least 200", got)
	}
	d, err := s.GetDevice(ctx, "pk", "d1")
	if err != nil || d.LastSeen.Unix() != 1099 {
		t.Fatalf("after the cached writes: last seen %v, %v; want Unix 1099", d.LastSeen, err)
	}
}

// TestStatementCacheSameTextTwice: a statement whose rows are still open
// is not handed out again; the second use of the same text gets a
// statement of its own, and both read correct rows.
func TestStatementCacheSameTextTwice(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE numbers (n INTEGER)"); err != nil {
			return err
		}
		for i := 1; i <= 3; i++ {
			if _, err := tx.ExecContext(ctx, "INSERT INTO numbers (n) VALUES (?)", i); err != nil {
				return err
			}
		}
		const q = "SELECT n FROM numbers WHERE n >= ? ORDER BY n"
		rows, err := tx.QueryContext(ctx, q, 1)
		if err != nil {
			return err
		}
		defer rows.Close()
		var outer, inner []int
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				return err
			}
			outer = append(outer, n)
			var first int
			if err := tx.QueryRowContext(ctx, q, n).Scan(&first); err != nil {
				return err
			}
			inner = append(inner, first)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if fmt.Sprint(outer) != "[1 2 3]" || fmt.Sprint(inner) != "[1 2 3]" {
			return fmt.Errorf("outer rows %v, inner rows %v; want [1 2 3] both", outer, inner)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatementCacheBounded: more distinct statements than the cache holds
// evict the least recently used, and every one still runs.
func TestStatementCacheBounded(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	for i := range maxCachedStatements + 50 {
		var n int
		if err := s.write.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d = %d, %v", i, n, err)
		}
	}
	c, err := s.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		cc := dc.(*cachingConn)
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if len(cc.stmts) > maxCachedStatements {
			return fmt.Errorf("the write connection caches %d statements, more than %d", len(cc.stmts), maxCachedStatements)
		}
		if _, ok := cc.stmts["SELECT 0"]; ok {
			return fmt.Errorf("the least recently used statement is still cached")
		}
		if _, ok := cc.stmts[fmt.Sprintf("SELECT %d", maxCachedStatements+49)]; !ok {
			return fmt.Errorf("the most recent statement is not cached")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
