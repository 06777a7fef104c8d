package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// taskInsertColumns are the columns InsertTasks writes (id is assigned).
var taskInsertColumns = []string{"job_id", "tenant_id", "product_key", "device_name", "module", "state",
	"from_version", "to_version", "progress", "attempts", "reason", "detail",
	"notified_at", "started_at", "finished_at", "next_attempt_at", "created_at", "updated_at"}

const taskColumns = `id, job_id, tenant_id, product_key, device_name, module, state, from_version, to_version,
	progress, attempts, reason, detail, notified_at, started_at, finished_at, next_attempt_at, created_at, updated_at`

func scanTask(row pgx.Row) (ota.Task, error) {
	var t ota.Task
	var notified, started, finished, next, created, updated pgtype.Timestamptz
	err := row.Scan(&t.ID, &t.JobID, &t.TenantID, &t.ProductKey, &t.DeviceName, &t.Module, &t.State, &t.FromVersion, &t.ToVersion,
		&t.Progress, &t.Attempts, &t.Reason, &t.Detail, &notified, &started, &finished, &next, &created, &updated)
	if err != nil {
		return ota.Task{}, err
	}
	t.NotifiedAt, t.StartedAt, t.FinishedAt = fromTS(notified), fromTS(started), fromTS(finished)
	t.NextAttemptAt, t.CreatedAt, t.UpdatedAt = fromTS(next), fromTS(created), fromTS(updated)
	return t, nil
}

// insertAttempts bounds retries of a batch that lost a deadlock or
// serialization race; see InsertTasks.
const insertAttempts = 5

// InsertTasks inserts a batch in one transaction. A task whose device already
// has an active task on the module (tasks_one_active) is skipped, also when
// another replica inserts the same device at the same moment.
//
// The batch is first COPYed straight into tasks, the fastest way in; if a
// row breaks tasks_one_active, that COPY is rolled back (to a savepoint) and
// the batch goes through a staging table and INSERT … ON CONFLICT DO NOTHING,
// which skips exactly the conflicting rows.
//
// Rows go in (product, device, module) order, the same in every replica: two
// batches waiting on each other's uncommitted keys then wait in one
// direction, which rules out deadlocks between replicas inserting
// overlapping sets. A batch that loses such a race anyway (40P01/40001) is
// retried whole. Ids still follow the caller's order: a batch not already in
// key order (materialization walks devices by name, so usually it is) takes
// its ids from tasks_id_seq first.
func (s *Store) InsertTasks(ctx context.Context, tasks []ota.Task) (int64, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	b, err := s.newTaskBatch(ctx, tasks)
	if err != nil {
		return 0, err
	}
	var inserted int64
	for range insertAttempts {
		inserted, err = s.insertTasksOnce(ctx, b, true)
		if !isRetryable(err) {
			break
		}
	}
	return inserted, translate(err, "insert tasks")
}

// newTaskBatch orders tasks for insertion (see InsertTasks).
func (s *Store) newTaskBatch(ctx context.Context, tasks []ota.Task) (*taskBatch, error) {
	b := &taskBatch{tasks: tasks, order: make([]int, len(tasks))}
	for i := range b.order {
		b.order[i] = i
	}
	slices.SortStableFunc(b.order, func(i, j int) int {
		ti, tj := &tasks[i], &tasks[j]
		return cmp.Or(strings.Compare(ti.ProductKey, tj.ProductKey), strings.Compare(ti.DeviceName, tj.DeviceName),
			strings.Compare(ti.Module, tj.Module))
	})
	for i, o := range b.order {
		if i != o {
			ids, err := s.allocateTaskIDs(ctx, len(tasks))
			if err != nil {
				return nil, err
			}
			b.ids = ids
			break
		}
	}
	return b, nil
}

// writeJobTasks runs first (create the job, move its cursor) and inserts
// the job's tasks in the same transaction, storing those whose device's
// module another active task holds as skipped (ota.Task.SkipBusy): the
// insert skips them (ON CONFLICT DO NOTHING, also against a replica's
// concurrent insert), and the rows it did not write are found by name.
// A lost deadlock or serialization race runs the whole transaction again.
func (s *Store) writeJobTasks(ctx context.Context, tasks []ota.Task, first func(pgx.Tx) error) error {
	var b *taskBatch
	if len(tasks) > 0 {
		var err error
		if b, err = s.newTaskBatch(ctx, tasks); err != nil {
			return err
		}
	}
	var err error
	for range insertAttempts {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			if err := first(tx); err != nil {
				return err
			}
			if b == nil {
				return nil
			}
			// The common batch holds no busy device: one COPY stores it whole
			// and nothing needs looking up. Only a batch that hits the
			// one-active-task index goes the staged way and is checked by name.
			if n, err := copyTasks(ctx, tx, b); err == nil && n == int64(len(tasks)) {
				return nil
			} else if err != nil && !isUniqueViolation(err) {
				return err
			}
			inserted, err := insertTasksStaged(ctx, tx, b)
			if err != nil {
				return err
			}
			if inserted == int64(len(tasks)) {
				return nil
			}
			names := make([]string, len(tasks))
			for i := range tasks {
				names[i] = tasks[i].DeviceName
			}
			rows, err := tx.Query(ctx, `SELECT device_name FROM tasks WHERE job_id = $1 AND device_name = ANY($2)`,
				tasks[0].JobID, names)
			if err != nil {
				return err
			}
			stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			present := make(map[string]bool, len(stored))
			for _, n := range stored {
				present[n] = true
			}
			var busy [][]any
			for _, t := range tasks {
				if present[t.DeviceName] {
					continue
				}
				t.SkipBusy(t.UpdatedAt)
				busy = append(busy, []any{t.JobID, t.TenantID, t.ProductKey, t.DeviceName, t.Module, string(t.State),
					t.FromVersion, t.ToVersion, int32(t.Progress), int32(t.Attempts), string(t.Reason), t.Detail,
					ts(t.NotifiedAt), ts(t.StartedAt), ts(t.FinishedAt), ts(t.NextAttemptAt), ts(t.CreatedAt), ts(t.UpdatedAt)})
			}
			if len(busy) == 0 {
				return nil
			}
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"tasks"}, taskInsertColumns, pgx.CopyFromRows(busy))
			return err
		})
		if !isRetryable(err) {
			break
		}
	}
	return err
}

// allocateTaskIDs takes n increasing ids from the tasks' identity sequence.
func (s *Store) allocateTaskIDs(ctx context.Context, n int) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT nextval('tasks_id_seq') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, translate(err, "allocate task ids")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, translate(err, "allocate task ids")
	}
	slices.Sort(ids)
	return ids, nil
}

// taskBatch is the tasks of one InsertTasks call, the order they go in, and
// their ids when assigned here (ids[i] is tasks[i]'s).
type taskBatch struct {
	tasks []ota.Task
	order []int
	ids   []int64
}

// columns are the columns rows fills.
func (b *taskBatch) columns() []string {
	if b.ids != nil {
		return append([]string{"id"}, taskInsertColumns...)
	}
	return taskInsertColumns
}

// rows is the batch as a COPY source; withOrd adds each row's position.
func (b *taskBatch) rows(withOrd bool) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(b.order), func(i int) ([]any, error) {
		k := b.order[i]
		t := &b.tasks[k]
		row := make([]any, 0, len(taskInsertColumns)+2)
		if b.ids != nil {
			row = append(row, b.ids[k])
		}
		row = append(row, t.JobID, t.TenantID, t.ProductKey, t.DeviceName, t.Module, string(t.State),
			t.FromVersion, t.ToVersion, int32(t.Progress), int32(t.Attempts), string(t.Reason), t.Detail,
			ts(t.NotifiedAt), ts(t.StartedAt), ts(t.FinishedAt), ts(t.NextAttemptAt), ts(t.CreatedAt), ts(t.UpdatedAt))
		if withOrd {
			row = append(row, int32(i))
		}
		return row, nil
	})
}

func (b *taskBatch) jobIDs() []string {
	var ids []string
	for i := range b.tasks {
		if i == 0 || b.tasks[i].JobID != b.tasks[i-1].JobID {
			ids = append(ids, b.tasks[i].JobID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// isRetryable reports a deadlock or serialization failure: the transaction
// lost a race and may simply run again.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// isUniqueViolation reports a broken unique index (tasks_one_active).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// insertTasksOnce runs one attempt; direct false skips the straight COPY
// (benchmarks compare the two ways).
func (s *Store) insertTasksOnce(ctx context.Context, b *taskBatch, direct bool) (int64, error) {
	var inserted int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockJobs(ctx, tx, b.jobIDs()); err != nil {
			return err
		}
		if direct {
			n, err := copyTasks(ctx, tx, b)
			if err == nil {
				inserted = n
				return nil
			}
			if !isUniqueViolation(err) && !isRetryable(err) {
				return err
			}
		}
		n, err := insertTasksStaged(ctx, tx, b)
		inserted = n
		return err
	})
	return inserted, err
}

// lockJobs does what a foreign key would, once per batch instead of per row:
// the jobs must exist, and FOR KEY SHARE holds off DeleteJob until this batch
// is in, so it cannot leave tasks behind.
func lockJobs(ctx context.Context, tx pgx.Tx, ids []string) error {
	rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE id = ANY($1) FOR KEY SHARE`, ids)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.Contains(found, id) {
			return ota.NotFound("job", id)
		}
	}
	return nil
}

// copyTasks COPYs the batch into tasks under a savepoint, rolled back if any
// row fails.
func copyTasks(ctx context.Context, tx pgx.Tx, b *taskBatch) (int64, error) {
	sp, err := tx.Begin(ctx) // SAVEPOINT
	if err != nil {
		return 0, err
	}
	n, err := sp.CopyFrom(ctx, pgx.Identifier{"tasks"}, b.columns(), b.rows(false))
	if err != nil {
		if rerr := sp.Rollback(ctx); rerr != nil {
			return 0, rerr
		}
		return 0, err
	}
	return n, sp.Commit(ctx) // RELEASE SAVEPOINT
}

// insertTasksStaged COPYs the batch into a temporary table dropped at commit,
// then moves it into tasks, skipping conflicts.
func insertTasksStaged(ctx context.Context, tx pgx.Tx, b *taskBatch) (int64, error) {
	// Column types come from tasks itself.
	cols := b.columns()
	list := strings.Join(cols, ", ")
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE task_stage ON COMMIT DROP AS
		SELECT `+list+`, 0::integer AS ord FROM tasks WITH NO DATA`); err != nil {
		return 0, err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"task_stage"}, append(slices.Clone(cols), "ord"), b.rows(true)); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO tasks (`+list+`) SELECT `+list+` FROM task_stage
		ORDER BY ord ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (s *Store) GetTask(ctx context.Context, id int64) (ota.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id))
	if err != nil {
		return ota.Task{}, notFoundAs(err, "get task", ota.Errorf(ota.CodeNotFound, "task %d not found", id))
	}
	return t, nil
}

// taskWhere turns a filter into conditions; AfterID and Limit are the
// caller's (paging, not selection).
func taskWhere(f store.TaskFilter) *where {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = %s", f.TenantID)
	}
	if f.JobID != "" {
		w.add("job_id = %s", f.JobID)
	}
	if f.ProductKey != "" {
		w.add("product_key = %s", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = %s", f.Module)
	}
	if len(f.Devices) > 0 {
		w.add("device_name = ANY(%s)", f.Devices)
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		w.add("state = ANY(%s)", states)
		if onlyActive(f.States) {
			// Implied by the line above, but spelled as tasks_one_active's
			// predicate so the planner may use that index: a device's
			// active task is found without scanning its job.
			w.conds = append(w.conds, "state NOT IN "+terminalStates)
		}
	}
	if len(f.IDs) > 0 {
		w.add("id = ANY(%s)", f.IDs)
	}
	if !f.NotifiedBefore.IsZero() {
		w.add("notified_at < %s", f.NotifiedBefore)
	}
	if !f.StartedBefore.IsZero() {
		w.add("started_at < %s", f.StartedBefore)
	}
	if !f.NextAttemptBefore.IsZero() {
		w.add("next_attempt_at <= %s", f.NextAttemptBefore)
	}
	return w
}

func (s *Store) ListTasks(ctx context.Context, f store.TaskFilter, page store.Page, count bool) ([]ota.Task, int64, error) {
	w := taskWhere(f)
	total := int64(-1)
	if count {
		n, err := s.count(ctx, "tasks", w, "count tasks")
		if err != nil {
			return nil, 0, err
		}
		total = n
	}
	if f.AfterID > 0 {
		w.add("id > %s", f.AfterID)
	}
	q := `SELECT ` + taskColumns + ` FROM tasks` + w.String() +
		` ORDER BY id LIMIT ` + w.arg(limitOf(f.Limit, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list tasks", scanTask, q, w.args...)
	return list, total, err
}

// CountTasks sums the job's task_counts rows (kept by triggers, migration
// 0019) instead of counting its tasks.
func (s *Store) CountTasks(ctx context.Context, jobID string) (ota.TaskCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, sum(n)::bigint FROM task_counts WHERE job_id = $1 GROUP BY state HAVING sum(n) > 0`, jobID)
	if err != nil {
		return nil, translate(err, "count tasks")
	}
	counts := ota.TaskCounts{}
	var state string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		counts[ota.TaskState(state)] = n
		return nil
	})
	if err != nil {
		return nil, translate(err, "count tasks")
	}
	return counts, nil
}

func (s *Store) CountNotifiedSince(ctx context.Context, jobID string, since time.Time) (int64, error) {
	w := &where{}
	w.add("job_id = %s", jobID)
	w.add("notified_at >= %s", since)
	return s.count(ctx, "tasks", w, "count notified tasks")
}

// updateTaskSQL writes every mutable field of a task; the caller adds the
// WHERE, on $1 (the id) and $2 (what the row must still be), and passes
// updateTaskArgs.
const updateTaskSQL = `UPDATE tasks SET state = $3, from_version = $4, progress = $5, attempts = $6, reason = $7, detail = $8,
	notified_at = $9, started_at = $10, finished_at = $11, next_attempt_at = $12, updated_at = $13`

func updateTaskArgs(t ota.Task, guard any) []any {
	return []any{t.ID, guard, t.State, t.FromVersion, t.Progress, t.Attempts, t.Reason, t.Detail,
		ts(t.NotifiedAt), ts(t.StartedAt), ts(t.FinishedAt), ts(t.NextAttemptAt), ts(t.UpdatedAt)}
}

// UpdateTask writes the fields that change over a task's life if its state is
// still expect. The identity (job, device, module, destination) stays.
func (s *Store) UpdateTask(ctx context.Context, t ota.Task, expect ota.TaskState) error {
	tag, err := s.exec(ctx, updateTaskSQL+` WHERE id = $1 AND state = $2`, updateTaskArgs(t, expect)...)
	if err != nil {
		return conflictAs(translate(err, "update task"),
			"device %q already has an active task on module %q", t.DeviceName, t.Module)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	cur, err := s.GetTask(ctx, t.ID)
	if err != nil {
		return err
	}
	return ota.Errorf(ota.CodeConflict, "task %d is %s, not %s: it changed meanwhile; reload it and try again", t.ID, cur.State, expect)
}

// modifyAttempts bounds ModifyTask's read-change-write rounds when other
// writers keep changing the task in between.
const modifyAttempts = 8

// ModifyTask reads the task with its row version (xmin, which every update
// of the row changes) and writes change's result only if the row still has
// that version: two round trips and no lock held while change runs. A
// write that finds the row changed reads it again and runs change on the
// fresher copy.
func (s *Store) ModifyTask(ctx context.Context, id int64, change func(t *ota.Task) error) (ota.Task, error) {
	t, err := s.modifyTask(ctx, change, `SELECT xmin::text, `+taskColumns+` FROM tasks WHERE id = $1`, id)
	if err == errNoTask {
		return ota.Task{}, ota.Errorf(ota.CodeNotFound, "task %d not found", id)
	}
	return t, err
}

// ApplyVersionReport: see store.Tasks. The version is written (and
// committed) first, then the active task is changed as ModifyTask does,
// then the running dynamic jobs are read: after the version's commit, so a
// job that starts running meanwhile either is seen here or scans a fleet
// that has the version.
func (s *Store) ApplyVersionReport(ctx context.Context, r store.VersionReport, change func(t *ota.Task) error) (store.VersionApplied, error) {
	module := r.Module
	if module == "" {
		module = ota.DefaultModule
	}
	if err := s.SetDeviceVersion(ctx, r.ProductKey, r.DeviceName, module, r.Version, r.At); err != nil {
		return store.VersionApplied{}, err
	}
	var out store.VersionApplied
	t, err := s.modifyTask(ctx, change, `SELECT xmin::text, `+taskColumns+` FROM tasks
		WHERE product_key = $1 AND device_name = $2 AND module = $3 AND state NOT IN `+terminalStates,
		r.ProductKey, r.DeviceName, module)
	switch {
	case err == errNoTask:
	case err != nil:
		return store.VersionApplied{}, err
	default:
		out.Task = &t
	}
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs
		WHERE product_key = $1 AND module = $2 AND selection = $3 AND state = $4)`,
		r.ProductKey, module, string(ota.SelectDynamic), string(ota.JobRunning)).Scan(&out.DynamicJobs)
	if err != nil {
		return store.VersionApplied{}, translate(err, "read running dynamic jobs")
	}
	return out, nil
}

// errNoTask is modifyTask's answer when its query finds no task.
var errNoTask = errors.New("no such task")

// modifyTask runs ModifyTask's rounds on the task query finds (its first
// column the row version, then taskColumns): errNoTask when it finds none,
// change's error unchanged.
func (s *Store) modifyTask(ctx context.Context, change func(t *ota.Task) error, query string, args ...any) (ota.Task, error) {
	for attempt := 1; ; attempt++ {
		var version string
		t, err := scanTask(versionedRow{s.pool.QueryRow(ctx, query, args...), &version})
		if errors.Is(err, pgx.ErrNoRows) {
			return ota.Task{}, errNoTask
		}
		if err != nil {
			return ota.Task{}, translate(err, "get task")
		}
		before := t
		if err := change(&t); err != nil {
			return ota.Task{}, err
		}
		t.ID = before.ID
		if t == before {
			return t, nil // nothing to write: as if written when read
		}
		tag, err := s.exec(ctx, updateTaskSQL+` WHERE id = $1 AND xmin::text = $2`, updateTaskArgs(t, version)...)
		if err != nil {
			return ota.Task{}, conflictAs(translate(err, "modify task"),
				"device %q already has an active task on module %q", t.DeviceName, t.Module)
		}
		if tag.RowsAffected() == 1 {
			return t, nil
		}
		if attempt == modifyAttempts {
			return ota.Task{}, ota.Errorf(ota.CodeConflict, "task %d kept changing (%d attempts); reload it and try again", t.ID, attempt)
		}
	}
}

// SetTaskProgress: see store.Tasks. One statement over the reports as
// arrays, so the statement-level task_counts trigger runs once per flush
// rather than once per report (and moves nothing: no state changes).
func (s *Store) SetTaskProgress(ctx context.Context, reports []store.TaskProgress) ([]int64, error) {
	if len(reports) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(reports))
	progress := make([]int32, len(reports))
	details := make([]string, len(reports))
	at := make([]time.Time, len(reports))
	for i, r := range reports {
		ids[i], progress[i], details[i], at[i] = r.TaskID, int32(r.Progress), r.Detail, r.At
	}
	rows, err := s.pool.Query(ctx, `UPDATE tasks t SET progress = r.progress, detail = r.detail, updated_at = r.at
		FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::timestamptz[]) AS r(id, progress, detail, at)
		WHERE t.id = r.id AND t.state = $5 AND (t.updated_at IS NULL OR t.updated_at <= r.at)
		RETURNING t.id`, ids, progress, details, at, string(ota.TaskInProgress))
	if err != nil {
		return nil, translate(err, "set task progress")
	}
	written, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, translate(err, "set task progress")
	}
	return written, nil
}

// versionedRow scans a row whose first column is the row version into
// version, and the rest as the row it prefixes.
type versionedRow struct {
	pgx.Row
	version *string
}

func (r versionedRow) Scan(dest ...any) error {
	return r.Row.Scan(append([]any{r.version}, dest...)...)
}

// UpdateTasks applies u to the tasks f selects. With f.Limit it takes the
// first Limit of them in id order that no other transaction holds (SKIP
// LOCKED), so replicas sweeping the same tasks share the work.
//
// A task that would become a second active task on its device's module is
// left unchanged and not counted (as SQLite's UPDATE OR IGNORE does): when u
// makes tasks active, a terminal task is taken only if no active task holds
// its (product, device, module), and only the lowest id of several.
func (s *Store) UpdateTasks(ctx context.Context, f store.TaskFilter, u store.TaskUpdate) (int64, error) {
	w := taskWhere(f)
	if f.AfterID > 0 {
		w.add("id > %s", f.AfterID)
	}
	sel := w.String()
	if f.Limit > 0 {
		sel = ` WHERE id = ANY(ARRAY(SELECT id FROM tasks` + sel + ` ORDER BY id LIMIT ` + w.arg(f.Limit) + ` FOR UPDATE SKIP LOCKED))`
	}
	if u.State.Active() && !onlyActive(f.States) {
		if sel == "" {
			sel = " WHERE true"
		}
		sel = ` WHERE id IN (SELECT DISTINCT ON (product_key, device_name, module) id FROM tasks c` + sel + `
			AND (c.state NOT IN ` + terminalStates + ` OR NOT EXISTS (SELECT 1 FROM tasks o
				WHERE o.product_key = c.product_key AND o.device_name = c.device_name AND o.module = c.module
				AND o.state NOT IN ` + terminalStates + `))
			ORDER BY product_key, device_name, module, id)`
	}
	set := `state = ` + w.arg(string(u.State)) + `, reason = ` + w.arg(string(u.Reason)) +
		`, detail = ` + w.arg(u.Detail) + `, updated_at = ` + w.arg(ts(u.Now))
	if u.State.Terminal() {
		set += `, finished_at = ` + w.arg(ts(u.Now))
	}
	if u.State == ota.TaskRetryWait {
		set += `, next_attempt_at = ` + w.arg(ts(u.NextAttemptAt))
	}
	tag, err := s.exec(ctx, `UPDATE tasks SET `+set+sel, w.args...)
	if err != nil {
		return 0, conflictAs(translate(err, "update tasks"),
			"a device got another active task on the module meanwhile: try again")
	}
	return tag.RowsAffected(), nil
}

// onlyActive reports whether states names active states only (then tasks
// already hold their slot in tasks_one_active, and changing them between
// active states cannot conflict).
func onlyActive(states []ota.TaskState) bool {
	for _, st := range states {
		if st.Terminal() {
			return false
		}
	}
	return len(states) > 0
}

// terminalStates is the SQL list of ota's terminal task states, written as in
// the predicate of tasks_one_active so the planner can use that index.
const terminalStates = `('succeeded', 'failed', 'canceled', 'skipped')`

// claimLockSQL serializes a job's claims across every pool on the database
// (replicas), so that the count that follows it is not stale by the time the
// claim commits. An advisory lock rather than the job row: row locks would
// also wait for task inserts (FOR KEY SHARE) and job updates. The schema is
// part of the key, so jobs of other schemas (tests) never wait on each other.
const claimLockSQL = `SELECT pg_advisory_xact_lock(hashtext('updraft.claim:' || current_schema()), hashtext($1))`

// claimSQL claims ($1 job, $2 after id, $3 limit, $4 now). The ids are
// picked first (an InitPlan, run once) so the UPDATE reaches its rows through
// the primary key whatever the planner thinks of the subquery's size.
const claimSQL = `UPDATE tasks SET state = 'notified', attempts = attempts + 1, notified_at = $4, updated_at = $4
	WHERE id = ANY(ARRAY(
		SELECT id FROM tasks WHERE job_id = $1 AND state = 'queued' AND id > $2
		ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)) RETURNING ` + taskColumns

// dispatchedStates is ota.DispatchedTaskStates as query text.
var dispatchedStates = func() []string {
	out := make([]string, len(ota.DispatchedTaskStates))
	for i, st := range ota.DispatchedTaskStates {
		out[i] = string(st)
	}
	return out
}()

// ClaimTasks claims within the job's pace (store.ClaimRequest). In one
// transaction: the job's claim lock, the counts (tasks_job_state_id and
// tasks_job_notified, each O(what it counts) ≤ the cap or the rate), then the
// claim. The claim's inner SELECT walks tasks_job_state_id from AfterID
// (keyset), so it costs O(Limit) however far the job has progressed, and SKIP
// LOCKED passes over tasks a device report holds at that moment.
func (s *Store) ClaimTasks(ctx context.Context, r store.ClaimRequest) (store.Claimed, error) {
	var out store.Claimed
	if r.Limit <= 0 {
		return out, nil
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, claimLockSQL, r.JobID); err != nil {
			return err
		}
		room := int64(-1) // no pace
		if r.MaxActive > 0 {
			var active int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE job_id = $1 AND state = ANY($2)`,
				r.JobID, dispatchedStates).Scan(&active); err != nil {
				return err
			}
			room = max(int64(r.MaxActive)-active, 0)
		}
		if r.MaxPerMinute > 0 {
			var recent int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE job_id = $1 AND notified_at >= $2`,
				r.JobID, ts(r.Now.Add(-store.RateWindow))).Scan(&recent); err != nil {
				return err
			}
			rate := max(int64(r.MaxPerMinute)-recent, 0)
			if room < 0 || rate < room {
				room = rate
			}
		}
		limit := int64(r.Limit)
		if room >= 0 && room < limit {
			limit = room
		}
		if limit > 0 {
			rows, err := tx.Query(ctx, claimSQL, r.JobID, r.AfterID, limit, ts(r.Now))
			if err != nil {
				return err
			}
			if out.Tasks, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ota.Task, error) { return scanTask(row) }); err != nil {
				return err
			}
		}
		out.Full = room >= 0 && room <= int64(len(out.Tasks))
		return nil
	})
	if err != nil {
		return store.Claimed{}, translate(err, "claim tasks")
	}
	// RETURNING has no order.
	slices.SortFunc(out.Tasks, func(a, b ota.Task) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
