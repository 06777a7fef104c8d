package service

import (
	"context"

	"github.com/updraft-ota/updraft/internal/store"
)

// MaxVersionCounts caps a version distribution.
const MaxVersionCounts = 100

// DeviceVersionCounts is a product's version distribution for one module
// (the default module when empty): devices per reported version, most first;
// devices that have reported none count under "".
func (s *Service) DeviceVersionCounts(ctx context.Context, p Principal, productKey, module string, limit int) ([]store.VersionCount, error) {
	if _, err := s.GetProduct(ctx, p, productKey); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > MaxVersionCounts {
		limit = MaxVersionCounts
	}
	return s.store.CountDeviceVersions(ctx, p.TenantID, productKey, module, limit)
}
