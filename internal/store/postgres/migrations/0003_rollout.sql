-- 0003: rollout semantics shared by every front-end.
-- Jobs carry the downgrade permission, when their timeout clock starts, and
-- their package's kind (so that jobs filter by it without a join).
ALTER TABLE jobs
    ADD COLUMN allow_downgrade boolean NOT NULL DEFAULT false,
    ADD COLUMN timeout_from    text NOT NULL DEFAULT 'notified',
    ADD COLUMN package_kind    text NOT NULL DEFAULT '';
UPDATE jobs SET package_kind = COALESCE((SELECT kind FROM packages WHERE packages.id = jobs.package_id), 'firmware');
CREATE INDEX jobs_tenant_kind ON jobs (tenant_id, package_kind, id);

-- skipped is terminal: the predicate lists ota.TaskState.Terminal.
DROP INDEX tasks_one_active;
CREATE UNIQUE INDEX tasks_one_active ON tasks (product_key, device_name, module)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'skipped');
