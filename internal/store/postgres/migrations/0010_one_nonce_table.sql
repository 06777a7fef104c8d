-- 0010: one nonce table for every dialect. request_nonces (Alibaba
-- SignatureNonce, kept from used_at until the sweep) and api_nonces (EnOS
-- token proofs, kept until expires_at) become nonces (scope, nonce,
-- expires_at). A request nonce is kept 30 minutes (twice Alibaba's 15-minute
-- timestamp window) from its use, as the sweep did.
CREATE TABLE nonces (
    scope      text NOT NULL,
    nonce      text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, nonce)
);
INSERT INTO nonces (scope, nonce, expires_at)
    SELECT scope, nonce, used_at + interval '30 minutes' FROM request_nonces;
INSERT INTO nonces (scope, nonce, expires_at)
    SELECT scope, value, expires_at FROM api_nonces
    ON CONFLICT (scope, nonce) DO UPDATE SET expires_at = GREATEST(nonces.expires_at, EXCLUDED.expires_at);
DROP TABLE request_nonces;
DROP TABLE api_nonces;
CREATE INDEX nonces_expires_at ON nonces (expires_at);
