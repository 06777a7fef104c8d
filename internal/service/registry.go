package service

// Tenants, access keys, products, modules and devices. Owner: foundation.

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// maxPageLimit caps every listing, whatever the caller asks for.
const maxPageLimit = 1000

// Generated credential sizes, in random bytes (hex doubles them).
const (
	accessKeyIDBytes     = 10 // 20 characters, like the vendors' AK ids
	accessKeySecretBytes = 20 // 40 characters
	deviceSecretBytes    = 32 // 64 characters
	minDeviceSecretLen   = 8
	maxDeviceSecretLen   = 128
)

func clampPage(page store.Page) store.Page {
	if page.Limit > maxPageLimit {
		page.Limit = maxPageLimit
	}
	if page.Limit < 0 {
		page.Limit = 0
	}
	if page.Offset < 0 {
		page.Offset = 0
	}
	return page
}

// notFoundAs keeps err unless it is a store's NotFound, which it replaces
// with a message naming what the caller asked for.
func notFoundAs(err error, kind, id string) error {
	if ota.ErrorCode(err) == ota.CodeNotFound {
		return ota.NotFound(kind, id)
	}
	return err
}

// Bootstrap makes sure tenant tenantID exists with access key keyID/secret.
// It creates them only when the database has no tenant at all (first start);
// an empty keyID or secret is generated. created says whether it did.
func (s *Service) Bootstrap(ctx context.Context, tenantID, keyID, secret string) (key ota.AccessKey, created bool, err error) {
	n, err := s.store.CountTenants(ctx)
	if err != nil {
		return ota.AccessKey{}, false, err
	}
	if n > 0 {
		return ota.AccessKey{}, false, nil
	}
	if tenantID == "" {
		tenantID = ota.DefaultTenantID
	}
	if err := checkTenantID(tenantID); err != nil {
		return ota.AccessKey{}, false, err
	}
	if keyID == "" {
		keyID = strings.ToUpper(ota.NewSecret(accessKeyIDBytes))
	}
	if secret == "" {
		secret = ota.NewSecret(accessKeySecretBytes)
	}
	if err := checkAccessKey(keyID, secret); err != nil {
		return ota.AccessKey{}, false, err
	}
	now := s.clock.Now().UTC()
	// The first start's changes have no caller: their entries name none
	// ("first start" in the detail).
	boot := func(action, typ, id string) context.Context {
		return store.WithAudit(ctx, ota.AuditEntry{At: now, TenantID: tenantID, Action: action, ResourceType: typ,
			ResourceID: id, Detail: "first start (bootstrap)"})
	}
	if err := s.store.CreateTenant(boot("tenant.create", "tenant", tenantID), ota.Tenant{ID: tenantID, Name: tenantID, CreatedAt: now, Operator: true}); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			// Another replica bootstrapped the same empty database first.
			return ota.AccessKey{}, false, nil
		}
		return ota.AccessKey{}, false, err
	}
	key = ota.AccessKey{ID: keyID, TenantID: tenantID, Secret: secret, Role: ota.RoleAdmin, CreatedAt: now}
	if err := s.store.CreateAccessKey(boot("key.create", "key", keyID), key); err != nil {
		return ota.AccessKey{}, false, err
	}
	s.log.Info("bootstrapped tenant", "tenant", tenantID, "access_key_id", keyID)
	return key, true, nil
}

// checkTenantID: the tenant id is Huawei's project_id and EnOS's orgId, so it
// must fit in a URL path segment: 1–64 of [A-Za-z0-9_-].
func checkTenantID(id string) error {
	if len(id) > 64 {
		return ota.Invalid("tenant", "tenant id may be at most 64 characters, got %d", len(id))
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return ota.Invalid("tenant", "tenant id %q contains %q: only letters, digits, '_' and '-' are allowed", id, r)
		}
	}
	return nil
}

// checkAccessKey: ids travel in headers and "id:secret" Bearer tokens, so
// neither may contain ':' or whitespace.
func checkAccessKey(id, secret string) error {
	if len(id) < 4 || len(id) > 128 {
		return ota.Invalid("access_key_id", "access key id must be 4 to 128 characters, got %d", len(id))
	}
	if len(secret) < 8 || len(secret) > 128 {
		return ota.Invalid("secret_access_key", "secret access key must be 8 to 128 characters, got %d", len(secret))
	}
	for _, r := range id + secret {
		if r <= ' ' || r > '~' || r == ':' {
			return ota.Invalid("access_key_id", "access keys may contain only printable ASCII without spaces or ':'")
		}
	}
	return nil
}

// Authenticate checks a native-API key id and secret (constant-time) and
// returns the principal. CodeUnauthenticated on any mismatch.
func (s *Service) Authenticate(ctx context.Context, keyID, secret string) (Principal, error) {
	unauth := ota.Errorf(ota.CodeUnauthenticated, "the access key id or secret is wrong")
	if keyID == "" || secret == "" {
		return Principal{}, unauth
	}
	k, err := s.store.GetAccessKey(ctx, keyID)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return Principal{}, unauth
		}
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Secret), []byte(secret)) != 1 {
		return Principal{}, unauth
	}
	return PrincipalOf(k), nil
}

// AccessKey returns a key with its secret, for front-ends that verify request
// signatures (Huawei, Alibaba, EnOS). CodeUnauthenticated if unknown.
func (s *Service) AccessKey(ctx context.Context, keyID string) (ota.AccessKey, error) {
	if keyID == "" {
		return ota.AccessKey{}, ota.Errorf(ota.CodeUnauthenticated, "an access key id is required")
	}
	k, err := s.store.GetAccessKey(ctx, keyID)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return ota.AccessKey{}, ota.Errorf(ota.CodeUnauthenticated, "access key %q is not known", keyID)
		}
		return ota.AccessKey{}, err
	}
	return k, nil
}

// CreateProduct registers a product.
func (s *Service) CreateProduct(ctx context.Context, p Principal, in ota.Product) (ota.Product, error) {
	in.TenantID = p.TenantID
	if err := in.Validate(); err != nil {
		return ota.Product{}, err
	}
	in.CreatedAt = s.clock.Now().UTC()
	if err := s.store.CreateProduct(s.audited(ctx, p, in.TenantID, "product.create", "product", in.Key, in.Name), in); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			// Keys are global (devices authenticate by key alone), so the key
			// may be taken by another tenant: say so without naming it.
			return ota.Product{}, &ota.Error{Code: ota.CodeConflict, Field: "key",
				Message: "product key " + quote(in.Key) + " is already taken: choose another key"}
		}
		return ota.Product{}, err
	}
	return in, nil
}

func quote(s string) string { return `"` + s + `"` }

// GetProduct returns one product of the caller's tenant.
func (s *Service) GetProduct(ctx context.Context, p Principal, key string) (ota.Product, error) {
	if key == "" {
		return ota.Product{}, ota.Invalid("product", "product key is required")
	}
	pr, err := s.store.GetProduct(ctx, p.TenantID, key)
	if err != nil {
		return ota.Product{}, notFoundAs(err, "product", key)
	}
	return pr, nil
}

// ListProducts lists the caller's products.
func (s *Service) ListProducts(ctx context.Context, p Principal, page store.Page) ([]ota.Product, int64, error) {
	return s.store.ListProducts(ctx, p.TenantID, clampPage(page))
}

// CreateModule adds a custom module (at most ota.MaxCustomModules per product).
func (s *Service) CreateModule(ctx context.Context, p Principal, in ota.Module) (ota.Module, error) {
	in.TenantID = p.TenantID
	if err := in.Validate(); err != nil {
		return ota.Module{}, err
	}
	if _, err := s.GetProduct(ctx, p, in.ProductKey); err != nil {
		return ota.Module{}, err
	}
	_, n, err := s.store.ListModules(ctx, p.TenantID, in.ProductKey, store.Page{Limit: 1})
	if err != nil {
		return ota.Module{}, err
	}
	if n >= ota.MaxCustomModules {
		return ota.Module{}, ota.Errorf(ota.CodeConflict,
			"product %q already has %d custom modules, the most allowed: delete an unused one first", in.ProductKey, n)
	}
	in.CreatedAt = s.clock.Now().UTC()
	in.ID = ota.ModuleID(in.ProductKey, in.Name) // what the store assigns
	if err := s.store.CreateModule(s.audited(ctx, p, in.TenantID, "module.create", "module", in.ProductKey+"/"+in.Name, ""), in); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			return ota.Module{}, &ota.Error{Code: ota.CodeConflict, Field: "module_name",
				Message: "module " + quote(in.Name) + " already exists in product " + quote(in.ProductKey)}
		}
		return ota.Module{}, err
	}
	return in, nil
}

// GetModule returns a module; DefaultModule always exists.
func (s *Service) GetModule(ctx context.Context, p Principal, productKey, name string) (ota.Module, error) {
	if name == "" || name == ota.DefaultModule {
		pr, err := s.GetProduct(ctx, p, productKey)
		if err != nil {
			return ota.Module{}, err
		}
		return ota.Module{TenantID: p.TenantID, ProductKey: productKey, Name: ota.DefaultModule,
			Alias: ota.DefaultModule, Description: "the whole firmware", CreatedAt: pr.CreatedAt}, nil
	}
	m, err := s.store.GetModule(ctx, p.TenantID, productKey, name)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			// Say which is missing: the product or the module.
			if _, perr := s.GetProduct(ctx, p, productKey); perr != nil {
				return ota.Module{}, perr
			}
			return ota.Module{}, &ota.Error{Code: ota.CodeNotFound, Field: "module",
				Message: "module " + quote(name) + " not found in product " + quote(productKey) + ": create it first"}
		}
		return ota.Module{}, err
	}
	return m, nil
}

// ListModules lists a product's custom modules.
func (s *Service) ListModules(ctx context.Context, p Principal, productKey string, page store.Page) ([]ota.Module, int64, error) {
	if _, err := s.GetProduct(ctx, p, productKey); err != nil {
		return nil, 0, err
	}
	return s.store.ListModules(ctx, p.TenantID, productKey, clampPage(page))
}

// FindModules lists the caller's custom modules by id, highest first: of
// one product (f.ProductKey), of all, or the one with f.ID.
func (s *Service) FindModules(ctx context.Context, p Principal, f store.ModuleFilter, page store.Page) ([]ota.Module, int64, error) {
	f.TenantID = p.TenantID
	return s.store.FindModules(ctx, f, clampPage(page))
}

// UpdateModule changes a module's alias and description.
func (s *Service) UpdateModule(ctx context.Context, p Principal, in ota.Module) (ota.Module, error) {
	if in.Name == ota.DefaultModule {
		return ota.Module{}, ota.Invalid("module_name", "the %q module cannot be changed", ota.DefaultModule)
	}
	if err := in.Validate(); err != nil {
		return ota.Module{}, err
	}
	m, err := s.GetModule(ctx, p, in.ProductKey, in.Name)
	if err != nil {
		return ota.Module{}, err
	}
	m.Alias, m.Description = in.Alias, in.Description
	if err := s.store.UpdateModule(s.audited(ctx, p, m.TenantID, "module.update", "module", m.ProductKey+"/"+m.Name, ""), m); err != nil {
		return ota.Module{}, notFoundAs(err, "module", in.Name)
	}
	return m, nil
}

// DeleteModule removes a custom module that no package uses.
func (s *Service) DeleteModule(ctx context.Context, p Principal, productKey, name string) error {
	if name == ota.DefaultModule {
		return ota.Invalid("module_name", "the %q module always exists and cannot be deleted", ota.DefaultModule)
	}
	if _, err := s.GetModule(ctx, p, productKey, name); err != nil {
		return err
	}
	_, n, err := s.store.ListPackages(ctx, store.PackageFilter{TenantID: p.TenantID, ProductKey: productKey, Module: name}, store.Page{Limit: 1})
	if err != nil {
		return err
	}
	if n > 0 {
		return ota.Errorf(ota.CodeConflict, "module %q of product %q is used by %d package(s): delete them first", name, productKey, n)
	}
	return notFoundAs(s.store.DeleteModule(s.audited(ctx, p, p.TenantID, "module.delete", "module", productKey+"/"+name, ""), p.TenantID, productKey, name), "module", name)
}

// checkDeviceSecret: a caller-chosen device secret is an HMAC key carried in
// MQTT passwords and HTTP headers: 8–128 printable ASCII without spaces.
func checkDeviceSecret(secret string) error {
	if len(secret) < minDeviceSecretLen || len(secret) > maxDeviceSecretLen {
		return ota.Invalid("secret", "a device secret must be %d to %d characters, got %d (leave it empty to have one generated)",
			minDeviceSecretLen, maxDeviceSecretLen, len(secret))
	}
	for _, r := range secret {
		if r <= ' ' || r > '~' {
			return ota.Invalid("secret", "a device secret may contain only printable ASCII characters without spaces")
		}
	}
	return nil
}

// CreateDevice registers a device and returns it with its generated secret
// (unless in.Secret was given).
func (s *Service) CreateDevice(ctx context.Context, p Principal, in ota.Device) (ota.Device, error) {
	in.TenantID = p.TenantID
	if err := in.Validate(); err != nil {
		return ota.Device{}, err
	}
	if in.Secret == "" {
		in.Secret = ota.NewSecret(deviceSecretBytes)
	} else if err := checkDeviceSecret(in.Secret); err != nil {
		return ota.Device{}, err
	}
	prod, err := s.GetProduct(ctx, p, in.ProductKey)
	if err != nil {
		return ota.Device{}, err
	}
	if err := s.checkQuota(ctx, p.TenantID, quotaDevices, 0); err != nil {
		return ota.Device{}, err
	}
	in.ProtocolID = prod.Protocol.DeviceID(in.ProductKey, in.Name)
	in.Online = false
	in.LastSeen = time.Time{}
	in.CreatedAt = s.clock.Now().UTC()
	if err := s.store.CreateDevice(s.audited(ctx, p, in.TenantID, "device.create", "device", in.ProductKey+"/"+in.Name, ""), in); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			if _, gerr := s.store.GetDevice(ctx, in.ProductKey, in.Name); gerr != nil && in.ProtocolID != "" {
				// Not this pair: another product's device derives the same id.
				return ota.Device{}, &ota.Error{Code: ota.CodeConflict, Field: "name",
					Message: "device id " + quote(in.ProtocolID) + " (" + string(prod.Protocol) + " protocol: {product}_{device}) is already used by a device of another product: choose another device name"}
			}
			return ota.Device{}, &ota.Error{Code: ota.CodeConflict, Field: "name",
				Message: "device " + quote(in.Name) + " already exists in product " + quote(in.ProductKey)}
		}
		return ota.Device{}, err
	}
	return in, nil
}

// ProductProtocol is the device protocol of a product, by key alone (device
// front-ends dispatch a CONNECT and render a notice in it).
func (s *Service) ProductProtocol(ctx context.Context, productKey string) (ota.Protocol, error) {
	prod, err := s.store.FindProduct(ctx, productKey)
	if err != nil {
		return "", notFoundAs(err, "product", productKey)
	}
	return prod.Protocol, nil
}

// DeviceProduct is a product by key alone, for device front-ends: its
// protocol and how its devices authenticate (ota.Product.CheckDeviceAuth).
func (s *Service) DeviceProduct(ctx context.Context, productKey string) (ota.Product, error) {
	prod, err := s.store.FindProduct(ctx, productKey)
	if err != nil {
		return ota.Product{}, notFoundAs(err, "product", productKey)
	}
	return prod, nil
}

// GetDevice returns a device of the caller's tenant. The secret is not
// included: it is shown once, when the device is created.
func (s *Service) GetDevice(ctx context.Context, p Principal, productKey, name string) (ota.Device, error) {
	d, err := s.store.GetDevice(ctx, productKey, name)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return ota.Device{}, s.deviceNotFound(ctx, p, productKey, name)
		}
		return ota.Device{}, err
	}
	if d.TenantID != p.TenantID {
		return ota.Device{}, s.deviceNotFound(ctx, p, productKey, name)
	}
	d.Secret = ""
	return d, nil
}

// deviceNotFound says whether the product or the device is missing.
func (s *Service) deviceNotFound(ctx context.Context, p Principal, productKey, name string) error {
	if _, err := s.GetProduct(ctx, p, productKey); err != nil {
		return err
	}
	return &ota.Error{Code: ota.CodeNotFound, Message: "device " + quote(name) + " not found in product " + quote(productKey)}
}

// ListDevices lists a product's devices (secrets left out).
func (s *Service) ListDevices(ctx context.Context, p Principal, f store.DeviceFilter, page store.Page) ([]ota.Device, int64, error) {
	f.TenantID = p.TenantID
	if f.ProductKey != "" {
		if _, err := s.GetProduct(ctx, p, f.ProductKey); err != nil {
			return nil, 0, err
		}
	}
	devs, n, err := s.store.ListDevices(ctx, f, clampPage(page), true)
	if err != nil {
		return nil, 0, err
	}
	for i := range devs {
		devs[i].Secret = ""
	}
	return devs, n, nil
}

// DeviceForAuth returns a device, secret included, by its global reference,
// for device-side authentication (MQTT CONNECT, device HTTP). It is not
// tenant-scoped: devices know only their product key and name.
func (s *Service) DeviceForAuth(ctx context.Context, ref ota.DeviceRef) (ota.Device, error) {
	if ref.ProductKey == "" || ref.Name == "" {
		return ota.Device{}, ota.Errorf(ota.CodeUnauthenticated, "a product key and a device name are required")
	}
	d, err := s.store.GetDevice(ctx, ref.ProductKey, ref.Name)
	if err != nil {
		return ota.Device{}, notFoundAs(err, "device", ref.ProductKey+"/"+ref.Name)
	}
	return d, nil
}
