-- 0004: bearer tokens of dialect token services (EnOS apim) and the one-time
-- proofs (EnOS "encryption") already used to obtain them.
CREATE TABLE api_tokens (
    token         TEXT PRIMARY KEY,
    access_key_id TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX api_tokens_key ON api_tokens (access_key_id, expires_at);

CREATE TABLE api_nonces (
    scope      TEXT NOT NULL,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, value)
);
CREATE INDEX api_nonces_expiry ON api_nonces (scope, expires_at);
