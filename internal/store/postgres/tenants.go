package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// Tenants and access keys.

const tenantColumns = "id, name, created_at, operator, max_packages, max_storage_bytes, max_devices, max_running_jobs"

func (s *Store) CreateTenant(ctx context.Context, t ota.Tenant) error {
	_, err := s.exec(ctx, `INSERT INTO tenants (`+tenantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Name, ts(t.CreatedAt), t.Operator, t.Quota.MaxPackages, t.Quota.MaxStorageBytes, t.Quota.MaxDevices, t.Quota.MaxRunningJobs)
	return conflictAs(translate(err, "create tenant"), "tenant %q already exists", t.ID)
}

func scanTenant(row pgx.Row) (ota.Tenant, error) {
	var t ota.Tenant
	var created pgtype.Timestamptz
	err := row.Scan(&t.ID, &t.Name, &created, &t.Operator, &t.Quota.MaxPackages, &t.Quota.MaxStorageBytes, &t.Quota.MaxDevices, &t.Quota.MaxRunningJobs)
	t.CreatedAt = fromTS(created)
	return t, err
}

func (s *Store) GetTenant(ctx context.Context, id string) (ota.Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	if err != nil {
		return ota.Tenant{}, notFoundAs(err, "get tenant", ota.NotFound("tenant", id))
	}
	return t, nil
}

func (s *Store) CountTenants(ctx context.Context) (int64, error) {
	return s.count(ctx, "tenants", &where{}, "count tenants")
}

// ListTenants lists tenants by id.
func (s *Store) ListTenants(ctx context.Context, page store.Page) ([]ota.Tenant, int64, error) {
	n, err := s.CountTenants(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id LIMIT $1 OFFSET $2`, limitOf(0, page), page.Offset)
	if err != nil {
		return nil, 0, translate(err, "list tenants")
	}
	defer rows.Close()
	var out []ota.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, 0, translate(err, "list tenants")
		}
		out = append(out, t)
	}
	return out, n, translate(rows.Err(), "list tenants")
}

// SetTenantQuota replaces a tenant's quota.
func (s *Store) SetTenantQuota(ctx context.Context, id string, q ota.Quota) error {
	return s.execOne(ctx, ota.NotFound("tenant", id), "set tenant quota",
		`UPDATE tenants SET max_packages = $1, max_storage_bytes = $2, max_devices = $3, max_running_jobs = $4 WHERE id = $5`,
		q.MaxPackages, q.MaxStorageBytes, q.MaxDevices, q.MaxRunningJobs, id)
}

// DeleteTenant removes an empty tenant with its access keys and bucket
// claims, checked and done in one transaction (the tenant row is locked so a
// concurrent create in it waits).
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		var got string
		if err := tx.QueryRow(ctx, `SELECT id FROM tenants WHERE id = $1 FOR UPDATE`, id).Scan(&got); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ota.NotFound("tenant", id)
			}
			return err
		}
		var owned int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM products WHERE tenant_id = $1) +
			(SELECT count(*) FROM packages WHERE tenant_id = $1) + (SELECT count(*) FROM jobs WHERE tenant_id = $1)`,
			id).Scan(&owned); err != nil {
			return err
		}
		if owned > 0 {
			return ota.Errorf(ota.CodeConflict, "tenant %q still owns products, packages or jobs: delete them first", id)
		}
		for _, q := range []string{`DELETE FROM access_keys WHERE tenant_id = $1`, `DELETE FROM buckets WHERE tenant_id = $1`, `DELETE FROM tenants WHERE id = $1`} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	}), "delete tenant "+id)
}

// TenantUsage counts what a tenant holds, for its quota.
func (s *Store) TenantUsage(ctx context.Context, id string) (store.Usage, error) {
	var u store.Usage
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM packages WHERE tenant_id = $1),
		(SELECT coalesce(sum(size), 0)::bigint FROM packages WHERE tenant_id = $1),
		(SELECT count(*) FROM devices WHERE tenant_id = $1),
		(SELECT count(*) FROM jobs WHERE tenant_id = $1 AND state NOT IN ('completed', 'canceled'))`,
		id).Scan(&u.Packages, &u.StorageBytes, &u.Devices, &u.RunningJobs)
	return u, translate(err, "count the usage of tenant "+id)
}

const keyColumns = "id, tenant_id, secret, role, created_at"

func (s *Store) scanKey(row pgx.Row) (ota.AccessKey, error) {
	var k ota.AccessKey
	var created pgtype.Timestamptz
	var role string
	err := row.Scan(&k.ID, &k.TenantID, &k.Secret, &role, &created)
	if err == nil {
		k.Secret, err = s.box.Open(secrets.KeyID(k.ID), k.Secret)
	}
	k.Role = ota.Role(role)
	k.CreatedAt = fromTS(created)
	return k, err
}

func (s *Store) CreateAccessKey(ctx context.Context, k ota.AccessKey) error {
	_, err := s.exec(ctx, `INSERT INTO access_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.TenantID, s.box.Seal(secrets.KeyID(k.ID), k.Secret), string(k.Role), ts(k.CreatedAt))
	return conflictAs(translate(err, "create access key"), "access key %q already exists", k.ID)
}

func (s *Store) GetAccessKey(ctx context.Context, id string) (ota.AccessKey, error) {
	k, err := s.scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM access_keys WHERE id = $1`, id))
	if err != nil {
		return ota.AccessKey{}, notFoundAs(err, "get access key", ota.NotFound("access key", id))
	}
	return k, nil
}

// ListAccessKeys lists a tenant's keys by creation.
func (s *Store) ListAccessKeys(ctx context.Context, tenantID string) ([]ota.AccessKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM access_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, translate(err, "list access keys")
	}
	defer rows.Close()
	var out []ota.AccessKey
	for rows.Next() {
		k, err := s.scanKey(rows)
		if err != nil {
			return nil, translate(err, "list access keys")
		}
		out = append(out, k)
	}
	return out, translate(rows.Err(), "list access keys")
}

// DeleteAccessKey removes a tenant's key; CodeNotFound if it has no such key.
func (s *Store) DeleteAccessKey(ctx context.Context, tenantID, id string) error {
	return s.execOne(ctx, ota.NotFound("access key", id), "delete access key",
		`DELETE FROM access_keys WHERE tenant_id = $1 AND id = $2`, tenantID, id)
}
