package storetest

import (
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// SecretsHarness opens one database several times with different keys and
// reads it raw, for RunSecrets.
type SecretsHarness struct {
	// Open returns a fresh, migrated, empty store sealing with box (nil:
	// none, as a server before sealing existed) and closes it at cleanup.
	Open func(t *testing.T, box *secrets.Box) store.Store
	// Reopen opens the database of the last Open again with box.
	Reopen func(t *testing.T, box *secrets.Box) store.Store
	// Raw returns the whole database as stored (every table's text, or a
	// file's bytes): what a stolen copy would show.
	Raw func(t *testing.T) string
}

// TestKey is a secret key for tests (64 hex characters).
const TestKey = "7f1c0e9a5b3d2f4e6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f"

// RunSecrets checks secrets at rest: what a store with a key writes is
// sealed, reads give the clear secret back, SealSecrets seals rows written
// in clear exactly once, and the wrong key (or none) opens nothing.
func RunSecrets(t *testing.T, h SecretsHarness) {
	box, err := secrets.New(TestKey)
	mustOK(t, err, "secrets.New")
	const devSecret, keySecret = "dev-secret-0123456789abcdef", "key-secret-ZYXWVUTSRQ/+="

	t.Run("NewRowsSealed", func(t *testing.T) {
		ctx := t.Context()
		s := h.Open(t, box)
		seedSecrets(t, s, devSecret, keySecret)
		raw := h.Raw(t)
		for _, plain := range []string{devSecret, keySecret} {
			if strings.Contains(raw, plain) {
				t.Fatalf("the raw database holds the secret %q in clear", plain)
			}
		}
		if strings.Count(raw, secrets.Prefix) < 2 {
			t.Fatalf("the raw database holds %d sealed values, want 2", strings.Count(raw, secrets.Prefix))
		}
		wantSecrets(t, s, devSecret, keySecret)
		n, err := s.SealSecrets(ctx)
		mustOK(t, err, "SealSecrets on sealed rows")
		wantEqual(t, int64(0), n, "rows sealed again")
	})

	t.Run("MigratePlaintextRows", func(t *testing.T) {
		ctx := t.Context()
		old := h.Open(t, nil)
		seedSecrets(t, old, devSecret, keySecret)
		if raw := h.Raw(t); !strings.Contains(raw, devSecret) || !strings.Contains(raw, keySecret) {
			t.Fatalf("without a key the secrets should be stored as given (the rows a migration finds)")
		}
		s := h.Reopen(t, box)
		wantSecrets(t, s, devSecret, keySecret) // clear rows still read before the migration
		n, err := s.SealSecrets(ctx)
		mustOK(t, err, "SealSecrets")
		wantEqual(t, int64(2), n, "rows sealed")
		raw := h.Raw(t)
		if strings.Contains(raw, devSecret) || strings.Contains(raw, keySecret) {
			t.Fatalf("a secret is still in clear after SealSecrets")
		}
		wantSecrets(t, s, devSecret, keySecret)
		n, err = s.SealSecrets(ctx)
		mustOK(t, err, "SealSecrets twice")
		wantEqual(t, int64(0), n, "rows sealed by the second run")
		wantSecrets(t, s, devSecret, keySecret)
	})

	t.Run("WrongKeyOpensNothing", func(t *testing.T) {
		ctx := t.Context()
		s := h.Open(t, box)
		seedSecrets(t, s, devSecret, keySecret)
		other, err := secrets.New(strings.Repeat("a", 64))
		mustOK(t, err, "secrets.New other")
		for name, b := range map[string]*secrets.Box{"another key": other, "no key": nil} {
			r := h.Reopen(t, b)
			if d, err := r.GetDevice(ctx, "pk1", "dev-1"); err == nil || d.Secret == devSecret {
				t.Fatalf("GetDevice with %s = %q, %v; want an error", name, d.Secret, err)
			}
			if k, err := r.GetAccessKey(ctx, "AKsealed"); err == nil || k.Secret == keySecret {
				t.Fatalf("GetAccessKey with %s = %q, %v; want an error", name, k.Secret, err)
			}
		}
	})
}

func seedSecrets(t *testing.T, s store.Store, devSecret, keySecret string) {
	t.Helper()
	ctx := t.Context()
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}), "CreateTenant")
	mustProduct(t, s, "acme", "pk1", "one")
	mustOK(t, s.CreateDevice(ctx, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "dev-1", Secret: devSecret, CreatedAt: base}), "CreateDevice")
	mustOK(t, s.CreateAccessKey(ctx, ota.AccessKey{ID: "AKsealed", TenantID: "acme", Secret: keySecret, Role: ota.RoleAdmin, CreatedAt: base}), "CreateAccessKey")
}

func wantSecrets(t *testing.T, s store.Store, devSecret, keySecret string) {
	t.Helper()
	ctx := t.Context()
	d, err := s.GetDevice(ctx, "pk1", "dev-1")
	mustOK(t, err, "GetDevice")
	wantEqual(t, devSecret, d.Secret, "device secret")
	list, _, err := s.ListDevices(ctx, store.DeviceFilter{TenantID: "acme"}, store.Page{}, false)
	mustOK(t, err, "ListDevices")
	if len(list) != 1 || list[0].Secret != devSecret {
		t.Fatalf("ListDevices = %+v, want dev-1 with its clear secret", list)
	}
	k, err := s.GetAccessKey(ctx, "AKsealed")
	mustOK(t, err, "GetAccessKey")
	wantEqual(t, keySecret, k.Secret, "access key secret")
	keys, err := s.ListAccessKeys(ctx, "acme")
	mustOK(t, err, "ListAccessKeys")
	if len(keys) != 1 || keys[0].Secret != keySecret {
		t.Fatalf("ListAccessKeys = %+v, want AKsealed with its clear secret", keys)
	}
}
