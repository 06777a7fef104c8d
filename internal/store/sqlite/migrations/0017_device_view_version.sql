-- 0017: the device view's version as a counter that moves only on the
-- changes store.Store.DeviceViewVersion names (a task inserted or reopened,
-- a device deleted or its secret changed), as on PostgreSQL (0004). Until
-- now it was PRAGMA data_version, which moves on every commit: during a
-- rollout every progress report emptied each replica's memory of device
-- credentials, so every check-in read its device again.
--
-- SQLite triggers run per row. Task inserts pay one update of this one-row
-- table each; the other triggers fire on rare changes only.
CREATE TABLE device_view_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO device_view_version (id, n) VALUES (1, 0);

CREATE TRIGGER tasks_inserted_bump_device_view AFTER INSERT ON tasks
BEGIN
    UPDATE device_view_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER tasks_reopened_bump_device_view AFTER UPDATE OF state ON tasks
    WHEN OLD.state IN ('succeeded', 'failed', 'canceled', 'skipped')
     AND NEW.state NOT IN ('succeeded', 'failed', 'canceled', 'skipped')
BEGIN
    UPDATE device_view_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER devices_deleted_bump_device_view AFTER DELETE ON devices
BEGIN
    UPDATE device_view_version SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER devices_secret_bump_device_view AFTER UPDATE OF secret ON devices
BEGIN
    UPDATE device_view_version SET n = n + 1 WHERE id = 1;
END;
