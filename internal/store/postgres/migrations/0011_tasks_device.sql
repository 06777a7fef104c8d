-- 0011: jobs by device (Alibaba ListOTAJobByDevice, store.JobFilter.Device)
-- look tasks up by device; SQLite has had tasks_device since 0001.
CREATE INDEX tasks_device ON tasks (product_key, device_name);
