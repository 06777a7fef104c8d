package sqlite

import "context"

// DeviceViewVersion implements store.Store with SQLite's data_version: it
// changes whenever another connection (the store's single writer) has
// committed anything, which is more often than the contract needs but
// exact, and costs no table access. It is read on a connection of its own,
// since the counter is per connection. An in-memory database has one
// connection for everything, so there it counts that connection's changes.
func (s *Store) DeviceViewVersion(ctx context.Context) (int64, error) {
	var v int64
	if s.read == s.write {
		err := s.write.QueryRowContext(ctx, "SELECT total_changes()").Scan(&v)
		return v, dbError(err, "reading the device view version")
	}
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if s.viewConn == nil {
		c, err := s.read.Conn(ctx)
		if err != nil {
			return 0, dbError(err, "reading the device view version")
		}
		s.viewConn = c
	}
	if err := s.viewConn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		_ = s.viewConn.Close()
		s.viewConn = nil
		return 0, dbError(err, "reading the device view version")
	}
	return v, nil
}
