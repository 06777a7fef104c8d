-- 0013: device attributes and tags (key → value JSON objects), by which jobs
-- may target devices (EnOS upgradeScope attributes/tags); jsonb so that a
-- target's pairs are one containment test (@>).
ALTER TABLE devices ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE devices ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
