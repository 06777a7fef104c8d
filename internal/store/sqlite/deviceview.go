package sqlite

import "context"

// DeviceViewVersion implements store.Store: the counter that triggers bump
// in every transaction that changes what a device view holds (migration
// 0017_device_view_version).
func (s *Store) DeviceViewVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.read.QueryRowContext(ctx, "SELECT n FROM device_view_version WHERE id = 1").Scan(&v)
	return v, dbError(err, "reading the device view version")
}
