package service

// Tenants, access keys, products, modules and devices. Owner: foundation.

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Bootstrap makes sure tenant tenantID exists with access key keyID/secret.
// It creates them only when the database has no tenant at all (first start);
// an empty keyID or secret is generated. created says whether it did.
func (s *Service) Bootstrap(ctx context.Context, tenantID, keyID, secret string) (key ota.AccessKey, created bool, err error) {
	panic("not implemented")
}

// Authenticate checks a native-API key id and secret (constant-time) and
// returns the principal. CodeUnauthenticated on any mismatch.
func (s *Service) Authenticate(ctx context.Context, keyID, secret string) (Principal, error) {
	panic("not implemented")
}

// AccessKey returns a key with its secret, for front-ends that verify request
// signatures (Huawei, Alibaba, EnOS). CodeUnauthenticated if unknown.
func (s *Service) AccessKey(ctx context.Context, keyID string) (ota.AccessKey, error) {
	panic("not implemented")
}

// CreateProduct registers a product.
func (s *Service) CreateProduct(ctx context.Context, p Principal, in ota.Product) (ota.Product, error) {
	panic("not implemented")
}

// GetProduct returns one product of the caller's tenant.
func (s *Service) GetProduct(ctx context.Context, p Principal, key string) (ota.Product, error) {
	panic("not implemented")
}

// ListProducts lists the caller's products.
func (s *Service) ListProducts(ctx context.Context, p Principal, page store.Page) ([]ota.Product, int64, error) {
	panic("not implemented")
}

// CreateModule adds a custom module (at most ota.MaxCustomModules per product).
func (s *Service) CreateModule(ctx context.Context, p Principal, in ota.Module) (ota.Module, error) {
	panic("not implemented")
}

// GetModule returns a module; DefaultModule always exists.
func (s *Service) GetModule(ctx context.Context, p Principal, productKey, name string) (ota.Module, error) {
	panic("not implemented")
}

// ListModules lists a product's custom modules.
func (s *Service) ListModules(ctx context.Context, p Principal, productKey string, page store.Page) ([]ota.Module, int64, error) {
	panic("not implemented")
}

// UpdateModule changes a module's alias and description.
func (s *Service) UpdateModule(ctx context.Context, p Principal, in ota.Module) (ota.Module, error) {
	panic("not implemented")
}

// DeleteModule removes a custom module that no package uses.
func (s *Service) DeleteModule(ctx context.Context, p Principal, productKey, name string) error {
	panic("not implemented")
}

// CreateDevice registers a device and returns it with its generated secret
// (unless in.Secret was given).
func (s *Service) CreateDevice(ctx context.Context, p Principal, in ota.Device) (ota.Device, error) {
	panic("not implemented")
}

// GetDevice returns a device of the caller's tenant.
func (s *Service) GetDevice(ctx context.Context, p Principal, productKey, name string) (ota.Device, error) {
	panic("not implemented")
}

// ListDevices lists a product's devices.
func (s *Service) ListDevices(ctx context.Context, p Principal, f store.DeviceFilter, page store.Page) ([]ota.Device, int64, error) {
	panic("not implemented")
}

// DeviceForAuth returns a device, secret included, by its global reference,
// for device-side authentication (MQTT CONNECT, device HTTP). It is not
// tenant-scoped: devices know only their product key and name.
func (s *Service) DeviceForAuth(ctx context.Context, ref ota.DeviceRef) (ota.Device, error) {
	panic("not implemented")
}
