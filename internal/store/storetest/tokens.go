package storetest

import (
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func testTokenIssue(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := store.APIToken{Token: "tok1", AccessKeyID: "ak", TenantID: "acme", ExpiresAt: base.Add(2 * time.Hour), CreatedAt: base}
	got, err := s.IssueToken(ctx, first, base)
	mustOK(t, err, "IssueToken")
	if got.Token != "tok1" {
		t.Fatalf("IssueToken = %q, want tok1", got.Token)
	}
	again := first
	again.Token = "tok2"
	got, err = s.IssueToken(ctx, again, base.Add(time.Hour))
	mustOK(t, err, "IssueToken again")
	if got.Token != "tok1" || !got.ExpiresAt.Equal(first.ExpiresAt) || got.TenantID != "acme" {
		t.Fatalf("IssueToken while tok1 lives = %+v, want tok1", got)
	}
	got, err = s.IssueToken(ctx, again, base.Add(3*time.Hour))
	mustOK(t, err, "IssueToken after expiry")
	if got.Token != "tok2" {
		t.Fatalf("IssueToken after expiry = %q, want tok2", got.Token)
	}
	if _, err := s.GetToken(ctx, "tok1"); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("expired tok1 after a new issue: err = %v, want CodeNotFound", err)
	}
	refreshed := store.APIToken{Token: "tok3", AccessKeyID: "ak", TenantID: "acme", ExpiresAt: base.Add(5 * time.Hour), CreatedAt: base}
	mustOK(t, s.ReplaceToken(ctx, refreshed), "ReplaceToken")
	if _, err := s.GetToken(ctx, "tok2"); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Fatalf("tok2 after refresh: err = %v, want CodeNotFound", err)
	}
	got, err = s.GetToken(ctx, "tok3")
	mustOK(t, err, "GetToken")
	if got.AccessKeyID != "ak" || !got.ExpiresAt.Equal(refreshed.ExpiresAt) || !got.CreatedAt.Equal(base) {
		t.Fatalf("GetToken = %+v, want %+v", got, refreshed)
	}
}
