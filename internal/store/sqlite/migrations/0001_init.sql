-- 0001: the whole initial schema.
-- Times are INTEGER Unix microseconds (UTC), NULL for the zero time.
-- List- and struct-valued fields are JSON text in the sqlcommon encodings.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER
) STRICT;

CREATE TABLE access_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER
) STRICT;
CREATE INDEX access_keys_tenant ON access_keys (tenant_id);

-- Product keys are unique across tenants: devices authenticate by key alone.
CREATE TABLE products (
    key         TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER
) STRICT;
CREATE INDEX products_tenant_name ON products (tenant_id, name, key);

CREATE TABLE modules (
    product_key TEXT NOT NULL REFERENCES products (key) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    alias       TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER,
    PRIMARY KEY (product_key, name)
) STRICT;

CREATE TABLE devices (
    product_key TEXT NOT NULL REFERENCES products (key) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    secret      TEXT NOT NULL,
    groups      TEXT NOT NULL, -- JSON string list
    online      INTEGER NOT NULL DEFAULT 0,
    last_seen   INTEGER,
    created_at  INTEGER,
    PRIMARY KEY (product_key, name)
) STRICT;
CREATE INDEX devices_tenant_name ON devices (tenant_id, name);

-- One row per (device, module) the device reported a version of; a table
-- rather than JSON so that "devices on version X of module M" is an index
-- lookup (dynamic jobs, source-version targets).
CREATE TABLE device_versions (
    product_key TEXT NOT NULL,
    device_name TEXT NOT NULL,
    module      TEXT NOT NULL,
    version     TEXT NOT NULL,
    reported_at INTEGER,
    PRIMARY KEY (product_key, device_name, module),
    FOREIGN KEY (product_key, device_name) REFERENCES devices (product_key, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX device_versions_module_version ON device_versions (product_key, module, version);

CREATE TABLE packages (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    product_key     TEXT NOT NULL,
    module          TEXT NOT NULL,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    differential    INTEGER NOT NULL,
    source_versions TEXT NOT NULL, -- JSON string list
    description     TEXT NOT NULL,
    custom_info     TEXT NOT NULL,
    sign_method     TEXT NOT NULL,
    sign            TEXT NOT NULL,
    need_verify     INTEGER NOT NULL,
    verify_status   TEXT NOT NULL,
    tags            TEXT NOT NULL, -- JSON tag list
    space           TEXT NOT NULL,
    region          TEXT NOT NULL,
    bucket          TEXT NOT NULL,
    object_key      TEXT NOT NULL,
    external        INTEGER NOT NULL,
    file_name       TEXT NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    md5             TEXT NOT NULL,
    created_at      INTEGER,
    modified_at     INTEGER,
    UNIQUE (tenant_id, name)
) STRICT;
CREATE INDEX packages_tenant_id ON packages (tenant_id, id);
CREATE INDEX packages_blob ON packages (bucket, object_key);

CREATE TABLE jobs (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL,
    package_id            TEXT NOT NULL,
    product_key           TEXT NOT NULL,
    module                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    type                  TEXT NOT NULL,
    selection             TEXT NOT NULL,
    target                TEXT NOT NULL, -- JSON target
    schedule_start        INTEGER,
    schedule_finish       INTEGER,
    schedule_window       TEXT NOT NULL, -- JSON window, '' for none
    max_concurrency       INTEGER NOT NULL,
    max_per_minute        INTEGER NOT NULL,
    retry_count           INTEGER NOT NULL,
    retry_interval_ns     INTEGER NOT NULL,
    timeout_seconds       INTEGER NOT NULL,
    need_push             INTEGER NOT NULL,
    need_confirm          INTEGER NOT NULL,
    overwrite             TEXT NOT NULL,
    allow_device_request  INTEGER NOT NULL,
    abort_failure_percent REAL NOT NULL,
    abort_min_finished    INTEGER NOT NULL,
    tags                  TEXT NOT NULL, -- JSON tag list
    ext_info              TEXT NOT NULL,
    space                 TEXT NOT NULL,
    state                 TEXT NOT NULL,
    state_reason          TEXT NOT NULL,
    materialized          INTEGER NOT NULL,
    materialize_cursor    TEXT NOT NULL,
    created_at            INTEGER,
    updated_at            INTEGER,
    started_at            INTEGER,
    finished_at           INTEGER
) STRICT;
CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id);
CREATE INDEX jobs_package ON jobs (package_id);
CREATE INDEX jobs_state ON jobs (state);

-- AUTOINCREMENT: ids never go back, even after the newest tasks are deleted,
-- so claim cursors (id > last) stay valid.
CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    product_key     TEXT NOT NULL,
    device_name     TEXT NOT NULL,
    module          TEXT NOT NULL,
    state           TEXT NOT NULL,
    from_version    TEXT NOT NULL,
    to_version      TEXT NOT NULL,
    progress        INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    notified_at     INTEGER,
    started_at      INTEGER,
    finished_at     INTEGER,
    next_attempt_at INTEGER,
    created_at      INTEGER,
    updated_at      INTEGER
) STRICT;
-- At most one active (non-terminal) task per device and module, enforced
-- here so that concurrent inserts cannot break it (INSERT … ON CONFLICT DO
-- NOTHING skips the duplicate).
CREATE UNIQUE INDEX tasks_one_active ON tasks (product_key, device_name, module)
    WHERE state IN ('confirm', 'queued', 'notified', 'in_progress', 'retry_wait');
-- Claims (job, queued, id > cursor), per-state counts and state filters.
CREATE INDEX tasks_job_state ON tasks (job_id, state, id);
-- A job's tasks in id order (paging); the rowid is implicitly the last column.
CREATE INDEX tasks_job ON tasks (job_id);
-- Rate limit: notices of a job since a time. Tasks are inserted un-notified,
-- so bulk inserts do not touch it.
CREATE INDEX tasks_job_notified ON tasks (job_id, notified_at) WHERE notified_at IS NOT NULL;
-- A device's tasks (device reports, device polls).
CREATE INDEX tasks_device ON tasks (device_name, product_key, module);
