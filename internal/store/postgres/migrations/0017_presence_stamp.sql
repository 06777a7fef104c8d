-- The stamp of the last presence status applied to a device (0: none or
-- unordered): statuses coming through an external broker are applied in
-- stamp order, an older one is ignored (store.Devices.SetDeviceOnline).
ALTER TABLE devices ADD COLUMN presence_stamp BIGINT NOT NULL DEFAULT 0;
