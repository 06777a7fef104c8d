-- Updraft schema, PostgreSQL. Times are timestamptz and NULL when unset (Go
-- zero time). Lists (groups, source versions) are text[]; structured values
-- (device versions, tags, job target and window) are jsonb in the sqlcommon
-- encodings, the same JSON the SQLite backend stores.
-- Modules and devices belong to a product (foreign keys: creating one for a
-- missing product is CodeNotFound). Tasks have no foreign key to their job:
-- they are inserted a million at a time, where a per-row check would cost;
-- InsertTasks checks the job once per batch instead.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz
);

CREATE TABLE access_keys (
    id         text PRIMARY KEY,
    tenant_id  text NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz
);

-- Product keys are unique across tenants: devices authenticate by key alone.
CREATE TABLE products (
    key         text PRIMARY KEY,
    tenant_id   text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL,
    created_at  timestamptz
);
CREATE INDEX products_tenant_name ON products (tenant_id, name, key);

CREATE TABLE modules (
    product_key text NOT NULL REFERENCES products (key) ON DELETE CASCADE,
    name        text NOT NULL,
    tenant_id   text NOT NULL,
    alias       text NOT NULL,
    description text NOT NULL,
    created_at  timestamptz,
    PRIMARY KEY (product_key, name)
);

CREATE TABLE devices (
    product_key text NOT NULL REFERENCES products (key) ON DELETE CASCADE,
    name        text NOT NULL,
    tenant_id   text NOT NULL,
    secret      text NOT NULL,
    groups      text[] NOT NULL DEFAULT '{}',
    versions    jsonb NOT NULL DEFAULT '{}', -- module -> last reported version (sqlcommon encoding)
    online      boolean NOT NULL DEFAULT false,
    last_seen   timestamptz,
    created_at  timestamptz,
    PRIMARY KEY (product_key, name)
);
CREATE INDEX devices_tenant_name ON devices (tenant_id, name, product_key);
CREATE INDEX devices_groups ON devices USING gin (groups);

CREATE TABLE packages (
    id              text PRIMARY KEY,
    tenant_id       text NOT NULL,
    product_key     text NOT NULL,
    module          text NOT NULL,
    kind            text NOT NULL,
    name            text NOT NULL,
    version         text NOT NULL,
    differential    boolean NOT NULL,
    source_versions text[] NOT NULL DEFAULT '{}',
    description     text NOT NULL,
    custom_info     text NOT NULL,
    sign_method     text NOT NULL,
    sign            text NOT NULL,
    need_verify     boolean NOT NULL,
    verify_status   text NOT NULL,
    tags            jsonb NOT NULL DEFAULT '[]',
    space           text NOT NULL,
    region          text NOT NULL,
    bucket          text NOT NULL,
    key             text NOT NULL,
    external        boolean NOT NULL,
    file_name       text NOT NULL,
    size            bigint NOT NULL,
    sha256          text NOT NULL,
    md5             text NOT NULL,
    created_at      timestamptz,
    modified_at     timestamptz,
    UNIQUE (tenant_id, name)
);
CREATE INDEX packages_tenant_id ON packages (tenant_id, id);
CREATE INDEX packages_blob ON packages (bucket, key);

CREATE TABLE jobs (
    id                    text PRIMARY KEY,
    tenant_id             text NOT NULL,
    package_id            text NOT NULL,
    product_key           text NOT NULL,
    module                text NOT NULL,
    name                  text NOT NULL,
    description           text NOT NULL,
    type                  text NOT NULL,
    selection             text NOT NULL,
    target                jsonb NOT NULL,
    start_at              timestamptz,
    finish_at             timestamptz,
    daily_window          jsonb, -- NULL: any time of day
    max_concurrency       integer NOT NULL,
    max_per_minute        integer NOT NULL,
    retry_count           integer NOT NULL,
    retry_interval_ns     bigint NOT NULL,
    timeout_seconds       integer NOT NULL,
    need_push             boolean NOT NULL,
    need_confirm          boolean NOT NULL,
    overwrite             text NOT NULL,
    allow_device_request  boolean NOT NULL,
    abort_failure_percent double precision NOT NULL,
    abort_min_finished    integer NOT NULL,
    tags                  jsonb NOT NULL DEFAULT '[]',
    ext_info              text NOT NULL,
    space                 text NOT NULL,
    state                 text NOT NULL,
    state_reason          text NOT NULL,
    materialized          boolean NOT NULL,
    materialize_cursor    text NOT NULL,
    created_at            timestamptz,
    updated_at            timestamptz,
    started_at            timestamptz,
    finished_at           timestamptz
);
CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id);
CREATE INDEX jobs_package ON jobs (package_id);
-- The rollout engine scans the jobs that are not over on every tick.
CREATE INDEX jobs_live ON jobs (state) WHERE state NOT IN ('completed', 'canceled');

-- BY DEFAULT: InsertTasks assigns ids itself from tasks_id_seq when it
-- inserts a batch in another order than the caller's.
CREATE TABLE tasks (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    job_id          text NOT NULL,
    tenant_id       text NOT NULL,
    product_key     text NOT NULL,
    device_name     text NOT NULL,
    module          text NOT NULL,
    state           text NOT NULL,
    from_version    text NOT NULL,
    to_version      text NOT NULL,
    progress        integer NOT NULL,
    attempts        integer NOT NULL,
    reason          text NOT NULL,
    detail          text NOT NULL,
    notified_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    next_attempt_at timestamptz,
    created_at      timestamptz,
    updated_at      timestamptz
);
-- A device has at most one active task per module: concurrent inserts from
-- several replicas race on this index, and InsertTasks skips the losers
-- (ON CONFLICT DO NOTHING). The predicate lists ota.TaskState.Terminal.
CREATE UNIQUE INDEX tasks_one_active ON tasks (product_key, device_name, module)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled');
-- Per-job listing, counting and claiming: claims walk (job, 'queued', id > last).
CREATE INDEX tasks_job_state_id ON tasks (job_id, state, id);
-- No index on the device alone: each index costs about a second per million
-- inserted tasks. A device's active task is found through tasks_one_active
-- (ListTasks repeats its predicate when it asks for active states only), and
-- its history within a job through tasks_job_state_id.
-- Rate limit (notified in the last minute): only notified tasks are indexed,
-- so inserting a job's tasks does not pay for it.
CREATE INDEX tasks_job_notified ON tasks (job_id, notified_at) WHERE notified_at IS NOT NULL;
