-- 0005: used request nonces (Alibaba SignatureNonce / x-acs-signature-nonce),
-- so that a replayed signed request is refused after a restart too. Rows
-- older than the timestamp window are deleted (ForgetNonces).
CREATE TABLE request_nonces (
    scope   TEXT NOT NULL,
    nonce   TEXT NOT NULL,
    used_at INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
) STRICT;
CREATE INDEX request_nonces_used_at ON request_nonces (used_at);
