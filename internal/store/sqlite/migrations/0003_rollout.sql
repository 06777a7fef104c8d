-- 0003: rollout semantics shared by every front-end.
-- Jobs carry the downgrade permission, when their timeout clock starts, and
-- their package's kind (so that jobs filter by it without a join).
ALTER TABLE jobs ADD COLUMN allow_downgrade INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN timeout_from TEXT NOT NULL DEFAULT 'notified';
ALTER TABLE jobs ADD COLUMN package_kind TEXT NOT NULL DEFAULT '';
UPDATE jobs SET package_kind = COALESCE((SELECT kind FROM packages WHERE packages.id = jobs.package_id), 'firmware');
CREATE INDEX jobs_tenant_kind ON jobs (tenant_id, package_kind, id);

-- A waiting task (device offline or version unknown) holds its device's
-- module like any unfinished one; skipped is terminal. The list is
-- ota.ActiveTaskStates in ota.TaskStates order, as the queries write it.
DROP INDEX tasks_one_active;
CREATE UNIQUE INDEX tasks_one_active ON tasks (product_key, device_name, module)
    WHERE state IN ('waiting', 'confirm', 'queued', 'notified', 'in_progress', 'retry_wait');
