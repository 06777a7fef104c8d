-- 0002: bucket ownership. A bucket named through the object APIs belongs to
-- the first tenant that used it (ClaimBucket); other tenants are refused.
CREATE TABLE buckets (
    name       text PRIMARY KEY,
    tenant_id  text NOT NULL,
    created_at timestamptz
);
