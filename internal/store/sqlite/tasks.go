package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

const taskInsertCols = `job_id, tenant_id, product_key, device_name, module, state, from_version, to_version,
	progress, attempts, reason, detail, notified_at, started_at, finished_at, next_attempt_at, created_at, updated_at`

const taskInsertArgs = 18

const taskCols = "id, " + taskInsertCols

// insertRowsPerStatement rows go into one multi-row INSERT: far fewer calls
// through the driver than one row per statement, well under SQLite's limit of
// 32 766 parameters. 250 divides the engine's batches of 5 000.
const insertRowsPerStatement = 250

// The partial unique index tasks_one_active makes a second active task for
// the same (product, device, module) a conflict; ON CONFLICT DO NOTHING skips
// it, also within one statement.

// insertTasksSQL is the general statement: every value of every row bound.
func insertTasksSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO tasks (" + taskInsertCols + ") VALUES ")
	row := "(" + strings.Repeat("?, ", taskInsertArgs-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	return b.String()
}

// Tasks materialized for one job share every column but the device and its
// current version. For such a run, insertSharedSQL binds the 16 shared
// values once and two values per row, which halves the driver's per-row cost
// (each bound string is copied into C memory). Ids follow the order of the
// VALUES list, as the contract suite checks.
const sharedCols = `job_id, tenant_id, product_key, module, state, to_version, progress, attempts, reason, detail,
	notified_at, started_at, finished_at, next_attempt_at, created_at, updated_at`

const sharedArgs = 16

// The shared values come in once through a one-row CTE and the per-row ones
// through a VALUES list, all as anonymous parameters: the driver looks up
// each parameter's name, which for numbered ones (?NNN) is a linear scan.
// "WHERE true" resolves the upsert parsing ambiguity of INSERT … SELECT.
func insertSharedSQL(rows int) string {
	var b strings.Builder
	b.WriteString("WITH shared AS (SELECT " + strings.Repeat("?, ", sharedArgs-1) + "?) ")
	b.WriteString("INSERT INTO tasks (" + sharedCols + ", device_name, from_version) SELECT shared.*, v.column1, v.column2 FROM shared, (VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
	}
	b.WriteString(") v WHERE true ON CONFLICT DO NOTHING")
	return b.String()
}

var (
	insertTasksFull  = insertTasksSQL(insertRowsPerStatement)
	insertSharedFull = insertSharedSQL(insertRowsPerStatement)
)

func appendTaskArgs(args []any, t *ota.Task) []any {
	return append(args, t.JobID, t.TenantID, t.ProductKey, t.DeviceName, t.Module, string(t.State), t.FromVersion,
		t.ToVersion, t.Progress, t.Attempts, string(t.Reason), t.Detail, dbTime(t.NotifiedAt), dbTime(t.StartedAt),
		dbTime(t.FinishedAt), dbTime(t.NextAttemptAt), dbTime(t.CreatedAt), dbTime(t.UpdatedAt))
}

func appendSharedArgs(args []any, t *ota.Task) []any {
	return append(args, t.JobID, t.TenantID, t.ProductKey, t.Module, string(t.State), t.ToVersion, t.Progress,
		t.Attempts, string(t.Reason), t.Detail, dbTime(t.NotifiedAt), dbTime(t.StartedAt), dbTime(t.FinishedAt),
		dbTime(t.NextAttemptAt), dbTime(t.CreatedAt), dbTime(t.UpdatedAt))
}

// sameShared reports whether a and b agree on every shared column.
func sameShared(a, b *ota.Task) bool {
	return a.JobID == b.JobID && a.TenantID == b.TenantID && a.ProductKey == b.ProductKey && a.Module == b.Module &&
		a.State == b.State && a.ToVersion == b.ToVersion && a.Progress == b.Progress && a.Attempts == b.Attempts &&
		a.Reason == b.Reason && a.Detail == b.Detail && a.NotifiedAt.Equal(b.NotifiedAt) &&
		a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt) && a.NextAttemptAt.Equal(b.NextAttemptAt) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

// InsertTasks inserts tasks in one transaction, in order, assigning ids. A
// task whose (product, device, module) already has an active task, in the
// table or earlier in tasks, is skipped. t.ID is ignored.
func (s *Store) InsertTasks(ctx context.Context, tasks []ota.Task) (int64, error) {
	if len(tasks) == 0 {
		return 0, nil
	}
	var inserted int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		inserted, err = insertTasksTx(ctx, tx, tasks)
		return err
	})
	if err != nil {
		return 0, dbError(err, "insert tasks")
	}
	return inserted, nil
}

// insertTasksTx is InsertTasks inside the caller's transaction.
func insertTasksTx(ctx context.Context, tx *sql.Tx, tasks []ota.Task) (int64, error) {
	var inserted int64
	stmts := map[string]*sql.Stmt{} // prepared once per call and shape
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	exec := func(query string, args []any) error {
		st := stmts[query]
		if st == nil {
			var err error
			if st, err = tx.PrepareContext(ctx, query); err != nil {
				return err
			}
			stmts[query] = st
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		inserted += n
		return err
	}
	args := make([]any, 0, insertRowsPerStatement*taskInsertArgs)
	for start := 0; start < len(tasks); start += insertRowsPerStatement {
		chunk := tasks[start:min(start+insertRowsPerStatement, len(tasks))]
		shared := true
		for i := 1; i < len(chunk) && shared; i++ {
			shared = sameShared(&chunk[0], &chunk[i])
		}
		args = args[:0]
		var query string
		if shared {
			args = appendSharedArgs(args, &chunk[0])
			for i := range chunk {
				args = append(args, chunk[i].DeviceName, chunk[i].FromVersion)
			}
			query = insertSharedFull
			if len(chunk) != insertRowsPerStatement {
				query = insertSharedSQL(len(chunk))
			}
		} else {
			for i := range chunk {
				args = appendTaskArgs(args, &chunk[i])
			}
			query = insertTasksFull
			if len(chunk) != insertRowsPerStatement {
				query = insertTasksSQL(len(chunk))
			}
		}
		if err := exec(query, args); err != nil {
			return inserted, err
		}
	}
	return inserted, nil
}

func scanTask(r rowScanner) (ota.Task, error) {
	var t ota.Task
	var state, reason string
	var notified, started, finished, next, created, updated sql.NullInt64
	err := r.Scan(&t.ID, &t.JobID, &t.TenantID, &t.ProductKey, &t.DeviceName, &t.Module, &state, &t.FromVersion, &t.ToVersion,
		&t.Progress, &t.Attempts, &reason, &t.Detail, &notified, &started, &finished, &next, &created, &updated)
	if err != nil {
		return ota.Task{}, err
	}
	t.State = ota.TaskState(state)
	t.Reason = ota.Reason(reason)
	t.NotifiedAt = goTime(notified)
	t.StartedAt = goTime(started)
	t.FinishedAt = goTime(finished)
	t.NextAttemptAt = goTime(next)
	t.CreatedAt = goTime(created)
	t.UpdatedAt = goTime(updated)
	return t, nil
}

func (s *Store) GetTask(ctx context.Context, id int64) (ota.Task, error) {
	t, err := scanTask(s.read.QueryRowContext(ctx, "SELECT "+taskCols+" FROM tasks WHERE id = ?", id))
	if err == sql.ErrNoRows {
		return ota.Task{}, ota.Errorf(ota.CodeNotFound, "task %d not found", id)
	}
	return t, dbError(err, "get task")
}

// taskWhere is the selection of f without AfterID and Limit.
//
// Known states go into the SQL as literals so that SQLite can match the
// partial indexes (tasks_one_active, tasks_retry). The time ranges are
// written +col: that keeps the planner on (job_id, state, id) for "this
// job's notified tasks notified before t" instead of walking every task the
// job ever notified through tasks_job_notified.
func taskWhere(f store.TaskFilter) *where {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = ?", f.TenantID)
	}
	if f.JobID != "" {
		w.add("job_id = ?", f.JobID)
	}
	if f.ProductKey != "" {
		w.add("product_key = ?", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = ?", f.Module)
	}
	if len(f.Devices) > 0 {
		w.in("device_name", f.Devices)
	}
	if len(f.States) > 0 {
		if lit, ok := stateLiterals(f.States); ok {
			w.add("state IN (" + lit + ")")
		} else {
			w.in("state", stateStrings(f.States))
		}
	}
	if len(f.IDs) > 0 {
		w.in("id", f.IDs)
	}
	if !f.NotifiedBefore.IsZero() {
		w.add("+notified_at < ?", f.NotifiedBefore.UnixMicro())
	}
	if !f.StartedBefore.IsZero() {
		w.add("+started_at < ?", f.StartedBefore.UnixMicro())
	}
	if !f.NextAttemptBefore.IsZero() {
		w.add("next_attempt_at <= ?", f.NextAttemptBefore.UnixMicro())
	}
	return w
}

// activeStateLiterals is ota.ActiveTaskStates as the one-active-task
// index's WHERE writes it, so that a query naming it can use the index.
var activeStateLiterals, _ = stateLiterals(ota.ActiveTaskStates)

// stateLiterals renders states as SQL string literals, in lifecycle order
// (so equal sets give equal SQL); ok is false if one is not a known state,
// which then must be bound instead.
func stateLiterals(states []ota.TaskState) (string, bool) {
	var parts []string
	for _, known := range ota.TaskStates {
		if slices.Contains(states, known) {
			parts = append(parts, "'"+string(known)+"'")
		}
	}
	for _, s := range states {
		if !slices.Contains(ota.TaskStates, s) {
			return "", false
		}
	}
	return strings.Join(parts, ", "), true
}

// ListTasks returns matching tasks in id order; the count (when asked)
// ignores AfterID and the limits.
func (s *Store) ListTasks(ctx context.Context, f store.TaskFilter, page store.Page, count bool) ([]ota.Task, int64, error) {
	w := taskWhere(f)
	total := int64(-1)
	if count {
		if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM tasks"+w.String(), w.args...).Scan(&total); err != nil {
			return nil, 0, dbError(err, "count tasks")
		}
	}
	if f.AfterID > 0 {
		w.add("id > ?", f.AfterID)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+taskCols+" FROM tasks"+w.String()+" ORDER BY id LIMIT ? OFFSET ?",
		append(w.args, sqlcommon.Limit(page.Limit, f.Limit), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list tasks")
	}
	out, err := collect(rows, scanTask)
	if err != nil {
		return nil, 0, dbError(err, "list tasks")
	}
	return out, total, nil
}

// CountTasks counts a job's tasks per state; states without tasks are absent.
func (s *Store) CountTasks(ctx context.Context, jobID string) (ota.TaskCounts, error) {
	rows, err := s.read.QueryContext(ctx, "SELECT state, count(*) FROM tasks WHERE job_id = ? GROUP BY state", jobID)
	if err != nil {
		return nil, dbError(err, "count tasks")
	}
	defer rows.Close()
	counts := ota.TaskCounts{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, dbError(err, "count tasks")
		}
		counts[ota.TaskState(state)] = n
	}
	return counts, dbError(rows.Err(), "count tasks")
}

func (s *Store) CountNotifiedSince(ctx context.Context, jobID string, since time.Time) (int64, error) {
	var n int64
	err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM tasks WHERE job_id = ? AND notified_at >= ?",
		jobID, since.UnixMicro()).Scan(&n)
	return n, dbError(err, "count notified tasks")
}

// UpdateTask writes every mutable field of t if its stored state is expect.
// CodeConflict also when the new state is active and another active task
// holds the device's module.
//
// SQLite rewrites an index entry whenever one of the index's columns is in
// an UPDATE's SET list, even to the same value, so writing every column
// cost four WAL pages per progress report where the row's one page
// suffices. The first statement therefore leaves out the indexed columns
// that do not change: state when it stays expect, and notified_at, which it
// requires to be unchanged instead. It writes one row in the usual case;
// when it writes none (a new notice time, or a stale expected state), the
// full statement runs and tells the two apart.
func (s *Store) UpdateTask(ctx context.Context, t ota.Task, expect ota.TaskState) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		set := "from_version = ?, progress = ?, attempts = ?, reason = ?, detail = ?, started_at = ?, finished_at = ?, next_attempt_at = ?, updated_at = ?"
		args := []any{t.FromVersion, t.Progress, t.Attempts, string(t.Reason), t.Detail,
			dbTime(t.StartedAt), dbTime(t.FinishedAt), dbTime(t.NextAttemptAt), dbTime(t.UpdatedAt)}
		if t.State != expect {
			set = "state = ?, " + set
			args = append([]any{string(t.State)}, args...)
		}
		wrote, err := updateTaskRow(ctx, tx, t, "UPDATE tasks SET "+set+" WHERE id = ? AND state = ? AND notified_at IS ?",
			append(args, t.ID, string(expect), dbTime(t.NotifiedAt))...)
		if err != nil || wrote {
			return err
		}
		wrote, err = updateTaskRow(ctx, tx, t, `UPDATE tasks SET state = ?, from_version = ?, progress = ?, attempts = ?, reason = ?,
			detail = ?, notified_at = ?, started_at = ?, finished_at = ?, next_attempt_at = ?, updated_at = ?
			WHERE id = ? AND state = ?`,
			string(t.State), t.FromVersion, t.Progress, t.Attempts, string(t.Reason), t.Detail, dbTime(t.NotifiedAt),
			dbTime(t.StartedAt), dbTime(t.FinishedAt), dbTime(t.NextAttemptAt), dbTime(t.UpdatedAt), t.ID, string(expect))
		if err != nil || wrote {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, "SELECT state FROM tasks WHERE id = ?", t.ID).Scan(&state)
		if err == sql.ErrNoRows {
			return ota.Errorf(ota.CodeNotFound, "task %d not found", t.ID)
		}
		if err != nil {
			return err
		}
		return ota.Errorf(ota.CodeConflict, "task %d is %s, not %s", t.ID, state, expect)
	})
	return dbError(err, "update task")
}

// updateTaskRow runs an UPDATE of t's row and reports whether it wrote it.
// A unique violation is the one-active-task rule: t would be a second
// active task on its device's module.
func updateTaskRow(ctx context.Context, tx *sql.Tx, t ota.Task, query string, args ...any) (bool, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return false, ota.Errorf(ota.CodeConflict, "device %q already has an active task on module %q", t.DeviceName, t.Module)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ModifyTask reads, changes and writes the task in one write transaction:
// the read is on the writer, so no other write can come between it and the
// write, change runs once, and only the columns it changed are written (see
// UpdateTask for why that matters to SQLite). The read also costs less there
// than on a reader, whose page cache SQLite drops after every commit.
func (s *Store) ModifyTask(ctx context.Context, id int64, change func(t *ota.Task) error) (ota.Task, error) {
	var out ota.Task
	var changeErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := scanTask(tx.QueryRowContext(ctx, "SELECT "+taskCols+" FROM tasks WHERE id = ?", id))
		if err == sql.ErrNoRows {
			return ota.Errorf(ota.CodeNotFound, "task %d not found", id)
		}
		if err != nil {
			return err
		}
		if out, changeErr, err = changeTaskRow(ctx, tx, t, change); changeErr != nil {
			return changeErr
		}
		return err
	})
	if changeErr != nil {
		return ota.Task{}, changeErr // change's own verdict, unchanged
	}
	return out, dbError(err, "modify task")
}

// ApplyVersionReport: see store.Tasks. One write transaction on the
// writer: the version, the active task read and changed where it is
// written, and the running dynamic jobs read after the version (SQLite's
// writes are serial, so a job that starts running commits before this
// transaction, and is seen, or after it, and its fleet scan sees the
// version).
func (s *Store) ApplyVersionReport(ctx context.Context, r store.VersionReport, change func(t *ota.Task) error) (store.VersionApplied, error) {
	module := r.Module
	if module == "" {
		module = ota.DefaultModule
	}
	var out store.VersionApplied
	var changeErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := setDeviceVersion(ctx, tx, r.ProductKey, r.DeviceName, module, r.Version, r.At); err != nil {
			return err
		}
		t, err := scanTask(tx.QueryRowContext(ctx, "SELECT "+taskCols+` FROM tasks
			WHERE product_key = ? AND device_name = ? AND module = ? AND state IN (`+activeStateLiterals+`)`,
			r.ProductKey, r.DeviceName, module))
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		default:
			written, refused, err := changeTaskRow(ctx, tx, t, change)
			switch {
			case refused != nil:
				changeErr = refused // the version stays recorded
			case err != nil:
				return err
			default:
				out.Task = &written
			}
		}
		return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM jobs
			WHERE product_key = ? AND module = ? AND selection = ? AND state = ?)`,
			r.ProductKey, module, string(ota.SelectDynamic), string(ota.JobRunning)).Scan(&out.DynamicJobs)
	})
	if err != nil {
		return store.VersionApplied{}, dbError(err, "apply version report of device "+r.DeviceName)
	}
	return out, changeErr
}

// SetTaskProgress: see store.Tasks. One grouped write: a prepared UPDATE per
// report, each guarded by the task's state and last update.
func (s *Store) SetTaskProgress(ctx context.Context, reports []store.TaskProgress) ([]int64, error) {
	if len(reports) == 0 {
		return nil, nil
	}
	var written []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range reports {
			res, err := tx.ExecContext(ctx, `UPDATE tasks SET progress = ?, detail = ?, updated_at = ?
				WHERE id = ? AND state = ? AND COALESCE(updated_at, 0) <= ?`,
				r.Progress, r.Detail, dbTime(r.At), r.TaskID, string(ota.TaskInProgress), dbTime(r.At))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				written = append(written, r.TaskID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbError(err, "set task progress")
	}
	return written, nil
}

// changeTaskRow applies change to t, read in tx, and writes the columns it
// changed (none when it changed nothing). change's own error comes back as
// refused, with nothing written; err is the store's.
func changeTaskRow(ctx context.Context, tx *sql.Tx, t ota.Task, change func(*ota.Task) error) (written ota.Task, refused, err error) {
	before := t
	if refused = change(&t); refused != nil {
		return ota.Task{}, refused, nil
	}
	t.ID = before.ID
	if set, args := changedTaskColumns(before, t); len(set) > 0 {
		if _, err := updateTaskRow(ctx, tx, t, "UPDATE tasks SET "+strings.Join(set, ", ")+" WHERE id = ?", append(args, t.ID)...); err != nil {
			return ota.Task{}, nil, err
		}
	}
	return t, nil, nil
}

// changedTaskColumns are the assignments ("col = ?") and arguments for the
// mutable fields of next that differ from cur, compared as stored (times to
// the microsecond).
func changedTaskColumns(cur, next ota.Task) ([]string, []any) {
	var set []string
	var args []any
	col := func(name string, was, now any) {
		if was != now {
			set = append(set, name+" = ?")
			args = append(args, now)
		}
	}
	col("state", string(cur.State), string(next.State))
	col("from_version", cur.FromVersion, next.FromVersion)
	col("progress", cur.Progress, next.Progress)
	col("attempts", cur.Attempts, next.Attempts)
	col("reason", string(cur.Reason), string(next.Reason))
	col("detail", cur.Detail, next.Detail)
	col("notified_at", dbTime(cur.NotifiedAt), dbTime(next.NotifiedAt))
	col("started_at", dbTime(cur.StartedAt), dbTime(next.StartedAt))
	col("finished_at", dbTime(cur.FinishedAt), dbTime(next.FinishedAt))
	col("next_attempt_at", dbTime(cur.NextAttemptAt), dbTime(next.NextAttemptAt))
	col("updated_at", dbTime(cur.UpdatedAt), dbTime(next.UpdatedAt))
	return set, args
}

// UpdateTasks applies u to the tasks f selects (the first f.Limit by id when
// set). A task that would become a second active task on its device's module
// is left unchanged (UPDATE OR IGNORE) and not counted.
func (s *Store) UpdateTasks(ctx context.Context, f store.TaskFilter, u store.TaskUpdate) (int64, error) {
	w := taskWhere(f)
	if f.AfterID > 0 {
		w.add("id > ?", f.AfterID)
	}
	sel := w.String()
	if f.Limit > 0 {
		sel = " WHERE id IN (SELECT id FROM tasks" + sel + " ORDER BY id LIMIT ?)"
		w.args = append(w.args, f.Limit)
	}
	set := "state = ?, reason = ?, detail = ?, updated_at = ?"
	args := []any{string(u.State), string(u.Reason), u.Detail, dbTime(u.Now)}
	if u.State.Terminal() {
		set += ", finished_at = ?"
		args = append(args, dbTime(u.Now))
	}
	if u.State == ota.TaskRetryWait {
		set += ", next_attempt_at = ?"
		args = append(args, dbTime(u.NextAttemptAt))
	}
	res, err := s.exec(ctx, "UPDATE OR IGNORE tasks SET "+set+sel, append(args, w.args...)...)
	if err != nil {
		return 0, dbError(err, "update tasks")
	}
	n, err := res.RowsAffected()
	return n, dbError(err, "update tasks")
}

// ClaimTasks claims within the job's pace (store.ClaimRequest): the counts
// and the claim run in one transaction on the writer, which BEGIN IMMEDIATE
// makes the only one in the database file (other processes on it included),
// so no other claim can slip in between the count and the claim.
func (s *Store) ClaimTasks(ctx context.Context, r store.ClaimRequest) (store.Claimed, error) {
	var out store.Claimed
	if r.Limit <= 0 {
		return out, nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		room := int64(-1) // no pace
		if r.MaxActive > 0 {
			lit, _ := stateLiterals(ota.DispatchedTaskStates)
			var active int64
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tasks WHERE job_id = ? AND state IN ("+lit+")",
				r.JobID).Scan(&active); err != nil {
				return err
			}
			room = max(int64(r.MaxActive)-active, 0)
		}
		if r.MaxPerMinute > 0 {
			var recent int64
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tasks WHERE job_id = ? AND notified_at >= ?",
				r.JobID, r.Now.Add(-store.RateWindow).UnixMicro()).Scan(&recent); err != nil {
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
			w := &where{}
			w.add("job_id = ?", r.JobID)
			w.add("state = 'queued'")
			w.add("id > ?", r.AfterID)
			rows, err := tx.QueryContext(ctx, `UPDATE tasks SET state = 'notified', attempts = attempts + 1, notified_at = ?, updated_at = ?
				WHERE id IN (SELECT id FROM tasks`+w.String()+` ORDER BY id LIMIT ?) RETURNING `+taskCols,
				append(append([]any{dbTime(r.Now), dbTime(r.Now)}, w.args...), limit)...)
			if err != nil {
				return err
			}
			if out.Tasks, err = collect(rows, scanTask); err != nil {
				return err
			}
		}
		out.Full = room >= 0 && room <= int64(len(out.Tasks))
		return nil
	})
	if err != nil {
		return store.Claimed{}, dbError(err, "claim tasks")
	}
	slices.SortFunc(out.Tasks, func(a, b ota.Task) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
