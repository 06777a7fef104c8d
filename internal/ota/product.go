package ota

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Product is a device model. Packages, jobs and devices belong to one product.
type Product struct {
	TenantID    string
	Key         string // Alibaba ProductKey, Huawei product_id, EnOS productKey
	Name        string
	Description string
	CreatedAt   time.Time
}

// DefaultModule is the module every product has: the whole firmware.
const DefaultModule = "default"

// MaxCustomModules is how many modules besides DefaultModule a product may have
// (Huawei and Alibaba both document 10).
const MaxCustomModules = 10

// Module is an independently versioned part of a device (MCU, modem, app…).
type Module struct {
	ID          string // ModuleID(ProductKey, Name), assigned by the store
	TenantID    string
	ProductKey  string
	Name        string
	Alias       string
	Description string
	CreatedAt   time.Time
}

// Validate checks a new product.
func (p *Product) Validate() error {
	if err := CheckProductKey("key", p.Key); err != nil {
		return err
	}
	if err := CheckDisplayName("name", p.Name, MaxProductNameLen, true); err != nil {
		return err
	}
	return CheckLen("description", p.Description, MaxDescriptionLen)
}

// Validate checks a new custom module.
func (m *Module) Validate() error {
	if err := CheckModuleName("module_name", m.Name); err != nil {
		return err
	}
	if m.Name == DefaultModule {
		return Invalid("module_name", "module name %q is reserved for the whole firmware", DefaultModule)
	}
	if err := CheckDisplayName("alias_name", m.Alias, MaxModuleAliasLen, false); err != nil {
		return err
	}
	return CheckLen("description", m.Description, MaxDescriptionLen)
}

// ModuleID is a module's stable id (Huawei module_id): the first 12 bytes of
// SHA-256 over product key, NUL, module name, in hex. Deterministic, so that
// it is the same on every replica and can be computed for existing rows.
func ModuleID(productKey, module string) string {
	sum := sha256.Sum256([]byte(productKey + "\x00" + module))
	return hex.EncodeToString(sum[:12])
}
