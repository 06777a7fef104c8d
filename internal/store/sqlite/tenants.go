package sqlite

import (
	"context"
	"database/sql"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

const tenantColumns = "id, name, created_at, operator, max_packages, max_storage_bytes, max_devices, max_running_jobs"

// CreateTenant adds a tenant; CodeConflict if the id exists.
func (s *Store) CreateTenant(ctx context.Context, t ota.Tenant) error {
	_, err := s.exec(ctx, "INSERT INTO tenants ("+tenantColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Name, dbTime(t.CreatedAt), t.Operator, t.Quota.MaxPackages, t.Quota.MaxStorageBytes, t.Quota.MaxDevices, t.Quota.MaxRunningJobs)
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "tenant %q already exists", t.ID)
	}
	return dbError(err, "create tenant "+t.ID)
}

func scanTenant(row rowScanner) (ota.Tenant, error) {
	var t ota.Tenant
	var created sql.NullInt64
	err := row.Scan(&t.ID, &t.Name, &created, &t.Operator, &t.Quota.MaxPackages, &t.Quota.MaxStorageBytes, &t.Quota.MaxDevices, &t.Quota.MaxRunningJobs)
	t.CreatedAt = goTime(created)
	return t, err
}

func (s *Store) GetTenant(ctx context.Context, id string) (ota.Tenant, error) {
	t, err := scanTenant(s.read.QueryRowContext(ctx, "SELECT "+tenantColumns+" FROM tenants WHERE id = ?", id))
	if err == sql.ErrNoRows {
		return ota.Tenant{}, ota.NotFound("tenant", id)
	}
	if err != nil {
		return ota.Tenant{}, dbError(err, "get tenant "+id)
	}
	return t, nil
}

func (s *Store) CountTenants(ctx context.Context) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM tenants").Scan(&n)
	return n, dbError(err, "count tenants")
}

// ListTenants lists tenants by id.
func (s *Store) ListTenants(ctx context.Context, page store.Page) ([]ota.Tenant, int64, error) {
	n, err := s.CountTenants(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+tenantColumns+" FROM tenants ORDER BY id LIMIT ? OFFSET ?",
		sqlcommon.Limit(page.Limit, 0), page.Offset)
	if err != nil {
		return nil, 0, dbError(err, "list tenants")
	}
	defer rows.Close()
	var out []ota.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, 0, dbError(err, "list tenants")
		}
		out = append(out, t)
	}
	return out, n, dbError(rows.Err(), "list tenants")
}

// SetTenantQuota replaces a tenant's quota.
func (s *Store) SetTenantQuota(ctx context.Context, id string, q ota.Quota) error {
	res, err := s.exec(ctx, "UPDATE tenants SET max_packages = ?, max_storage_bytes = ?, max_devices = ?, max_running_jobs = ? WHERE id = ?",
		q.MaxPackages, q.MaxStorageBytes, q.MaxDevices, q.MaxRunningJobs, id)
	if err != nil {
		return dbError(err, "set quota of tenant "+id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ota.NotFound("tenant", id)
	}
	return nil
}

// DeleteTenant removes an empty tenant with its access keys and bucket
// claims, checked and done in one transaction.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	return dbError(s.inTx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tenants WHERE id = ?", id).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return ota.NotFound("tenant", id)
		}
		var owned int64
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM products WHERE tenant_id = ?) +
			(SELECT count(*) FROM packages WHERE tenant_id = ?) + (SELECT count(*) FROM jobs WHERE tenant_id = ?)`,
			id, id, id).Scan(&owned); err != nil {
			return err
		}
		if owned > 0 {
			return ota.Errorf(ota.CodeConflict, "tenant %q still owns products, packages or jobs: delete them first", id)
		}
		for _, q := range []string{"DELETE FROM access_keys WHERE tenant_id = ?", "DELETE FROM buckets WHERE tenant_id = ?", "DELETE FROM tenants WHERE id = ?"} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	}), "delete tenant "+id)
}

// TenantUsage counts what a tenant holds, for its quota.
func (s *Store) TenantUsage(ctx context.Context, id string) (store.Usage, error) {
	var u store.Usage
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM packages WHERE tenant_id = ?),
		(SELECT coalesce(sum(size), 0) FROM packages WHERE tenant_id = ?),
		(SELECT count(*) FROM devices WHERE tenant_id = ?),
		(SELECT count(*) FROM jobs WHERE tenant_id = ? AND state NOT IN ('completed', 'canceled'))`,
		id, id, id, id).Scan(&u.Packages, &u.StorageBytes, &u.Devices, &u.RunningJobs)
	return u, dbError(err, "count the usage of tenant "+id)
}

const keyColumns = "id, tenant_id, secret, role, created_at"

func scanKey(box *secrets.Box, row rowScanner) (ota.AccessKey, error) {
	var k ota.AccessKey
	var created sql.NullInt64
	var role string
	err := row.Scan(&k.ID, &k.TenantID, &k.Secret, &role, &created)
	if err == nil {
		k.Secret, err = box.Open(secrets.KeyID(k.ID), k.Secret)
	}
	k.Role = ota.Role(role)
	k.CreatedAt = goTime(created)
	return k, err
}

// CreateAccessKey adds an access key; CodeConflict if the id exists.
func (s *Store) CreateAccessKey(ctx context.Context, k ota.AccessKey) error {
	_, err := s.exec(ctx, "INSERT INTO access_keys ("+keyColumns+") VALUES (?, ?, ?, ?, ?)",
		k.ID, k.TenantID, s.box.Seal(secrets.KeyID(k.ID), k.Secret), string(k.Role), dbTime(k.CreatedAt))
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "access key %q already exists", k.ID)
	}
	return dbError(err, "create access key "+k.ID)
}

func (s *Store) GetAccessKey(ctx context.Context, id string) (ota.AccessKey, error) {
	k, err := scanKey(s.box, s.read.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM access_keys WHERE id = ?", id))
	if err == sql.ErrNoRows {
		return ota.AccessKey{}, ota.NotFound("access key", id)
	}
	if err != nil {
		return ota.AccessKey{}, dbError(err, "get access key "+id)
	}
	return k, nil
}

// ListAccessKeys lists a tenant's keys by creation.
func (s *Store) ListAccessKeys(ctx context.Context, tenantID string) ([]ota.AccessKey, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT "+keyColumns+" FROM access_keys WHERE tenant_id = ? ORDER BY created_at, id", tenantID)
	if err != nil {
		return nil, dbError(err, "list access keys")
	}
	defer rows.Close()
	var out []ota.AccessKey
	for rows.Next() {
		k, err := scanKey(s.box, rows)
		if err != nil {
			return nil, dbError(err, "list access keys")
		}
		out = append(out, k)
	}
	return out, dbError(rows.Err(), "list access keys")
}

// DeleteAccessKey removes a tenant's key; CodeNotFound if it has no such key.
func (s *Store) DeleteAccessKey(ctx context.Context, tenantID, id string) error {
	res, err := s.exec(ctx, "DELETE FROM access_keys WHERE tenant_id = ? AND id = ?", tenantID, id)
	if err != nil {
		return dbError(err, "delete access key "+id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ota.NotFound("access key", id)
	}
	return nil
}
