package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/testenv"
)

// OpenTestStore opens a migrated store in a fresh schema of the test
// PostgreSQL server (testenv.PostgresDSN) and drops the schema when the test
// ends, so tests never see each other's rows and may run in parallel. It
// skips the test when PostgreSQL is not reachable, and fails it under CI=true.
func OpenTestStore(tb testing.TB) *Store {
	tb.Helper()
	dsn := testenv.PostgresDSN(tb)
	s, err := Open(context.Background(), TestSchemaDSN(tb, dsn))
	if err != nil {
		tb.Fatalf("open PostgreSQL store: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate PostgreSQL store: %v", err)
	}
	return s
}

// TestSchemaDSN creates a schema upd_<random> in the database dsn names,
// registers its removal with tb.Cleanup, and returns dsn with search_path set
// to it. Open the returned DSN as many times as a test needs replicas.
func TestSchemaDSN(tb testing.TB, dsn string) string {
	tb.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "upd_" + hex.EncodeToString(b[:])

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to the test PostgreSQL %s: %v", dsn, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	// Registered before the caller can register the store's Close, and
	// cleanups run last-in first-out: the store is closed when this runs.
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(dsn, schema)
}

// withSearchPath adds search_path to a URL or key=value connection string.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
