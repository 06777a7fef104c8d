package service

// Tenants, access keys, roles and quotas. Owner: security.
//
// Roles (ota.Role): readonly keys may only read; operator keys may also change
// products, devices, packages, jobs and objects; admin keys may also manage
// their tenant's access keys. Admin keys of the operator tenant (the tenant
// the first start bootstraps, ota.Tenant.Operator) are the server's
// operators: they create, list and delete tenants, set quotas and manage the
// keys of any tenant.
//
// Every front-end calls Principal.Allow before a use case: Allow(ActionWrite)
// for anything that changes state, Allow(ActionRead) otherwise (or
// AllowMethod for HTTP routes whose method says which). Tenant and key
// management check their own, stronger rule here in the service.

import (
	"context"
	"fmt"
	"strings"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Action is what a front-end is about to do on behalf of a principal.
type Action int

const (
	ActionRead  Action = iota // list, get, download
	ActionWrite               // create, change, delete, cancel, retry…
)

// PrincipalOf is the principal an authenticated access key acts as.
func PrincipalOf(k ota.AccessKey) Principal {
	return Principal{TenantID: k.TenantID, AccessKeyID: k.ID, Role: k.Role}
}

// Allow says whether p may do a; CodeForbidden naming the role if not. It is
// THE role check every API dialect calls.
func (p Principal) Allow(a Action) error {
	switch p.Role {
	case ota.RoleAdmin, ota.RoleOperator:
		return nil
	case ota.RoleReadonly:
		if a == ActionRead {
			return nil
		}
		return ota.Errorf(ota.CodeForbidden, "access key %q is readonly: it may only read; use an operator or admin key to change anything", p.AccessKeyID)
	}
	return ota.Errorf(ota.CodeForbidden, "access key %q has no role", p.AccessKeyID)
}

// AllowMethod is Allow for an HTTP route whose method tells reads (GET, HEAD,
// OPTIONS) from changes (everything else).
func (p Principal) AllowMethod(method string) error {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return p.Allow(ActionRead)
	}
	return p.Allow(ActionWrite)
}

// TenantInput is what creating a tenant takes.
type TenantInput struct {
	ID    string
	Name  string // default: the id
	Quota ota.Quota
}

// requireAdmin: p is an admin key of tenantID, or an admin of the operator
// tenant (any tenant). It returns the tenant id to act on.
func (s *Service) requireAdmin(ctx context.Context, p Principal, tenantID string) (string, error) {
	if tenantID == "" {
		tenantID = p.TenantID
	}
	if p.Role != ota.RoleAdmin {
		return "", ota.Errorf(ota.CodeForbidden, "access key %q is %s: managing access keys needs an admin key", p.AccessKeyID, roleName(p.Role))
	}
	if tenantID == p.TenantID {
		return tenantID, nil
	}
	if err := s.requireServerAdmin(ctx, p); err != nil {
		return "", err
	}
	return tenantID, nil
}

// requireServerAdmin: p is an admin key of the operator tenant.
func (s *Service) requireServerAdmin(ctx context.Context, p Principal) error {
	deny := ota.Errorf(ota.CodeForbidden, "only an admin key of the operator tenant (the one created on first start) may manage tenants or other tenants' keys")
	if p.Role != ota.RoleAdmin {
		return deny
	}
	t, err := s.store.GetTenant(ctx, p.TenantID)
	if err != nil {
		return err
	}
	if !t.Operator {
		return deny
	}
	return nil
}

func roleName(r ota.Role) string {
	if r == "" {
		return "without a role"
	}
	return string(r)
}

// CreateTenant adds a tenant (server admins only). It has no key yet: create
// one with CreateAccessKey.
func (s *Service) CreateTenant(ctx context.Context, p Principal, in TenantInput) (ota.Tenant, error) {
	if err := s.requireServerAdmin(ctx, p); err != nil {
		return ota.Tenant{}, err
	}
	if in.ID == "" {
		return ota.Tenant{}, ota.Invalid("id", "a tenant id is required")
	}
	if err := checkTenantID(in.ID); err != nil {
		return ota.Tenant{}, err
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	if err := ota.CheckDisplayName("name", in.Name, ota.MaxProductNameLen, true); err != nil {
		return ota.Tenant{}, err
	}
	if err := in.Quota.Validate(); err != nil {
		return ota.Tenant{}, err
	}
	t := ota.Tenant{ID: in.ID, Name: in.Name, Quota: in.Quota, CreatedAt: s.clock.Now().UTC()}
	if err := s.store.CreateTenant(s.audited(ctx, p, p.TenantID, "tenant.create", "tenant", t.ID, t.Name), t); err != nil {
		return ota.Tenant{}, err
	}
	return t, nil
}

// GetTenant returns a tenant: one's own for any key, any for server admins.
func (s *Service) GetTenant(ctx context.Context, p Principal, id string) (ota.Tenant, error) {
	if id == "" {
		id = p.TenantID
	}
	if id != p.TenantID {
		if err := s.requireServerAdmin(ctx, p); err != nil {
			return ota.Tenant{}, err
		}
	}
	t, err := s.store.GetTenant(ctx, id)
	return t, notFoundAs(err, "tenant", id)
}

// ListTenants lists every tenant (server admins only).
func (s *Service) ListTenants(ctx context.Context, p Principal, page store.Page) ([]ota.Tenant, int64, error) {
	if err := s.requireServerAdmin(ctx, p); err != nil {
		return nil, 0, err
	}
	return s.store.ListTenants(ctx, clampPage(page))
}

// SetTenantQuota replaces a tenant's quota (server admins only).
func (s *Service) SetTenantQuota(ctx context.Context, p Principal, id string, q ota.Quota) (ota.Tenant, error) {
	if err := s.requireServerAdmin(ctx, p); err != nil {
		return ota.Tenant{}, err
	}
	if err := q.Validate(); err != nil {
		return ota.Tenant{}, err
	}
	if err := s.store.SetTenantQuota(s.audited(ctx, p, p.TenantID, "tenant.quota", "tenant", id, fmt.Sprintf("packages=%d storage=%d devices=%d running_jobs=%d", q.MaxPackages, q.MaxStorageBytes, q.MaxDevices, q.MaxRunningJobs)), id, q); err != nil {
		return ota.Tenant{}, notFoundAs(err, "tenant", id)
	}
	return s.store.GetTenant(ctx, id)
}

// DeleteTenant removes an empty tenant and its keys (server admins only; the
// operator tenant cannot be deleted).
func (s *Service) DeleteTenant(ctx context.Context, p Principal, id string) error {
	if err := s.requireServerAdmin(ctx, p); err != nil {
		return err
	}
	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return notFoundAs(err, "tenant", id)
	}
	if t.Operator {
		return ota.Errorf(ota.CodeConflict, "tenant %q is the operator tenant and cannot be deleted", id)
	}
	return s.store.DeleteTenant(s.audited(ctx, p, p.TenantID, "tenant.delete", "tenant", id, ""), id)
}

// CreateAccessKey makes a new key for tenantID ("" = the caller's) with the
// given role (default operator). The returned key carries its secret: the
// only time anyone sees it.
func (s *Service) CreateAccessKey(ctx context.Context, p Principal, tenantID string, role ota.Role) (ota.AccessKey, error) {
	tenantID, err := s.requireAdmin(ctx, p, tenantID)
	if err != nil {
		return ota.AccessKey{}, err
	}
	if role == "" {
		role = ota.RoleOperator
	}
	if err := role.Validate(); err != nil {
		return ota.AccessKey{}, err
	}
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return ota.AccessKey{}, notFoundAs(err, "tenant", tenantID)
	}
	k := ota.AccessKey{
		ID:        strings.ToUpper(ota.NewSecret(accessKeyIDBytes)),
		TenantID:  tenantID,
		Secret:    ota.NewSecret(accessKeySecretBytes),
		Role:      role,
		CreatedAt: s.clock.Now().UTC(),
	}
	if err := s.store.CreateAccessKey(s.audited(ctx, p, k.TenantID, "key.create", "key", k.ID, "role "+string(k.Role)), k); err != nil {
		return ota.AccessKey{}, err
	}
	return k, nil
}

// ListAccessKeys lists a tenant's keys without their secrets.
func (s *Service) ListAccessKeys(ctx context.Context, p Principal, tenantID string) ([]ota.AccessKey, error) {
	tenantID, err := s.requireAdmin(ctx, p, tenantID)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return nil, notFoundAs(err, "tenant", tenantID)
	}
	keys, err := s.store.ListAccessKeys(ctx, tenantID)
	for i := range keys {
		keys[i].Secret = ""
	}
	return keys, err
}

// RevokeAccessKey deletes a key. Every API reads keys from the store on each
// request (no cache), so it stops working at once on every replica. A key
// cannot revoke itself (that would lock an only admin out).
func (s *Service) RevokeAccessKey(ctx context.Context, p Principal, tenantID, keyID string) error {
	tenantID, err := s.requireAdmin(ctx, p, tenantID)
	if err != nil {
		return err
	}
	if keyID == p.AccessKeyID {
		return ota.Errorf(ota.CodeConflict, "access key %q cannot revoke itself: revoke it with another admin key", keyID)
	}
	return notFoundAs(s.store.DeleteAccessKey(s.audited(ctx, p, tenantID, "key.revoke", "key", keyID, ""), tenantID, keyID), "access key", keyID)
}

// Quota kinds for checkQuota.
type quotaKind int

const (
	quotaPackages quotaKind = iota
	quotaDevices
	quotaRunningJobs
)

// checkQuota refuses one more thing of kind (and addBytes more storage) past
// the tenant's quota, with CodeConflict saying which limit. The count is read
// before the insert, so concurrent creates may overshoot by their number.
func (s *Service) checkQuota(ctx context.Context, tenantID string, kind quotaKind, addBytes int64) error {
	t, err := s.store.GetTenant(ctx, tenantID)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return nil // internal callers on tenants created by hand in tests
		}
		return err
	}
	q := t.Quota
	if q == (ota.Quota{}) {
		return nil
	}
	u, err := s.store.TenantUsage(ctx, tenantID)
	if err != nil {
		return err
	}
	over := func(what string, have, limit int64) error {
		return ota.Errorf(ota.CodeConflict, "tenant %q has reached its quota of %d %s (it has %d): delete some or ask the server operator to raise the quota", tenantID, limit, what, have)
	}
	switch kind {
	case quotaPackages:
		if q.MaxPackages > 0 && u.Packages >= q.MaxPackages {
			return over("packages", u.Packages, q.MaxPackages)
		}
		if q.MaxStorageBytes > 0 && u.StorageBytes+addBytes > q.MaxStorageBytes {
			return ota.Errorf(ota.CodeConflict, "tenant %q would exceed its storage quota of %d bytes (it uses %d, this package is %d): delete packages or ask the server operator to raise the quota", tenantID, q.MaxStorageBytes, u.StorageBytes, addBytes)
		}
	case quotaDevices:
		if q.MaxDevices > 0 && u.Devices >= q.MaxDevices {
			return over("devices", u.Devices, q.MaxDevices)
		}
	case quotaRunningJobs:
		if q.MaxRunningJobs > 0 && u.RunningJobs >= q.MaxRunningJobs {
			return over("running jobs", u.RunningJobs, q.MaxRunningJobs)
		}
	}
	return nil
}
