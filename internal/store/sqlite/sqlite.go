// Package sqlite is the default store backend: one SQLite file in WAL mode
// through modernc.org/sqlite (pure Go, no cgo).
//
// SQLite has one writer at a time. Every write goes through a pool of exactly
// one connection, so writers queue in Go instead of failing with SQLITE_BUSY,
// and a read-modify-write in one transaction (compare-and-set, claims) cannot
// interleave with another. Reads use a separate pool of read-only connections
// that WAL lets run while a write is in progress.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// process (another updraft process on the same file, a backup tool) before
// SQLITE_BUSY. Within one process the single writer pool already serializes.
const busyTimeout = 10 * time.Second

// writeCacheKiB is the page cache of the writer connection (SQLite's default
// is 2 MB). Measured on 1M-task inserts and claims, 16 MB beat both the
// default and 64 MB: a larger cache costs more at every commit.
const writeCacheKiB = 16 << 10

// Store is a store.Store on one SQLite database.
type Store struct {
	write *sql.DB // exactly one connection; every write and every CAS read
	read  *sql.DB // read-only connections; the same pool as write for :memory:

	box *secrets.Box // seals device and access-key secrets (secrets.go)

	stmts cacheStats // both pools' statement caches (stmtcache.go)

	// Group commit (groupcommit.go).
	writes     chan *writeRequest
	stopWriter chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	group      groupStats
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and configures it. It
// does not migrate: call Migrate. path ":memory:" gives a private in-memory
// database on one connection (tests only; it disappears on Close).
func Open(ctx context.Context, path string, opts ...store.Options) (*Store, error) {
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if path == "" {
		return nil, ota.Invalid("db", "the SQLite database path is empty")
	}
	memory := path == ":memory:" || strings.Contains(path, "mode=memory")

	params := url.Values{}
	params.Set("_txlock", "immediate") // take the write lock at BEGIN: no upgrade deadlocks
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "synchronous(NORMAL)")
	// The default page cache is 2 MB; bulk task inserts and claims touch
	// several indexes of a table with millions of rows.
	params.Add("_pragma", fmt.Sprintf("cache_size(%d)", -writeCacheKiB))
	params.Add("_pragma", "temp_store(MEMORY)")
	if !memory {
		params.Add("_pragma", "journal_mode(WAL)")
	}
	if !memory && !strings.HasPrefix(path, "file:") {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, ota.Errorf(ota.CodeUnavailable, "cannot create the directory of the SQLite database %s: %v", path, err)
		}
		if err := restrictFiles(path); err != nil {
			return nil, err
		}
	}
	s := &Store{box: o.Secrets, writes: make(chan *writeRequest), stopWriter: make(chan struct{}), writerDone: make(chan struct{})}
	go s.writer()
	write := sql.OpenDB(cachingConnector{inner: &sqlite.Driver{}, dsn: withParams(path, params), stats: &s.stmts})
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	s.write, s.read = write, write
	if err := write.PingContext(ctx); err != nil {
		s.Close()
		return nil, ota.Errorf(ota.CodeUnavailable, "cannot open the SQLite database %s: %v", path, err)
	}
	if memory {
		return s, nil
	}

	rparams := url.Values{}
	rparams.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	rparams.Add("_pragma", "foreign_keys(1)")
	rparams.Add("_pragma", "query_only(1)")
	read := sql.OpenDB(cachingConnector{inner: &sqlite.Driver{}, dsn: withParams(path, rparams), stats: &s.stmts})
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	s.read = read
	if err := read.PingContext(ctx); err != nil {
		s.Close()
		return nil, ota.Errorf(ota.CodeUnavailable, "cannot open the SQLite database %s: %v", path, err)
	}
	return s, nil
}

// withParams appends driver parameters to a path or file: URI.
func withParams(path string, params url.Values) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + params.Encode()
}

// Close stops the group-commit writer and closes both pools.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopWriter)
		<-s.writerDone
	})
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return dbError(err, "ping the database")
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and '_'", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: versions must be 1, 2, 3… without gaps", out[i].name)
		}
	}
	return out, nil
}

// Migrate applies the migrations not applied yet, each in its own
// transaction. BEGIN IMMEDIATE holds the write lock across the check and the
// apply, so two processes migrating the same file apply each version once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return ota.Internal(err, "embedded migrations are malformed")
	}
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return dbError(err, "create schema_migrations")
	}
	for _, m := range ms {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return dbError(err, "apply migration "+m.name)
		}
	}
	return s.backfillModuleIDs(ctx)
}

// backfillModuleIDs gives modules created before the rollout_filters
// migration their id.
// SQLite has no SHA-256 in SQL (PostgreSQL's migration computes it), so it
// is done here, once per such row.
func (s *Store) backfillModuleIDs(ctx context.Context) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT product_key, name FROM modules WHERE id = ''")
		if err != nil {
			return err
		}
		var keys [][2]string
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "UPDATE modules SET id = ? WHERE product_key = ? AND name = ?",
				ota.ModuleID(k[0], k[1]), k[0], k[1]); err != nil {
				return err
			}
		}
		return nil
	})
	return dbError(err, "backfill module ids")
}

// SchemaVersion returns the highest applied migration (0 before Migrate) and
// the highest embedded one.
func (s *Store) SchemaVersion(ctx context.Context) (applied, latest int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, ota.Internal(err, "embedded migrations are malformed")
	}
	latest = len(ms)
	var tables int
	if err := s.read.QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").Scan(&tables); err != nil {
		return 0, latest, dbError(err, "read the schema version")
	}
	if tables == 0 {
		return 0, latest, nil
	}
	if err := s.read.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&applied); err != nil {
		return 0, latest, dbError(err, "read the schema version")
	}
	return applied, latest, nil
}

// inTx runs fn in a write transaction on the single writer connection. When
// fn succeeds, the audit entry in ctx (store.WithAudit), if any, is written in
// the same transaction: a failed change leaves no entry.
//
// Writes are group-committed (groupcommit.go): fn may share its transaction
// with other writes, each under its own savepoint, so fn's error rolls back
// fn's changes only.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.grouped(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
}

// dbError translates a driver error into an *ota.Error; what says what was
// being done ("create product …"). *ota.Error values pass through unchanged.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var oe *ota.Error
	if errors.As(err, &oe) {
		return oe
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &ota.Error{Code: ota.CodeNotFound, Message: what + ": not found", Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &ota.Error{Code: ota.CodeUnavailable, Message: what + ": the request was canceled or timed out", Err: err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &ota.Error{Code: ota.CodeConflict, Message: what + ": it already exists", Err: err}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &ota.Error{Code: ota.CodeNotFound, Message: what + ": a thing it refers to does not exist", Err: err}
		}
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return &ota.Error{Code: ota.CodeUnavailable, Message: what + ": the database is busy; try again", Err: err}
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY:
			return &ota.Error{Code: ota.CodeUnavailable, Message: what + ": the database file cannot be written", Err: err}
		}
	}
	return ota.Internal(err, what)
}

// Times are stored as Unix microseconds in UTC; the zero time is NULL.

func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func goTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func dbBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// where builds a WHERE clause from conditions joined by AND.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// inlineListMax is the longest list bound as individual parameters; longer
// ones (30 000 device names) go in as one JSON parameter.
const inlineListMax = 32

// in adds "col IN (list)": one placeholder per value for short lists, which
// the planner handles best, and one JSON parameter expanded by json_each for
// long ones, so a list of 30 000 device names needs no 30 000 placeholders.
func (w *where) in(col string, list any) {
	var vals []any
	switch l := list.(type) {
	case []string:
		for _, v := range l {
			vals = append(vals, v)
		}
	case []int64:
		for _, v := range l {
			vals = append(vals, v)
		}
	default:
		panic(fmt.Sprintf("sqlite: IN list of %T", list))
	}
	switch {
	case len(vals) == 1:
		w.add(col+" = ?", vals[0])
	case len(vals) <= inlineListMax:
		w.add(col+" IN ("+strings.Repeat("?, ", len(vals)-1)+"?)", vals...)
	default:
		w.add(col+" IN (SELECT value FROM json_each(?))", jsonList(list))
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func jsonList(list any) string {
	b, err := json.Marshal(list)
	if err != nil {
		panic(fmt.Sprintf("sqlite: jsonList of %T: %v", list, err))
	}
	return string(b)
}

// restrictFiles creates the database file owner-only (0600) before SQLite
// opens it, and narrows an existing one and its -wal and -shm files: they
// hold every secret of the fleet. SQLite gives the WAL and SHM files it
// creates the database file's mode, so they are 0600 too.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return ota.Errorf(ota.CodeUnavailable, "cannot create the SQLite database %s: %v", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !os.IsNotExist(err) {
			return ota.Errorf(ota.CodeUnavailable, "cannot make %s readable by its owner only: %v", p, err)
		}
	}
	return nil
}
