package service

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Bearer tokens for dialects whose clients first trade a proof of their
// access key for a token (EnOS apim-token-service). The dialect checks the
// proof's form; the service keeps proofs single-use and tokens durable, so
// both hold across restarts and replicas.

// IssueAPIToken returns key's live token, or a new one valid for ttl.
func (s *Service) IssueAPIToken(ctx context.Context, key ota.AccessKey, ttl time.Duration) (store.APIToken, error) {
	now := s.Now()
	return s.store.IssueToken(ctx, newAPIToken(key, now, ttl), now)
}

// RefreshAPIToken replaces key's tokens with a new one valid for ttl. old must
// be a token of key (expired or not); CodeUnauthenticated otherwise.
func (s *Service) RefreshAPIToken(ctx context.Context, key ota.AccessKey, old string, ttl time.Duration) (store.APIToken, error) {
	t, err := s.store.GetToken(ctx, old)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return store.APIToken{}, ota.Errorf(ota.CodeUnauthenticated, "the access token to refresh is not known: get a new one")
		}
		return store.APIToken{}, err
	}
	if t.AccessKeyID != key.ID {
		return store.APIToken{}, ota.Errorf(ota.CodeUnauthenticated, "the access token to refresh belongs to another app key")
	}
	nt := newAPIToken(key, s.Now(), ttl)
	return nt, s.store.ReplaceToken(ctx, nt)
}

// APIToken resolves a bearer token to its access key (CodeUnauthenticated
// if unknown). An expired token is returned too, with its expiry, so that the
// dialect answers it with its own "token expired" code.
func (s *Service) APIToken(ctx context.Context, token string) (store.APIToken, ota.AccessKey, error) {
	if token == "" {
		return store.APIToken{}, ota.AccessKey{}, ota.Errorf(ota.CodeUnauthenticated, "an access token is required")
	}
	t, err := s.store.GetToken(ctx, token)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return store.APIToken{}, ota.AccessKey{}, ota.Errorf(ota.CodeUnauthenticated, "the access token is not known: get one from the token service")
		}
		return store.APIToken{}, ota.AccessKey{}, err
	}
	k, err := s.AccessKey(ctx, t.AccessKeyID)
	if err != nil {
		return store.APIToken{}, ota.AccessKey{}, err
	}
	return t, k, nil
}

func newAPIToken(key ota.AccessKey, now time.Time, ttl time.Duration) store.APIToken {
	return store.APIToken{Token: rand.Text() + rand.Text(), AccessKeyID: key.ID, TenantID: key.TenantID,
		ExpiresAt: now.Add(ttl), CreatedAt: now}
}
