-- 0011: device attributes and tags (key → value JSON objects), by which jobs
-- may target devices (EnOS upgradeScope attributes/tags).
ALTER TABLE devices ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE devices ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
