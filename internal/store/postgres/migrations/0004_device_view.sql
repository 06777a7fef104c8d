-- Replicas remember what devices ask for most (their credentials, "nothing
-- pending") and forget it when this number moves (store.Store.DeviceViewVersion):
-- reading one row instead of the tables is what lets an idle check-in cost
-- no query of its own. It moves once per transaction that inserts tasks,
-- moves a finished task back to an active state (operator retry), deletes a
-- device or changes its secret. It is bumped in the writing transaction, so
-- it becomes visible exactly when the change does. The bump takes this
-- row's lock until commit: transactions inserting tasks queue on it, which
-- is cheap next to their inserts (job creation, dynamic matches), and task
-- updates (claims, progress) do not take it unless they reopen a task.
CREATE TABLE device_view_version (
    id   integer PRIMARY KEY CHECK (id = 1),
    n    bigint NOT NULL,
    xact xid8    -- the last transaction that bumped n: one bump per transaction
);
INSERT INTO device_view_version (id, n) VALUES (1, 0);

CREATE FUNCTION bump_device_view_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_view_version SET n = n + 1, xact = pg_current_xact_id()
     WHERE id = 1 AND xact IS DISTINCT FROM pg_current_xact_id();
    RETURN NULL;
END
$$;

-- Per statement, not per row: a batch of a million inserted tasks bumps once
-- (an insert that inserts nothing bumps too, which only costs a re-read).
CREATE TRIGGER tasks_inserted_bump_device_view AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION bump_device_view_version();
-- Per row but filtered in the trigger's WHEN, evaluated without calling the
-- function: only a reopened task (failed/canceled/succeeded/skipped →
-- active) pays.
CREATE TRIGGER tasks_reopened_bump_device_view AFTER UPDATE OF state ON tasks
    FOR EACH ROW
    WHEN (OLD.state IN ('succeeded', 'failed', 'canceled', 'skipped')
          AND NEW.state NOT IN ('succeeded', 'failed', 'canceled', 'skipped'))
    EXECUTE FUNCTION bump_device_view_version();
CREATE TRIGGER devices_deleted_bump_device_view AFTER DELETE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_device_view_version();
CREATE TRIGGER devices_secret_bump_device_view AFTER UPDATE OF secret ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_device_view_version();
