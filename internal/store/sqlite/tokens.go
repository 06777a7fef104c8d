package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/updraft-ota/updraft/internal/store"
)

// IssueToken returns the key's live token or stores t, in one write transaction.
func (s *Store) IssueToken(ctx context.Context, t store.APIToken, now time.Time) (store.APIToken, error) {
	var out store.APIToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanToken(tx.QueryRowContext(ctx, `SELECT token, access_key_id, tenant_id, expires_at, created_at FROM api_tokens
			WHERE access_key_id = ? AND expires_at > ? ORDER BY expires_at DESC LIMIT 1`, t.AccessKeyID, dbTime(now)))
		if err == nil {
			out = cur
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE access_key_id = ?`, t.AccessKeyID); err != nil {
			return err
		}
		out = t
		return insertToken(ctx, tx, t)
	})
	return out, dbError(err, "issue token")
}

// ReplaceToken drops the key's tokens and stores t.
func (s *Store) ReplaceToken(ctx context.Context, t store.APIToken) error {
	return dbError(s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE access_key_id = ?`, t.AccessKeyID); err != nil {
			return err
		}
		return insertToken(ctx, tx, t)
	}), "replace token")
}

// GetToken finds a token.
func (s *Store) GetToken(ctx context.Context, token string) (store.APIToken, error) {
	t, err := scanToken(s.read.QueryRowContext(ctx, `SELECT token, access_key_id, tenant_id, expires_at, created_at FROM api_tokens WHERE token = ?`, token))
	return t, dbError(err, "token")
}

func insertToken(ctx context.Context, tx *sql.Tx, t store.APIToken) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (token, access_key_id, tenant_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.Token, t.AccessKeyID, t.TenantID, dbTime(t.ExpiresAt), dbTime(t.CreatedAt))
	return err
}

func scanToken(r rowScanner) (store.APIToken, error) {
	var t store.APIToken
	var exp, created sql.NullInt64
	if err := r.Scan(&t.Token, &t.AccessKeyID, &t.TenantID, &exp, &created); err != nil {
		return t, err
	}
	t.ExpiresAt, t.CreatedAt = goTime(exp), goTime(created)
	return t, nil
}
