-- 0002: bucket ownership. A bucket named through the object APIs belongs to
-- the first tenant that used it (ClaimBucket); other tenants are refused.
CREATE TABLE buckets (
    name       TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    created_at INTEGER
) STRICT;
