package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/sqlcommon"
)

// writeAudit records the entry store.WithAudit attached to ctx, if any, in
// tx. inTx and exec call it once the change succeeded, so the entry commits
// or rolls back with the change.
func writeAudit(ctx context.Context, tx *sql.Tx) error {
	e, ok := store.AuditFrom(ctx)
	if !ok {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, tenant_id, actor_key_id, actor_role, action, resource_type, resource_id, request_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		dbTime(e.At), e.TenantID, e.ActorKeyID, string(e.ActorRole), e.Action, e.ResourceType, e.ResourceID, e.RequestID, e.Detail)
	return dbError(err, "write the audit log")
}

// exec runs one write statement. With an audit entry in ctx it runs it in a
// transaction with the entry, written only if the statement changed a row
// (an UPDATE or DELETE that matched nothing is no change).
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.grouped(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = tx.ExecContext(ctx, query, args...); err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return writeAudit(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendAudit records e on its own (store.Audit).
func (s *Store) AppendAudit(ctx context.Context, e ota.AuditEntry) error {
	return dbError(s.inTx(store.WithAudit(ctx, e), func(*sql.Tx) error { return nil }), "append audit entry")
}

const auditCols = "id, at, tenant_id, actor_key_id, actor_role, action, resource_type, resource_id, request_id, detail"

// ListAudit lists audit entries newest first.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter, page store.Page) ([]ota.AuditEntry, int64, error) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, cond)
		args = append(args, v)
	}
	if f.TenantID != "" {
		add("tenant_id = ?", f.TenantID)
	}
	if f.ActorKeyID != "" {
		add("actor_key_id = ?", f.ActorKeyID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.ResourceType != "" {
		add("resource_type = ?", f.ResourceType)
	}
	if f.ResourceID != "" {
		add("resource_id = ?", f.ResourceID)
	}
	if !f.Since.IsZero() {
		add("at >= ?", dbTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", dbTime(f.Until))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	var n int64
	if err := s.read.QueryRowContext(ctx, "SELECT count(*) FROM audit_log"+where, args...).Scan(&n); err != nil {
		return nil, 0, dbError(err, "count audit entries")
	}
	rows, err := s.read.QueryContext(ctx, "SELECT "+auditCols+" FROM audit_log"+where+" ORDER BY id DESC LIMIT ? OFFSET ?",
		append(args, sqlcommon.Limit(page.Limit, 0), page.Offset)...)
	if err != nil {
		return nil, 0, dbError(err, "list audit entries")
	}
	defer rows.Close()
	var out []ota.AuditEntry
	for rows.Next() {
		var e ota.AuditEntry
		var at sql.NullInt64
		var role string
		if err := rows.Scan(&e.ID, &at, &e.TenantID, &e.ActorKeyID, &role, &e.Action, &e.ResourceType, &e.ResourceID, &e.RequestID, &e.Detail); err != nil {
			return nil, 0, dbError(err, "list audit entries")
		}
		e.At, e.ActorRole = goTime(at), ota.Role(role)
		out = append(out, e)
	}
	return out, n, dbError(rows.Err(), "list audit entries")
}
