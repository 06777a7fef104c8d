package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

const jobColumns = `id, tenant_id, package_id, product_key, module, name, description, type, selection, target,
	start_at, finish_at, daily_window, max_concurrency, max_per_minute, retry_count, retry_interval_ns, timeout_seconds,
	need_push, need_confirm, overwrite, allow_device_request, abort_failure_percent, abort_min_finished, tags, ext_info, space,
	state, state_reason, materialized, materialize_cursor, created_at, updated_at, started_at, finished_at,
	allow_downgrade, timeout_from, package_kind, outcome, local_names`

func (s *Store) CreateJob(ctx context.Context, j ota.Job) error {
	_, err := s.exec(ctx, insertJobSQL, jobArgs(j)...)
	return conflictAs(translate(err, "create job"), "job %q already exists", j.ID)
}

const insertJobSQL = `INSERT INTO jobs (` + jobColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35,
		$36, $37, $38, $39, $40)`

func jobArgs(j ota.Job) []any {
	var window *string // NULL: no window
	if j.Schedule.Window != nil {
		w := sqlcommon.EncodeWindow(j.Schedule.Window)
		window = &w
	}
	return []any{j.ID, j.TenantID, j.PackageID, j.ProductKey, j.Module, j.Name, j.Description, j.Type, j.Selection, sqlcommon.EncodeTarget(j.Target),
		ts(j.Schedule.Start), ts(j.Schedule.Finish), window, j.MaxConcurrency, j.MaxPerMinute, j.Retry.Count, int64(j.Retry.Interval), j.TimeoutSeconds,
		j.NeedPush, j.NeedConfirm, j.Overwrite, j.AllowDeviceRequest, j.Abort.FailurePercent, j.Abort.MinFinished, sqlcommon.EncodeTags(j.Tags), j.ExtInfo, j.Space,
		j.State, j.StateReason, j.Materialized, j.MaterializeCursor, ts(j.CreatedAt), ts(j.UpdatedAt), ts(j.StartedAt), ts(j.FinishedAt),
		j.AllowDowngrade, j.TimeoutFrom, j.PackageKind, j.Outcome, sqlcommon.EncodeLocalNames(j.LocalNames)}
}

// CreateJobWithTasks creates the job and its tasks in one transaction.
func (s *Store) CreateJobWithTasks(ctx context.Context, j ota.Job, tasks []ota.Task) error {
	err := s.writeJobTasks(ctx, tasks, func(tx pgx.Tx) error {
		if err := claimPackage(ctx, tx, j); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertJobSQL, jobArgs(j)...)
		return conflictAs(translate(err, "create job"), "job %q already exists", j.ID)
	})
	return translate(err, "create job")
}

// claimPackage holds the job's package against a concurrent DeletePackage
// (FOR SHARE until commit) and, for a verify job, moves it to verifying
// unless it is verifying or verified already: of two verify jobs created at
// once, the second's UPDATE waits for the first's row lock and then finds
// the status changed.
func claimPackage(ctx context.Context, tx pgx.Tx, j ota.Job) error {
	if j.Type == ota.JobVerify {
		tag, err := tx.Exec(ctx, `UPDATE packages SET verify_status = $1, modified_at = $2
			WHERE tenant_id = $3 AND id = $4 AND verify_status NOT IN ($5, $6)`,
			ota.VerifyInProgress, ts(j.CreatedAt), j.TenantID, j.PackageID, ota.VerifyInProgress, ota.VerifyPassed)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	var status string
	err := tx.QueryRow(ctx, `SELECT verify_status FROM packages WHERE tenant_id = $1 AND id = $2 FOR SHARE`,
		j.TenantID, j.PackageID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return ota.NotFound("package", j.PackageID)
	}
	if err != nil || j.Type != ota.JobVerify {
		return err
	}
	return ota.Errorf(ota.CodeConflict, "package %q is already %s: a package is verified once", j.PackageID, status)
}

// MaterializeBatch stores a batch of the job's tasks and its new cursor in
// one transaction, if the stored job is still in j.State at expectCursor.
//
// The batch commits without waiting for its WAL flush (synchronous_commit
// off for this transaction): a crash may lose the last batches, but each
// takes its cursor with it, so the job is as it was before them and the
// engine writes them again. Nothing can act on a lost batch: claiming its
// tasks commits synchronously, which flushes the WAL up to and past it. A
// million-device job commits 200 batches, and waiting for each flush was
// about an eighth of the database's time creating it.
func (s *Store) MaterializeBatch(ctx context.Context, j ota.Job, expectCursor string, tasks []ota.Task) error {
	err := s.writeJobTasks(ctx, tasks, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET materialized = $1, materialize_cursor = $2, updated_at = $3
			WHERE tenant_id = $4 AND id = $5 AND state = $6 AND materialize_cursor = $7`,
			j.Materialized, j.MaterializeCursor, ts(j.UpdatedAt), j.TenantID, j.ID, j.State, expectCursor)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ota.Errorf(ota.CodeConflict, "job %q changed while its tasks were being created: reload it", j.ID)
		}
		return nil
	})
	return translate(err, "materialize job")
}

func scanJob(row pgx.Row) (ota.Job, error) {
	var j ota.Job
	var target, tags, localNames string
	var window *string
	var retryNS int64
	var start, finish, created, updated, started, finished pgtype.Timestamptz
	err := row.Scan(&j.ID, &j.TenantID, &j.PackageID, &j.ProductKey, &j.Module, &j.Name, &j.Description, &j.Type, &j.Selection, &target,
		&start, &finish, &window, &j.MaxConcurrency, &j.MaxPerMinute, &j.Retry.Count, &retryNS, &j.TimeoutSeconds,
		&j.NeedPush, &j.NeedConfirm, &j.Overwrite, &j.AllowDeviceRequest, &j.Abort.FailurePercent, &j.Abort.MinFinished, &tags, &j.ExtInfo, &j.Space,
		&j.State, &j.StateReason, &j.Materialized, &j.MaterializeCursor, &created, &updated, &started, &finished,
		&j.AllowDowngrade, &j.TimeoutFrom, &j.PackageKind, &j.Outcome, &localNames)
	if err != nil {
		return ota.Job{}, err
	}
	if j.Target, err = sqlcommon.DecodeTarget(target); err != nil {
		return ota.Job{}, err
	}
	if window != nil {
		if j.Schedule.Window, err = sqlcommon.DecodeWindow(*window); err != nil {
			return ota.Job{}, err
		}
	}
	if j.Tags, err = sqlcommon.DecodeTags(tags); err != nil {
		return ota.Job{}, err
	}
	if j.LocalNames, err = sqlcommon.DecodeLocalNames(localNames); err != nil {
		return ota.Job{}, err
	}
	j.Retry.Interval = time.Duration(retryNS)
	j.Schedule.Start, j.Schedule.Finish = fromTS(start), fromTS(finish)
	j.CreatedAt, j.UpdatedAt, j.StartedAt, j.FinishedAt = fromTS(created), fromTS(updated), fromTS(started), fromTS(finished)
	return j, nil
}

func (s *Store) GetJob(ctx context.Context, tenantID, id string) (ota.Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return ota.Job{}, notFoundAs(err, "get job", ota.NotFound("job", id))
	}
	return j, nil
}

func (s *Store) ListJobs(ctx context.Context, f store.JobFilter, page store.Page, count bool) ([]ota.Job, int64, error) {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = %s", f.TenantID)
	}
	if f.PackageID != "" {
		w.add("package_id = %s", f.PackageID)
	}
	if f.ProductKey != "" {
		w.add("product_key = %s", f.ProductKey)
	}
	if f.Module != "" {
		w.add("module = %s", f.Module)
	}
	if f.Type != "" {
		w.add("type = %s", f.Type)
	}
	if f.PackageKind != "" {
		w.add("package_kind = %s", f.PackageKind)
	}
	if f.Space != "" {
		w.add("space = %s", f.Space)
	}
	if f.Outcome != "" {
		w.add("outcome = %s", f.Outcome)
	}
	if f.Materialized != nil {
		w.add("materialized = %s", *f.Materialized)
	}
	if f.Selection != "" {
		w.add("selection = %s", f.Selection)
	}
	if f.Device != nil {
		w.add("id IN (SELECT job_id FROM tasks WHERE product_key = %s AND device_name = %s)", f.Device.ProductKey, f.Device.Name)
	}
	if f.NameContains != "" {
		w.add("strpos("+nameColumn(w, f.NameLocale)+", %s) > 0", f.NameContains)
	}
	if len(f.States) > 0 {
		w.add("state = ANY(%s)", jobStates(f.States))
	}
	var total int64
	if count {
		var err error
		if total, err = s.count(ctx, "jobs", w, "count jobs"); err != nil {
			return nil, 0, err
		}
	}
	if page.BeforeID != "" {
		w.add("id < %s", page.BeforeID)
	}
	q := `SELECT ` + jobColumns + ` FROM jobs` + w.String() +
		` ORDER BY id DESC LIMIT ` + w.arg(limitOf(0, page)) + ` OFFSET ` + w.arg(page.Offset)
	list, err := queryAll(ctx, s, "list jobs", scanJob, q, w.args...)
	return list, total, err
}

func jobStates(states []ota.JobState) []string {
	out := make([]string, len(states))
	for i, st := range states {
		out[i] = string(st)
	}
	return out
}

// UpdateJob writes the fields that change over a job's life: state and its
// reason, materialization progress, and times.
func (s *Store) UpdateJob(ctx context.Context, j ota.Job, expect ota.JobState) error {
	tag, err := s.exec(ctx, `UPDATE jobs SET state = $4, state_reason = $5, materialized = $6, materialize_cursor = $7,
			updated_at = $8, started_at = $9, finished_at = $10, outcome = $11
		WHERE tenant_id = $1 AND id = $2 AND state = $3`,
		j.TenantID, j.ID, expect, j.State, j.StateReason, j.Materialized, j.MaterializeCursor,
		ts(j.UpdatedAt), ts(j.StartedAt), ts(j.FinishedAt), j.Outcome)
	if err != nil {
		return translate(err, "update job")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	cur, err := s.GetJob(ctx, j.TenantID, j.ID)
	if err != nil {
		return err
	}
	return ota.Errorf(ota.CodeConflict, "job %q is %s, not %s: it changed meanwhile; reload it and try again", j.ID, cur.State, expect)
}

// UpdateJobSettings writes the settings an operator may change on a job
// that has not ended.
func (s *Store) UpdateJobSettings(ctx context.Context, j ota.Job) error {
	tag, err := s.exec(ctx, `UPDATE jobs SET description = $3, target = $4, max_concurrency = $5, max_per_minute = $6,
			timeout_seconds = $7, tags = $8, updated_at = $9
		WHERE tenant_id = $1 AND id = $2 AND state NOT IN ('completed', 'canceled')`,
		j.TenantID, j.ID, j.Description, sqlcommon.EncodeTarget(j.Target), j.MaxConcurrency, j.MaxPerMinute, j.TimeoutSeconds,
		sqlcommon.EncodeTags(j.Tags), ts(j.UpdatedAt))
	if err != nil {
		return translate(err, "update job")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	cur, err := s.GetJob(ctx, j.TenantID, j.ID)
	if err != nil {
		return err
	}
	return ota.Errorf(ota.CodeConflict, "job %q is %s: an ended job cannot be changed", j.ID, cur.State)
}

// DeleteJob removes the job and its tasks in one transaction.
func (s *Store) DeleteJob(ctx context.Context, tenantID, id string) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM jobs WHERE tenant_id = $1 AND id = $2`, tenantID, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ota.NotFound("job", id)
		}
		if _, err = tx.Exec(ctx, `DELETE FROM tasks WHERE job_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM task_counts WHERE job_id = $1`, id)
		return err
	}), "delete job")
}
