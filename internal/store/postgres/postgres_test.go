package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/storetest"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// TestPostgres runs the contract suite; every subtest gets a fresh schema.
// The store seals secrets, as a server opens it, so the suite's round trips
// cover the sealing too.
func TestPostgres(t *testing.T) {
	box, err := secrets.New(storetest.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), TestSchemaDSN(t, testenv.PostgresDSN(t)), store.Options{Secrets: box})
		if err != nil {
			t.Fatalf("open PostgreSQL store: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return s
	})
}

// TestPostgresSecrets: secrets at rest, with every secret column read raw.
func TestPostgresSecrets(t *testing.T) {
	var dsn string
	var last *Store
	open := func(t *testing.T, box *secrets.Box) store.Store {
		s, err := Open(context.Background(), dsn, store.Options{Secrets: box})
		if err != nil {
			t.Fatalf("open PostgreSQL store: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		last = s
		return s
	}
	storetest.RunSecrets(t, storetest.SecretsHarness{
		Open: func(t *testing.T, box *secrets.Box) store.Store {
			dsn = TestSchemaDSN(t, testenv.PostgresDSN(t))
			return open(t, box)
		},
		Reopen: open,
		Raw: func(t *testing.T) string {
			var b strings.Builder
			for _, q := range []string{"SELECT secret FROM devices", "SELECT secret FROM access_keys"} {
				rows, err := last.pool.Query(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var v string
					if err := rows.Scan(&v); err != nil {
						t.Fatal(err)
					}
					b.WriteString(v + "\n")
				}
				rows.Close()
			}
			return b.String()
		},
	})
}
