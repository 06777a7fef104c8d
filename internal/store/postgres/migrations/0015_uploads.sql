-- Files uploaded for a package that is not registered yet (Alibaba's
-- GenerateOTAUploadURL flow): one that no package claims by expires_at is
-- removed with its blob.
CREATE TABLE uploads (
    bucket     text NOT NULL,
    object_key text NOT NULL,
    tenant_id  text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (bucket, object_key)
);
CREATE INDEX uploads_expiry ON uploads (expires_at);
