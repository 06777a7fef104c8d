package sqlite

// A statement cache under database/sql.
//
// SQLite compiles every statement it runs, and database/sql prepares, runs
// and closes a statement per call unless the caller keeps a *sql.Stmt. The
// store's statements are few and hot (a device's task, a task's update),
// so compiling them again on every call was the largest single cost of a
// rollout: a quarter of the server's CPU in a 20 000-device fleet over
// device HTTP went to SQLite's parser. Keeping *sql.Stmt values does not
// fit the store: the write pool has one connection, which a transaction
// holds, so preparing on the pool from inside a transaction would wait for
// itself. The cache therefore sits in the driver: each connection keeps its
// own compiled statements by query text, and database/sql, finding no
// Execer or Queryer on the connection, prepares through it on every call
// and gets the cached one back.
//
// database/sql uses a connection from one goroutine at a time, but one
// connection can run a statement while an earlier one still has rows open
// (a query inside a transaction that is reading rows), so a statement in
// use is never handed out twice: a second use of the same text gets a
// statement of its own, closed after it.

import (
	"context"
	"database/sql/driver"
	"sync"
	"sync/atomic"
)

// maxCachedStatements bounds each connection's cache. The store's fixed
// statements are well under it; statements built per call (an IN list per
// number of devices, a batch insert per batch size) evict the least
// recently used ones.
const maxCachedStatements = 256

// cacheStats counts, over all of a pool's connections, how statements were
// obtained.
type cacheStats struct {
	hits, compiled atomic.Int64
}

// cachingConnector opens connections with inner and gives each a cache.
type cachingConnector struct {
	inner driver.Driver
	dsn   string
	stats *cacheStats
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.inner.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{inner: conn, stmts: map[string]*cachedStmt{}, stats: c.stats}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.inner }

// cachingConn is a driver.Conn with a statement cache. It forwards what
// database/sql asks of a SQLite connection except Exec and Query, so that
// every statement goes through PrepareContext.
type cachingConn struct {
	inner driver.Conn
	stats *cacheStats

	mu    sync.Mutex
	stmts map[string]*cachedStmt
	tick  uint64 // use counter for least-recently-used eviction
}

type cachedStmt struct {
	driver.Stmt
	conn  *cachingConn
	query string
	busy  bool   // handed out and not closed yet
	used  uint64 // conn.tick at its last hand-out
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.mu.Lock()
	c.tick++
	if s, ok := c.stmts[query]; ok && !s.busy {
		s.busy, s.used = true, c.tick
		c.mu.Unlock()
		c.stats.hits.Add(1)
		return s, nil
	}
	_, taken := c.stmts[query]
	c.mu.Unlock()

	inner, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stats.compiled.Add(1)
	if taken {
		return inner, nil // the cached one is in use: this one is closed after its use
	}
	s := &cachedStmt{Stmt: inner, conn: c, query: query, busy: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stmts) >= maxCachedStatements && !c.evictLocked() {
		return inner, nil // every cached statement is in use
	}
	s.used = c.tick
	c.stmts[query] = s
	return s, nil
}

// evictLocked closes the least recently used statement not in use.
func (c *cachingConn) evictLocked() bool {
	var oldest *cachedStmt
	for _, s := range c.stmts {
		if !s.busy && (oldest == nil || s.used < oldest.used) {
			oldest = s
		}
	}
	if oldest == nil {
		return false
	}
	delete(c.stmts, oldest.query)
	_ = oldest.Stmt.Close()
	return true
}

// Close returns the statement to its connection's cache.
func (s *cachedStmt) Close() error {
	s.conn.mu.Lock()
	s.busy = false
	s.conn.mu.Unlock()
	return nil
}

func (s *cachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *cachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (c *cachingConn) Close() error {
	c.mu.Lock()
	for q, s := range c.stmts {
		_ = s.Stmt.Close()
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	return c.inner.Close()
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) Ping(ctx context.Context) error {
	return c.inner.(driver.Pinger).Ping(ctx)
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	return c.inner.(driver.SessionResetter).ResetSession(ctx)
}

func (c *cachingConn) IsValid() bool {
	return c.inner.(driver.Validator).IsValid()
}
