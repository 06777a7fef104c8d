-- 0019: each job's task counts by state (store.Store.CountTasks), kept by
-- triggers in the transaction that changes the tasks. The engine counts every
-- running job's tasks on every tick and every job read shows them; counting
-- the rows each time cost a scan of the job's tasks (a million index entries,
-- each checked against its heap page while the rows are fresh) and made a big
-- job's creation and rollout pay for it over and over.
--
-- A row per (job, state, backend): a trigger adds to the row of the backend
-- that runs it (pg_backend_pid()). Two transactions running at once are on two
-- backends, so they never wait for each other's count rows (one shared row
-- per state would serialise every task change of a job on its lock, fsync
-- included). A job's count is the sum over backends; a job has at most a few
-- rows per state for each connection that ever wrote its tasks.
CREATE TABLE task_counts (
    job_id  text    NOT NULL,
    state   text    NOT NULL,
    backend integer NOT NULL,
    n       bigint  NOT NULL,
    PRIMARY KEY (job_id, state, backend)
);

-- Per statement, from the statement's transition tables: a COPY of 5 000
-- tasks adds one row's worth, not 5 000. Rows are locked in (job, state) order.
CREATE FUNCTION task_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_counts (job_id, state, backend, n)
    SELECT job_id, state, pg_backend_pid(), count(*) FROM new_tasks
     GROUP BY job_id, state ORDER BY job_id, state
    ON CONFLICT (job_id, state, backend) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION task_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_counts (job_id, state, backend, n)
    SELECT job_id, state, pg_backend_pid(), sum(d) FROM (
        SELECT job_id, state, 1 AS d FROM new_tasks
        UNION ALL
        SELECT job_id, state, -1 FROM old_tasks) AS moves
     GROUP BY job_id, state HAVING sum(d) <> 0 ORDER BY job_id, state
    ON CONFLICT (job_id, state, backend) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION task_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_counts (job_id, state, backend, n)
    SELECT job_id, state, pg_backend_pid(), -count(*) FROM old_tasks
     GROUP BY job_id, state ORDER BY job_id, state
    ON CONFLICT (job_id, state, backend) DO UPDATE SET n = task_counts.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

-- Transition tables cannot go with a column list (UPDATE OF state): every
-- update fires the trigger, and one that moves no task between states (a
-- progress report) writes nothing.
CREATE TRIGGER tasks_inserted_count AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_inserted();
CREATE TRIGGER tasks_updated_count AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_tasks NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_updated();
CREATE TRIGGER tasks_deleted_count AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_deleted();

-- The tasks already there. Creating the triggers locked tasks against writes
-- until this migration commits, so nothing is counted twice or missed.
INSERT INTO task_counts (job_id, state, backend, n)
SELECT job_id, state, 0, count(*) FROM tasks GROUP BY job_id, state;
