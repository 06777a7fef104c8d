// Package postgres is the PostgreSQL backend of the store, for running several
// replicas against one database: task claims use FOR UPDATE SKIP LOCKED, the
// one-active-task-per-device rule is a partial unique index, and bulk task
// inserts go through COPY.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

// Store is a store.Store over a pgx connection pool.
type Store struct {
	pool  *pgxpool.Pool
	box   *secrets.Box // seals device and access-key secrets (secrets.go)
	slots slotLocks    // replica slots held by this process (replicaslots.go)
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string; pgx runtime parameters such as search_path and pool
// settings such as pool_max_conns are accepted) and checks it answers. It does
// not migrate: call Migrate. Sessions plan every statement for its
// parameters (plan_cache_mode=force_custom_plan) unless dsn says otherwise.
func Open(ctx context.Context, dsn string, opts ...store.Options) (*Store, error) {
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ota.Invalid("db", "cannot parse the PostgreSQL connection string: %v", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		// pgx caches prepared statements, and after five runs PostgreSQL may
		// switch one to a generic plan that ignores the parameters. Task
		// queries need the values: a small job among big ones should be
		// found through the job index, not by walking the primary key.
		// Planning each time costs far less than one such bad plan.
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translate(err, "connect to PostgreSQL")
	}
	s := &Store{pool: pool, box: o.Secrets}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return translate(err, "reach PostgreSQL")
	}
	return nil
}

// Close closes every connection.
func (s *Store) Close() error {
	s.slots.close()
	s.pool.Close()
	return nil
}

// translate turns a pgx error into an *ota.Error: a unique violation is a
// conflict, a foreign key violation not found, a lost connection or a server
// going away unavailable, anything else internal. what says what was being done ("create product").
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	var oe *ota.Error
	if errors.As(err, &oe) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &ota.Error{Code: ota.CodeNotFound, Message: what + ": not found", Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return &ota.Error{Code: ota.CodeConflict, Message: what + ": it already exists", Err: err}
		case pe.Code == "23503": // foreign_key_violation
			return &ota.Error{Code: ota.CodeNotFound, Message: what + ": a thing it refers to does not exist", Err: err}
		case pe.Code == "40001", pe.Code == "40P01": // serialization failure, deadlock
			return &ota.Error{Code: ota.CodeConflict, Message: what + ": a concurrent change got there first; try again", Err: err}
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "53"), // insufficient resources (too many connections…)
			strings.HasPrefix(pe.Code, "57"): // operator intervention (shutdown, cancel)
			return &ota.Error{Code: ota.CodeUnavailable, Message: what + ": PostgreSQL is unavailable; try again later", Err: err}
		}
		return ota.Internal(err, what)
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &ota.Error{Code: ota.CodeUnavailable, Message: what + ": PostgreSQL is unavailable; try again later", Err: err}
	}
	return ota.Internal(err, what)
}

// ts maps the zero time to NULL.
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// fromTS maps NULL to the zero time and reads times in UTC.
func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// strs maps nil to an empty array (the columns are NOT NULL).
func strs(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// nilIfEmpty gives nil for an empty slice, so a value read back compares
// equal to the one written whether it was nil or empty.
func nilIfEmpty(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return v
}

// limitOf picks the row limit of a listing as every SQL backend does.
func limitOf(filterLimit int, p store.Page) int {
	return sqlcommon.Limit(p.Limit, filterLimit)
}

// where builds a WHERE clause with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// add appends a condition; format's %s verbs are replaced by placeholders for
// args, in order.
func (w *where) add(format string, args ...any) {
	ph := make([]any, len(args))
	for i, a := range args {
		ph[i] = w.arg(a)
	}
	w.conds = append(w.conds, fmt.Sprintf(format, ph...))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// count runs SELECT count(*) FROM table WHERE ….
func (s *Store) count(ctx context.Context, table string, w *where, what string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+table+w.String(), w.args...).Scan(&n); err != nil {
		return 0, translate(err, what)
	}
	return n, nil
}

// execOne runs a statement that must change exactly one row; none is
// CodeNotFound for notFound.
func (s *Store) execOne(ctx context.Context, notFound *ota.Error, what, sql string, args ...any) error {
	tag, err := s.exec(ctx, sql, args...)
	if err != nil {
		return translate(err, what)
	}
	if tag.RowsAffected() == 0 {
		return notFound
	}
	return nil
}
