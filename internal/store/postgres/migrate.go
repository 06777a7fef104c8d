package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/ota"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded files NNNN_name.sql in version order; versions
// are 1, 2, 3… without gaps (checked, so a misnamed file fails every test).
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic(fmt.Sprintf("postgres: migration %q is not named NNNN_name.sql", e.Name()))
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic(err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			panic(fmt.Sprintf("postgres: migration %q should be version %d", m.name, i+1))
		}
	}
	return out
}

// migrateLockKey is the first half of the advisory lock key; the second is a
// hash of the current schema, so stores in different schemas of one database
// (tests) migrate independently while replicas of one schema take turns.
const migrateLockKey = 0x757064 // "upd"

// Migrate applies the migrations not applied yet, each in its own transaction,
// while holding a session advisory lock so replicas starting together apply
// each migration once.
func (s *Store) Migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return translate(err, "migrate: connect")
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(coalesce(current_schema(), '')))`, migrateLockKey); err != nil {
		return translate(err, "migrate: take the migration lock")
	}
	defer func() {
		// A fresh context: the lock must go even if ctx is done. If unlocking
		// fails the connection is broken and the server drops the lock with it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(coalesce(current_schema(), '')))`, migrateLockKey); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return translate(err, "migrate: create schema_migrations")
	}
	applied, err := appliedVersion(ctx, conn.Conn())
	if err != nil {
		return err
	}
	if applied > len(migrations) {
		return ota.Errorf(ota.CodeInternal, "the database schema is at version %d but this build knows only %d: run a newer Updraft", applied, len(migrations))
	}
	for _, m := range migrations[applied:] {
		err := pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
			return err
		})
		if err != nil {
			return translate(err, "migrate: apply "+m.name)
		}
	}
	return nil
}

// appliedVersion is the highest applied migration, 0 before the first.
func appliedVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, translate(err, "read the schema version")
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, translate(err, "read the schema version")
	}
	return v, nil
}

// SchemaVersion returns the applied and the latest known migration.
func (s *Store) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
	applied, err = appliedVersion(ctx, s.pool)
	return applied, len(migrations), err
}
