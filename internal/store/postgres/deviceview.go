package postgres

import "context"

// DeviceViewVersion implements store.Store: the counter that triggers bump
// in every transaction that changes what a device view holds (migration
// 0004_device_view).
func (s *Store) DeviceViewVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, "SELECT n FROM device_view_version WHERE id = 1").Scan(&v)
	return v, translate(err, "reading the device view version")
}
