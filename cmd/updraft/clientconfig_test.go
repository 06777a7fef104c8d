package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("updraft %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestOperatorCLI(t *testing.T) {
	clearClientEnv(t)
	base := startAPI(t)

	// The credentials file the first `updraft serve` writes is enough.
	data := writeCredentials(t, base)
	out := mustRun(t, "product", "create", "thermo", "--name", "Thermostat", "--data", data)
	if !strings.Contains(out, "thermo") || !strings.Contains(out, "Thermostat") {
		t.Errorf("product create printed %q", out)
	}

	// Flags, and then the environment, work too.
	out = mustRun(t, "product", "list", "--server", base, "--key", cliKeyID+":"+cliSecret, "--output", "json")
	var products client.List[client.Product]
	if err := json.Unmarshal([]byte(out), &products); err != nil || products.Total != 1 || products.Items[0].Key != "thermo" {
		t.Fatalf("product list --output json: %q %v", out, err)
	}
	t.Setenv("UPDRAFT_SERVER", base)
	t.Setenv("UPDRAFT_KEY", cliKeyID+":"+cliSecret)
	out = mustRun(t, "product", "list")
	if !regexp.MustCompile(`(?m)^KEY\s+NAME`).MatchString(out) || !strings.Contains(out, "thermo") {
		t.Errorf("product list table: %q", out)
	}

	out = mustRun(t, "device", "create", "thermo", "t-001", "--group", "eu", "--group", "beta")
	secret := regexp.MustCompile(`secret:\s+([0-9a-f]{16,})`).FindStringSubmatch(out)
	if secret == nil || !strings.Contains(out, "eu,beta") {
		t.Fatalf("device create did not print a secret: %q", out)
	}
	out = mustRun(t, "device", "list", "thermo")
	if !strings.Contains(out, "t-001") || strings.Contains(out, secret[1]) {
		t.Errorf("device list: %q", out)
	}

	// Upload, list, show, download, delete.
	content := bytes.Repeat([]byte("updraft firmware "), 100_000)
	sum := sha256.Sum256(content)
	wantSHA := hex.EncodeToString(sum[:])
	file := filepath.Join(t.TempDir(), "thermo-1.1.0.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "package", "upload", file, "--product", "thermo", "--version", "1.1.0",
		"--source-version", "1.0.0", "--source-version", "1.0.1", "--custom-info", "reboot=1", "--desc", "fixes",
		"--sign", wantSHA, "--need-verify", "--tag", "channel=beta")
	id := regexp.MustCompile(`id:\s+([0-9a-f]{24})`).FindStringSubmatch(out)
	if id == nil || !strings.Contains(out, wantSHA) {
		t.Fatalf("upload printed %q, want an id and sha256 %s", out, wantSHA)
	}
	out = mustRun(t, "package", "show", id[1], "--output", "json")
	var pkg client.Package
	if err := json.Unmarshal([]byte(out), &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Name != "thermo-1_1_0" || len(pkg.SourceVersions) != 2 || pkg.CustomInfo != "reboot=1" || !pkg.NeedVerify || len(pkg.Tags) != 1 {
		t.Errorf("package %+v", pkg)
	}
	if out = mustRun(t, "package", "list", "--product", "thermo"); !strings.Contains(out, id[1]) {
		t.Errorf("package list: %q", out)
	}
	dl := filepath.Join(t.TempDir(), "copy.bin")
	mustRun(t, "package", "download", id[1], "-o", dl)
	if got, err := os.ReadFile(dl); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("downloaded file differs (%v)", err)
	}
	if out = mustRun(t, "package", "download", id[1], "-o", "-"); out != string(content) {
		t.Errorf("download to stdout: %d bytes", len(out))
	}
	if out = mustRun(t, "package", "delete", id[1]); !strings.Contains(out, "deleted") {
		t.Errorf("delete: %q", out)
	}

	// Errors carry the server's message and request id.
	_, err := runCLI(t, "package", "show", id[1])
	if err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "request id") {
		t.Errorf("show of a deleted package: %v", err)
	}
	_, err = runCLI(t, "package", "upload", file, "--product", "thermo", "--version", "bad version")
	if err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("bad version: %v", err)
	}
	_, err = runCLI(t, "product", "list", "--output", "yaml")
	if err == nil || !strings.Contains(err.Error(), "table or json") {
		t.Errorf("--output yaml: %v", err)
	}

	// No key anywhere: a clear error.
	t.Setenv("UPDRAFT_KEY", "")
	_, err = runCLI(t, "product", "list", "--data", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no access key") {
		t.Errorf("no key: %v", err)
	}
	_, err = runCLI(t, "product", "list", "--key", "justanid")
	if err == nil || !strings.Contains(err.Error(), "ID:SECRET") {
		t.Errorf("malformed key: %v", err)
	}
}

func TestDefaultPackageName(t *testing.T) {
	for _, tc := range []struct{ product, module, version, want string }{
		{"thermo", "", "1.2.0", "thermo-1_2_0"},
		{"thermo", "default", "2", "thermo-2"},
		{"cam", "modem", "v3.1-rc1", "cam-modem-v3_1-rc1"},
		{"p", "", strings.Repeat("9", 60), "p-" + strings.Repeat("9", 38)},
	} {
		if got := defaultPackageName(tc.product, tc.module, tc.version); got != tc.want {
			t.Errorf("defaultPackageName(%q, %q, %q) = %q, want %q", tc.product, tc.module, tc.version, got, tc.want)
		}
	}
}
