-- 0008: roles on access keys, the operator tenant, per-tenant quotas.
-- Existing keys keep full rights (admin); the oldest tenant is the one the
-- first start bootstrapped, so it becomes the operator tenant.
ALTER TABLE access_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE tenants ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_packages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_storage_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_devices INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_running_jobs INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET operator = 1 WHERE id = (SELECT id FROM tenants ORDER BY created_at, id LIMIT 1);
