-- 0009: roles on access keys, the operator tenant, per-tenant quotas.
-- Existing keys keep full rights (admin); the oldest tenant is the one the
-- first start bootstrapped, so it becomes the operator tenant.
ALTER TABLE access_keys ADD COLUMN role text NOT NULL DEFAULT 'admin';
ALTER TABLE tenants ADD COLUMN operator boolean NOT NULL DEFAULT false;
ALTER TABLE tenants ADD COLUMN max_packages bigint NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_storage_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_devices bigint NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN max_running_jobs bigint NOT NULL DEFAULT 0;
UPDATE tenants SET operator = true WHERE id = (SELECT id FROM tenants ORDER BY created_at, id LIMIT 1);
