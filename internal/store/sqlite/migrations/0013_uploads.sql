-- Files uploaded for a package that is not registered yet (Alibaba's
-- GenerateOTAUploadURL flow): one that no package claims by expires_at is
-- removed with its blob.
CREATE TABLE uploads (
    bucket     TEXT NOT NULL,
    object_key TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
