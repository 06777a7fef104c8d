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
	// Protocol is how the product's devices talk to Updraft (chosen at
	// creation, never changed): CONNECT is dispatched to it alone and
	// notices are rendered in it alone.
	Protocol Protocol
	// Auth is how its devices authenticate: a per-device secret (default)
	// or an X.509 client certificate (mutual TLS).
	Auth      AuthMode
	CreatedAt time.Time
}

// Protocol is a device protocol family.
type Protocol string

const (
	ProtocolNative  Protocol = "native"  // updraft/v1 (sdk/device/wire)
	ProtocolHuawei  Protocol = "huawei"  // Huawei IoTDA device side
	ProtocolAlibaba Protocol = "alibaba" // Alibaba Cloud IoT device side
	ProtocolEnOS    Protocol = "enos"    // EnOS device side
)

// CheckProtocol accepts the declared protocols.
func CheckProtocol(field string, p Protocol) error {
	switch p {
	case ProtocolNative, ProtocolHuawei, ProtocolAlibaba, ProtocolEnOS:
		return nil
	}
	return Invalid(field, "protocol %q is not one of native, huawei, alibaba, enos", p)
}

// DeviceID is the device id the protocol derives from a product key and a
// device name, "" when the protocol names devices by the pair itself. Huawei
// IoTDA's device_id is "{product}_{name}", which two different pairs can
// share ("a_b"/"c" and "a"/"b_c"): such ids are unique across the server,
// so one tenant's device can never take another's.
func (p Protocol) DeviceID(productKey, name string) string {
	if p == ProtocolHuawei {
		return productKey + "_" + name
	}
	return ""
}

// AuthMode is how a product's devices authenticate.
type AuthMode string

const (
	AuthSecret AuthMode = "secret" // HMAC over the per-device secret
	AuthX509   AuthMode = "x509"   // a client certificate issued for the device
)

// CheckAuthMode accepts secret and x509.
func CheckAuthMode(field string, a AuthMode) error {
	switch a {
	case AuthSecret, AuthX509:
		return nil
	}
	return Invalid(field, "auth %q is not one of secret, x509", a)
}

// DefaultModule is the module every product has: the whole firmware.
const DefaultModule = "default"

// SoftwareModule is where a device's software version is kept, apart from
// its firmware's (DefaultModule): Huawei devices report both, fw_version and
// sw_version. Packages of kind software upgrade it (Package.TargetModule), so
// their jobs compare source versions with, and complete on, the software
// version. A device that never reported one is taken to run its firmware
// version there (Device.Version), as when firmware and software were one.
const SoftwareModule = "software"

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

// Validate checks a new product; an empty protocol is native, an empty auth
// mode secret.
func (p *Product) Validate() error {
	if err := CheckProductKey("key", p.Key); err != nil {
		return err
	}
	if p.Protocol == "" {
		p.Protocol = ProtocolNative
	}
	if err := CheckProtocol("protocol", p.Protocol); err != nil {
		return err
	}
	if p.Auth == "" {
		p.Auth = AuthSecret
	}
	if err := CheckAuthMode("auth", p.Auth); err != nil {
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
	if m.Name == SoftwareModule {
		return Invalid("module_name", "module name %q is reserved for the software version (packages of kind software): choose another name", SoftwareModule)
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
