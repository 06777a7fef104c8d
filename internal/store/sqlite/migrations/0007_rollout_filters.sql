-- 0007: filters the front-ends need, in SQL instead of in memory.
-- A job's outcome is stored when it ends (ota.Outcome), so that listings
-- filter by it (Huawei Success/PartialSuccess/Fail). Jobs that ended before
-- this migration are left '' (no outcome filter matches them).
ALTER TABLE jobs ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
UPDATE jobs SET outcome = 'canceled' WHERE state = 'canceled';
CREATE INDEX jobs_tenant_space ON jobs (tenant_id, space, id);
CREATE INDEX packages_tenant_space ON packages (tenant_id, space, id);
-- Custom modules get a stable id (Huawei module_id), looked up directly.
ALTER TABLE modules ADD COLUMN id TEXT NOT NULL DEFAULT '';
CREATE INDEX modules_tenant_id ON modules (tenant_id, id);
