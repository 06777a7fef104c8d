package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// writeAudit records the entry store.WithAudit attached to ctx, if any, in
// tx. inTx and exec call it once the change succeeded, so the entry commits
// or rolls back with the change.
func writeAudit(ctx context.Context, tx pgx.Tx) error {
	e, ok := store.AuditFrom(ctx)
	if !ok {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (at, tenant_id, actor_key_id, actor_role, action, resource_type, resource_id, request_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ts(e.At), e.TenantID, e.ActorKeyID, string(e.ActorRole), e.Action, e.ResourceType, e.ResourceID, e.RequestID, e.Detail)
	return err
}

// inTx runs fn in a transaction; when fn succeeds the audit entry in ctx,
// if any, is written in the same transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return writeAudit(ctx, tx)
	})
}

// exec runs one write statement. With an audit entry in ctx it runs it in a
// transaction with the entry, written only if the statement changed a row
// (an UPDATE or DELETE that matched nothing is no change).
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if _, ok := store.AuditFrom(ctx); !ok {
		return s.pool.Exec(ctx, sql, args...)
	}
	var tag pgconn.CommandTag
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if tag, err = tx.Exec(ctx, sql, args...); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return writeAudit(ctx, tx)
	})
	return tag, err
}

// AppendAudit records e on its own (store.Audit).
func (s *Store) AppendAudit(ctx context.Context, e ota.AuditEntry) error {
	return translate(s.inTx(store.WithAudit(ctx, e), func(pgx.Tx) error { return nil }), "append audit entry")
}

const auditCols = "id, at, tenant_id, actor_key_id, actor_role, action, resource_type, resource_id, request_id, detail"

// ListAudit lists audit entries newest first.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter, page store.Page) ([]ota.AuditEntry, int64, error) {
	w := &where{}
	if f.TenantID != "" {
		w.add("tenant_id = %s", f.TenantID)
	}
	if f.ActorKeyID != "" {
		w.add("actor_key_id = %s", f.ActorKeyID)
	}
	if f.Action != "" {
		w.add("action = %s", f.Action)
	}
	if f.ResourceType != "" {
		w.add("resource_type = %s", f.ResourceType)
	}
	if f.ResourceID != "" {
		w.add("resource_id = %s", f.ResourceID)
	}
	if !f.Since.IsZero() {
		w.add("at >= %s", ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("at < %s", ts(f.Until))
	}
	n, err := s.count(ctx, "audit_log", w, "count audit entries")
	if err != nil {
		return nil, 0, err
	}
	lim, off := w.arg(limitOf(0, page)), w.arg(page.Offset)
	rows, err := s.pool.Query(ctx, "SELECT "+auditCols+" FROM audit_log"+w.String()+" ORDER BY id DESC LIMIT "+lim+" OFFSET "+off, w.args...)
	if err != nil {
		return nil, 0, translate(err, "list audit entries")
	}
	defer rows.Close()
	var out []ota.AuditEntry
	for rows.Next() {
		var e ota.AuditEntry
		var at pgtype.Timestamptz
		var role string
		if err := rows.Scan(&e.ID, &at, &e.TenantID, &e.ActorKeyID, &role, &e.Action, &e.ResourceType, &e.ResourceID, &e.RequestID, &e.Detail); err != nil {
			return nil, 0, translate(err, "list audit entries")
		}
		e.At, e.ActorRole = fromTS(at), ota.Role(role)
		out = append(out, e)
	}
	return out, n, translate(rows.Err(), "list audit entries")
}
