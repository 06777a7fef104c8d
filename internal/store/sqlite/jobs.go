package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

const jobCols = `id, tenant_id, package_id, product_key, module, name, description, type, selection, target,
	schedule_start, schedule_finish, schedule_window, max_concurrency, max_per_minute, retry_count,
	retry_interval_ns, timeout_seconds, need_push, need_confirm, overwrite, allow_device_request,
	abort_failure_percent, abort_min_finished, tags, ext_info, space, state, state_reason, materialized,
	materialize_cursor, created_at, updated_at, started_at, finished_at, allow_downgrade, timeout_from, package_kind,
	outcome, local_names`

// execer is a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// CreateJob adds a job; CodeConflict if the id exists.
func (s *Store) CreateJob(ctx context.Context, j ota.Job) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return insertJob(ctx, tx, j) })
}

func insertJob(ctx context.Context, db execer, j ota.Job) error {
	_, err := db.ExecContext(ctx, "INSERT INTO jobs ("+jobCols+`) VALUES (
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.TenantID, j.PackageID, j.ProductKey, j.Module, j.Name, j.Description, string(j.Type), string(j.Selection),
		sqlcommon.EncodeTarget(j.Target), dbTime(j.Schedule.Start), dbTime(j.Schedule.Finish),
		sqlcommon.EncodeWindow(j.Schedule.Window), j.MaxConcurrency, j.MaxPerMinute, j.Retry.Count,
		int64(j.Retry.Interval), j.TimeoutSeconds, dbBool(j.NeedPush), dbBool(j.NeedConfirm), string(j.Overwrite),
		dbBool(j.AllowDeviceRequest), j.Abort.FailurePercent, j.Abort.MinFinished, sqlcommon.EncodeTags(j.Tags),
		j.ExtInfo, j.Space, string(j.State), j.StateReason, dbBool(j.Materialized), j.MaterializeCursor,
		dbTime(j.CreatedAt), dbTime(j.UpdatedAt), dbTime(j.StartedAt), dbTime(j.FinishedAt),
		dbBool(j.AllowDowngrade), string(j.TimeoutFrom), string(j.PackageKind), string(j.Outcome),
		sqlcommon.EncodeLocalNames(j.LocalNames))
	if ota.ErrorCode(dbError(err, "")) == ota.CodeConflict {
		return ota.Errorf(ota.CodeConflict, "job %q already exists", j.ID)
	}
	return dbError(err, "create job "+j.ID)
}

// CreateJobWithTasks adds the job and its tasks in one transaction.
func (s *Store) CreateJobWithTasks(ctx context.Context, j ota.Job, tasks []ota.Task) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := claimPackage(ctx, tx, j); err != nil {
			return err
		}
		if err := insertJob(ctx, tx, j); err != nil {
			return err
		}
		return insertTargetTasks(ctx, tx, j.ID, tasks)
	})
	return dbError(err, "create job "+j.ID)
}

// claimPackage checks that the job's package exists and, for a verify job,
// moves it to verifying unless it is verifying or verified already.
func claimPackage(ctx context.Context, tx *sql.Tx, j ota.Job) error {
	if j.Type == ota.JobVerify {
		res, err := tx.ExecContext(ctx, `UPDATE packages SET verify_status = ?, modified_at = ?
			WHERE id = ? AND tenant_id = ? AND verify_status NOT IN (?, ?)`,
			string(ota.VerifyInProgress), dbTime(j.CreatedAt), j.PackageID, j.TenantID,
			string(ota.VerifyInProgress), string(ota.VerifyPassed))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
	}
	var status string
	err := tx.QueryRowContext(ctx, "SELECT verify_status FROM packages WHERE id = ? AND tenant_id = ?", j.PackageID, j.TenantID).Scan(&status)
	if err == sql.ErrNoRows {
		return ota.NotFound("package", j.PackageID)
	}
	if err != nil || j.Type != ota.JobVerify {
		return err
	}
	return ota.Errorf(ota.CodeConflict, "package %q is already %s: a package is verified once", j.PackageID, status)
}

// MaterializeBatch stores a batch of the job's tasks and its new cursor in
// one transaction, if the stored job is still in j.State at expectCursor.
func (s *Store) MaterializeBatch(ctx context.Context, j ota.Job, expectCursor string, tasks []ota.Task) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET materialized = ?, materialize_cursor = ?, updated_at = ?
			WHERE id = ? AND tenant_id = ? AND state = ? AND materialize_cursor = ?`,
			dbBool(j.Materialized), j.MaterializeCursor, dbTime(j.UpdatedAt), j.ID, j.TenantID, string(j.State), expectCursor)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ota.Errorf(ota.CodeConflict, "job %q changed while its tasks were being created: reload it", j.ID)
		}
		return insertTargetTasks(ctx, tx, j.ID, tasks)
	})
	return dbError(err, "materialize job "+j.ID)
}

// insertTargetTasks inserts a job's tasks; those whose device's module is
// held by another active task are stored skipped (ota.Task.SkipBusy). The
// transaction is the single writer, so nothing can take a module between
// the insert and the check.
func insertTargetTasks(ctx context.Context, tx *sql.Tx, jobID string, tasks []ota.Task) error {
	inserted, err := insertTasksTx(ctx, tx, tasks)
	if err != nil {
		return err
	}
	// ON CONFLICT DO NOTHING left out exactly the busy ones: when every
	// row went in, none was busy and nothing needs looking up (this check
	// by name was most of a large job's materialization time).
	if inserted == int64(len(tasks)) {
		return nil
	}
	present := make(map[string]bool, len(tasks))
	for start := 0; start < len(tasks); start += insertRowsPerStatement {
		chunk := tasks[start:min(start+insertRowsPerStatement, len(tasks))]
		names := make([]any, 0, len(chunk)+1)
		names = append(names, jobID)
		for i := range chunk {
			names = append(names, chunk[i].DeviceName)
		}
		rows, err := tx.QueryContext(ctx, "SELECT device_name FROM tasks WHERE job_id = ? AND device_name IN (?"+
			strings.Repeat(", ?", len(chunk)-1)+")", names...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			present[n] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	var busy []ota.Task
	for _, t := range tasks {
		if !present[t.DeviceName] {
			t.SkipBusy(t.UpdatedAt)
			busy = append(busy, t)
		}
	}
	_, err = insertTasksTx(ctx, tx, busy)
	return err
}

func scanJob(r rowScanner) (ota.Job, error) {
	var j ota.Job
	var typ, sel, target, window, overwrite, tags, state, timeoutFrom, kind, outcome, localNames string
	var needPush, needConfirm, allowReq, materialized, allowDowngrade int
	var retryInterval int64
	var start, finish, created, updated, started, finished sql.NullInt64
	err := r.Scan(&j.ID, &j.TenantID, &j.PackageID, &j.ProductKey, &j.Module, &j.Name, &j.Description, &typ, &sel, &target,
		&start, &finish, &window, &j.MaxConcurrency, &j.MaxPerMinute, &j.Retry.Count,
		&retryInterval, &j.TimeoutSeconds, &needPush, &needConfirm, &overwrite, &allowReq,
		&j.Abort.FailurePercent, &j.Abort.MinFinished, &tags, &j.ExtInfo, &j.Space, &state, &j.StateReason, &materialized,
		&j.MaterializeCursor, &created, &updated, &started, &finished, &allowDowngrade, &timeoutFrom, &kind, &outcome, &localNames)
	if err != nil {
		return ota.Job{}, err
	}
	j.Type = ota.JobType(typ)
	j.Selection = ota.Selection(sel)
	j.Overwrite = ota.OverwriteMode(overwrite)
	j.State = ota.JobState(state)
	j.Retry.Interval = time.Duration(retryInterval)
	j.NeedPush = needPush != 0
	j.NeedConfirm = needConfirm != 0
	j.AllowDeviceRequest = allowReq != 0
	j.Materialized = materialized != 0
	j.AllowDowngrade = allowDowngrade != 0
	j.TimeoutFrom = ota.TimeoutFrom(timeoutFrom)
	j.PackageKind = ota.PackageKind(kind)
	j.Outcome = ota.JobOutcome(outcome)
	j.Schedule.Start = goTime(start)
	j.Schedule.Finish = goTime(finish)
	j.CreatedAt = goTime(created)
	j.UpdatedAt = goTime(updated)
	j.StartedAt = goTime(started)
	j.FinishedAt = goTime(finished)
	if j.Target, err = sqlcommon.DecodeTarget(target); err != nil {
		return ota.Job{}, err
	}
	if j.Schedule.Window, err = sqlcommon.DecodeWindow(window); err != nil {
		return ota.Job{}, err
	}
	if j.Tags, err = sqlcommon.DecodeTags(tags); err != nil {
		return ota.Job{}, err
	}
	if j.LocalNames, err = sqlcommon.DecodeLocalNames(localNames); err != nil {
		return ota.Job{}, err
	}
	return j, nil
}

func (s *Store) GetJob(ctx context.Context, tenantID, id string) (ota.Job, error) {
	j, err := scanJob(s.read.QueryRowContext(ctx, "SELECT "+jobCols+" FROM jobs WHERE id = ? AND tenant_id = ?", id, tenantID))
	if err == sql.ErrNoRows {
		return ota.Job{}, ota.NotFound("job", id)
	}
	return j, dbError(err, "get job "+id)
}

// ListJobs returns matching jobs newest first (id descending). The total
// ignores BeforeID, Offset and Limit.
func (s *Store) ListJobs(ctx context.Context, f store.JobFilter, page store.Page, count bool) ([]ota.Job, int64, error) {
	var w where
	if f.TenantID != "" {
		w.add("tenant_id = ?", f.TenantID)
	}
	if f.PackageID != "" {
		w.add("package_id = ?", f.PackageID)
	}
	if f.ProductKey != "" {
		w.add("product_key = ?", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = ?", f.Module)
	}
	if f.Type != "" {
		w.add("type = ?", string(f.Type))
	}
	if f.PackageKind != "" {
		w.add("package_kind = ?", string(f.PackageKind))
	}
	if f.Space != "" {
		w.add("space = ?", f.Space)
	}
	if f.Outcome != "" {
		w.add("outcome = ?", string(f.Outcome))
	}
	if f.Materialized != nil {
		w.add("materialized = ?", dbBool(*f.Materialized))
	}
	if f.Selection != "" {
		w.add("selection = ?", string(f.Selection))
	}
	if f.Device != nil {
		w.add("id IN (SELECT job_id FROM tasks WHERE product_key = ? AND device_name = ?)", f.Device.ProductKey, f.Device.Name)
	}
	if f.NameContains != "" {
		name, nameArgs := nameColumn("jobs", f.NameLocale)
		w.add("instr("+name+", ?) > 0", append(nameArgs, f.NameContains)...)
	}
	if len(f.States) > 0 {
		w.in("state", stateStrings(f.States))
	}
	var total int64
	if count {
		if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM jobs"+w.String(), w.args...).Scan(&total); err != nil {
			return nil, 0, dbError(err, "count jobs")
		}
	}
	if page.BeforeID != "" {
		w.add("id < ?", page.BeforeID)
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+jobCols+" FROM jobs"+w.String()+" ORDER BY id DESC LIMIT ? OFFSET ?",
		append(w.args, sqlcommon.Limit(page.Limit, 0), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list jobs")
	}
	out, err := collect(rows, scanJob)
	if err != nil {
		return nil, 0, dbError(err, "list jobs")
	}
	return out, total, nil
}

// UpdateJob writes the mutable fields (state, reason, materialization
// progress, updated/started/finished times) if the stored state is expect.
func (s *Store) UpdateJob(ctx context.Context, j ota.Job, expect ota.JobState) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, state_reason = ?, materialized = ?, materialize_cursor = ?,
			updated_at = ?, started_at = ?, finished_at = ?, outcome = ? WHERE id = ? AND tenant_id = ? AND state = ?`,
			string(j.State), j.StateReason, dbBool(j.Materialized), j.MaterializeCursor,
			dbTime(j.UpdatedAt), dbTime(j.StartedAt), dbTime(j.FinishedAt), string(j.Outcome), j.ID, j.TenantID, string(expect))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, "SELECT state FROM jobs WHERE id = ? AND tenant_id = ?", j.ID, j.TenantID).Scan(&state)
		if err == sql.ErrNoRows {
			return ota.NotFound("job", j.ID)
		}
		if err != nil {
			return err
		}
		return ota.Errorf(ota.CodeConflict, "job %q is %s, not %s: reload it and try again", j.ID, state, expect)
	})
	return dbError(err, "update job "+j.ID)
}

// UpdateJobSettings writes the settings an operator may change on a job
// that has not ended.
func (s *Store) UpdateJobSettings(ctx context.Context, j ota.Job) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET description = ?, target = ?, max_concurrency = ?, max_per_minute = ?,
			timeout_seconds = ?, tags = ?, updated_at = ? WHERE id = ? AND tenant_id = ? AND state NOT IN ('completed', 'canceled')`,
			j.Description, sqlcommon.EncodeTarget(j.Target), j.MaxConcurrency, j.MaxPerMinute, j.TimeoutSeconds,
			sqlcommon.EncodeTags(j.Tags), dbTime(j.UpdatedAt), j.ID, j.TenantID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, "SELECT state FROM jobs WHERE id = ? AND tenant_id = ?", j.ID, j.TenantID).Scan(&state)
		if err == sql.ErrNoRows {
			return ota.NotFound("job", j.ID)
		}
		if err != nil {
			return err
		}
		return ota.Errorf(ota.CodeConflict, "job %q is %s: an ended job cannot be changed", j.ID, state)
	})
	return dbError(err, "update job "+j.ID)
}

// DeleteJob removes a job and its tasks.
func (s *Store) DeleteJob(ctx context.Context, tenantID, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE id = ? AND tenant_id = ?", id, tenantID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ota.NotFound("job", id)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM tasks WHERE job_id = ?", id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM jobs WHERE id = ?", id)
		return err
	})
	return dbError(err, "delete job "+id)
}

func stateStrings[S ~string](states []S) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}
