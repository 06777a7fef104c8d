package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/updraft-ota/updraft/internal/store"
)

// IssueToken returns the key's live token or stores t. A transaction-scoped
// advisory lock on the key serializes issuers on every replica, so two
// concurrent first requests get the same token.
func (s *Store) IssueToken(ctx context.Context, t store.APIToken, now time.Time) (store.APIToken, error) {
	var out store.APIToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('api_tokens:' || $1))`, t.AccessKeyID); err != nil {
			return err
		}
		cur, err := scanToken(tx.QueryRow(ctx, `SELECT token, access_key_id, tenant_id, expires_at, created_at FROM api_tokens
			WHERE access_key_id = $1 AND expires_at > $2 ORDER BY expires_at DESC LIMIT 1`, t.AccessKeyID, ts(now)))
		if err == nil {
			out = cur
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_tokens WHERE access_key_id = $1`, t.AccessKeyID); err != nil {
			return err
		}
		out = t
		return insertToken(ctx, tx, t)
	})
	return out, translate(err, "issue token")
}

// ReplaceToken drops the key's tokens and stores t.
func (s *Store) ReplaceToken(ctx context.Context, t store.APIToken) error {
	return translate(s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('api_tokens:' || $1))`, t.AccessKeyID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_tokens WHERE access_key_id = $1`, t.AccessKeyID); err != nil {
			return err
		}
		return insertToken(ctx, tx, t)
	}), "replace token")
}

// GetToken finds a token.
func (s *Store) GetToken(ctx context.Context, token string) (store.APIToken, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT token, access_key_id, tenant_id, expires_at, created_at FROM api_tokens WHERE token = $1`, token))
	return t, translate(err, "token")
}

func insertToken(ctx context.Context, tx pgx.Tx, t store.APIToken) error {
	_, err := tx.Exec(ctx, `INSERT INTO api_tokens (token, access_key_id, tenant_id, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.Token, t.AccessKeyID, t.TenantID, ts(t.ExpiresAt), ts(t.CreatedAt))
	return err
}

func scanToken(r pgx.Row) (store.APIToken, error) {
	var t store.APIToken
	var exp, created pgtype.Timestamptz
	if err := r.Scan(&t.Token, &t.AccessKeyID, &t.TenantID, &exp, &created); err != nil {
		return t, err
	}
	t.ExpiresAt, t.CreatedAt = fromTS(exp), fromTS(created)
	return t, nil
}
