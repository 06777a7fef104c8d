package ota

import "time"

// Tenant owns everything else. Its id is Huawei's project_id and EnOS's orgId.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// AccessKey authenticates API calls for a tenant on all four APIs. The secret
// is kept retrievable (not hashed) because the vendors' request signatures are
// HMACs keyed by it.
type AccessKey struct {
	ID        string
	TenantID  string
	Secret    string
	CreatedAt time.Time
}

// DefaultTenantID is the tenant created on first start.
const DefaultTenantID = "default"
