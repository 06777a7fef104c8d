package ota

import "time"

// Tenant owns everything else. Its id is Huawei's project_id and EnOS's orgId.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// Operator marks the server operator's tenant (the one the first start
	// bootstraps): its admin keys may create, list and delete other tenants
	// and manage their keys.
	Operator bool
	Quota    Quota
}

// Quota bounds what one tenant may hold. A zero field means no limit.
type Quota struct {
	MaxPackages     int64 // registered packages
	MaxStorageBytes int64 // sum of the sizes of its packages
	MaxDevices      int64 // registered devices
	MaxRunningJobs  int64 // jobs that have not ended
}

// Validate rejects negative limits.
func (q Quota) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"max_packages", q.MaxPackages}, {"max_storage_bytes", q.MaxStorageBytes}, {"max_devices", q.MaxDevices}, {"max_running_jobs", q.MaxRunningJobs}} {
		if f.v < 0 {
			return Invalid(f.name, "%s must be 0 (no limit) or positive, got %d", f.name, f.v)
		}
	}
	return nil
}

// Role says what an access key may do within its tenant.
type Role string

const (
	// RoleAdmin may do everything in its tenant, including managing its
	// tenant's access keys; an admin key of the operator tenant also manages
	// tenants and any tenant's keys.
	RoleAdmin Role = "admin"
	// RoleOperator may read and change products, devices, packages and jobs,
	// but not access keys or tenants.
	RoleOperator Role = "operator"
	// RoleReadonly may only read.
	RoleReadonly Role = "readonly"
)

// Validate rejects an unknown role.
func (r Role) Validate() error {
	switch r {
	case RoleAdmin, RoleOperator, RoleReadonly:
		return nil
	}
	return Invalid("role", "role %q is not one of admin, operator, readonly", string(r))
}

// AccessKey authenticates API calls for a tenant on all four APIs. The secret
// is kept retrievable (not hashed) because the vendors' request signatures are
// HMACs keyed by it.
type AccessKey struct {
	ID        string
	TenantID  string
	Secret    string
	Role      Role
	CreatedAt time.Time
}

// DefaultTenantID is the tenant created on first start.
const DefaultTenantID = "default"
