-- 0004: one device protocol per product (and how its devices authenticate);
-- the device id a protocol derives (Huawei: {product}_{device}) is unique
-- across all tenants, so one tenant's device can never take another's.
ALTER TABLE products
    ADD COLUMN protocol text NOT NULL DEFAULT 'native',
    ADD COLUMN auth     text NOT NULL DEFAULT 'secret';
ALTER TABLE devices ADD COLUMN protocol_id text;
CREATE UNIQUE INDEX devices_protocol_id ON devices (protocol_id) WHERE protocol_id IS NOT NULL;
