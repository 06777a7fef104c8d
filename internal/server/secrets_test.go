package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
)

// dbBytes is what `strings updraft.db*` reads: the database, its WAL and SHM.
func dbBytes(t *testing.T, dir string) string {
	t.Helper()
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(filepath.Join(dir, "updraft.db"+suffix))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return string(all)
}

// TestSecretsEncryptedAtRest: with no set-up, a server seals the access-key
// and device secrets it stores (the key lands in <data>/secret.key, 0600),
// and a restart seals rows an older version wrote in clear.
func TestSecretsEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir; c.SecretKey = "" })
	creds, _ := s.Credentials()
	p, err := s.Service().Authenticate(ctx, creds.AccessKeyID, creds.SecretAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Service().CreateProduct(ctx, p, ota.Product{Key: "pk", Name: "P"}); err != nil {
		t.Fatal(err)
	}
	dev, err := s.Service().CreateDevice(ctx, p, ota.Device{ProductKey: "pk", Name: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	raw := dbBytes(t, dir)
	for what, secret := range map[string]string{"access key": creds.SecretAccessKey, "device": dev.Secret} {
		if secret == "" || strings.Contains(raw, secret) {
			t.Errorf("the database files hold the %s secret %q in clear", what, secret)
		}
	}
	if !strings.Contains(raw, secrets.Prefix) {
		t.Error("no sealed value in the database")
	}
	st, err := os.Stat(filepath.Join(dir, secrets.KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key: %v %v, want mode 0600", st, err)
	}

	// An older version's row: written in clear by a store without a key.
	const legacy = "legacy-device-secret-0123456789"
	old, err := sqlite.Open(ctx, filepath.Join(dir, "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CreateDevice(ctx, ota.Device{TenantID: p.TenantID, ProductKey: "pk", Name: "old", Secret: legacy}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	if !strings.Contains(dbBytes(t, dir), legacy) {
		t.Fatal("the legacy row is not in clear: the test proves nothing")
	}

	s2 := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir; c.SecretKey = "" })
	got, err := s2.Store().GetDevice(ctx, "pk", "old")
	if err != nil || got.Secret != legacy {
		t.Fatalf("legacy device after the restart: %q, %v", got.Secret, err)
	}
	if _, err := s2.Service().Authenticate(ctx, creds.AccessKeyID, creds.SecretAccessKey); err != nil {
		t.Fatalf("the bootstrap key after the restart: %v", err)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dbBytes(t, dir), legacy) {
		t.Error("the restart left the legacy secret in clear")
	}

	// Another key opens nothing: the start says which key to use.
	cfg := config.Default()
	cfg.DataDir, cfg.HTTPAddr, cfg.MQTTAddr = dir, "127.0.0.1:0", config.Off
	cfg.SecretKey = strings.Repeat("b", 64)
	s3, err := server.New(ctx, cfg, nil)
	if err == nil {
		_ = s3.Shutdown(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "UPDRAFT_SECRET_KEY") {
		t.Errorf("a start with another key: %v, want an error naming the secret key", err)
	}
}
