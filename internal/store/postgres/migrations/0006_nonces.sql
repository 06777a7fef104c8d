-- 0006: used request nonces (Alibaba SignatureNonce / x-acs-signature-nonce),
-- so that a replayed signed request is refused on every replica and after a
-- restart. Rows older than the timestamp window are deleted (ForgetNonces).
CREATE TABLE request_nonces (
    scope   text NOT NULL,
    nonce   text NOT NULL,
    used_at timestamptz NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX request_nonces_used_at ON request_nonces (used_at);
