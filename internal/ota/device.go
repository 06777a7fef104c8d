package ota

import "time"

// Device is one member of a product's fleet.
type Device struct {
	TenantID   string
	ProductKey string
	Name       string // Alibaba DeviceName, EnOS deviceKey; Huawei device_id is {product}_{name}
	Secret     string // per-device credential; HMAC key for MQTT/HTTP device auth
	// ProtocolID is the id the product's protocol derives for the device
	// (Protocol.DeviceID; "" for none). The service sets it at creation and
	// the store keeps it unique across all tenants.
	ProtocolID string
	Groups     []string
	// Attributes and Tags are key → value labels an operator sets (EnOS
	// device attributes and tags); jobs may target devices by them
	// (Target.Attributes, Target.Tags). nil when none.
	Attributes map[string]string
	Tags       map[string]string
	// Versions is the version the device last reported, per module
	// (DefaultModule for the whole firmware). Empty until it reports.
	Versions  map[string]string
	Online    bool
	LastSeen  time.Time // zero if never seen
	CreatedAt time.Time
}

// Version returns the reported version of a module ("" if never reported).
// SoftwareModule falls back to DefaultModule for a device that never
// reported a separate software version.
func (d *Device) Version(module string) string {
	if module == "" {
		module = DefaultModule
	}
	if v, ok := d.Versions[module]; ok || module != SoftwareModule {
		return v
	}
	return d.Versions[DefaultModule]
}

// Validate checks a new device.
func (d *Device) Validate() error {
	if err := CheckProductKey("product", d.ProductKey); err != nil {
		return err
	}
	if err := CheckDeviceName("name", d.Name); err != nil {
		return err
	}
	if len(d.Groups) > MaxDeviceGroups {
		return Invalid("groups", "a device may be in at most %d groups, got %d", MaxDeviceGroups, len(d.Groups))
	}
	for _, g := range d.Groups {
		if err := CheckGroupID("groups", g); err != nil {
			return err
		}
	}
	if err := CheckLabels("attributes", d.Attributes); err != nil {
		return err
	}
	if err := CheckLabels("tags", d.Tags); err != nil {
		return err
	}
	for m, v := range d.Versions {
		if err := CheckModuleName("versions", m); err != nil {
			return err
		}
		if err := CheckVersion("versions", v); err != nil {
			return err
		}
	}
	return nil
}
