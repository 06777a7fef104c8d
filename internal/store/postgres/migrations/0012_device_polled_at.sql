-- When a device last asked over device HTTP (it holds no connection, so it
-- is never "online"): metrics count such devices as present per protocol.
ALTER TABLE devices ADD COLUMN polled_at timestamptz;
