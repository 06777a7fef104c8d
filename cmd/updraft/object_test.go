package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObjectPut(t *testing.T) {
	clearClientEnv(t)
	base := startAPI(t)
	content := []byte("object put test image")
	file := filepath.Join(t.TempDir(), "app.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	key := cliKeyID + ":" + cliSecret

	out, err := runCLI(t, "object", "put", "--server", base, "--access-key", key, "--bucket", "fw-bucket", "--object-key", "releases/v2.0/app.bin", file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, want) || !strings.Contains(out, "releases/v2.0/app.bin") {
		t.Fatalf("output lacks the key or SHA-256 %s:\n%s", want, out)
	}

	// --key is the access key here too.
	if out, err := runCLI(t, "object", "put", "--server", base, "--key", key, "--bucket", "fw-bucket", "--object-key", "k2.bin", file); err != nil || !strings.Contains(out, want) {
		t.Fatalf("object put with --key: %v\n%s", err, out)
	}

	// JSON output, with the key from the credentials file.
	data := writeCredentials(t, base)
	out, err = runCLI(t, "object", "put", "--data", data, "--output", "json", "--bucket", "fw-bucket", "--object-key", "other name.bin", file)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Bucket, Key, SHA256 string
		Size                int64
	}
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if obj.Bucket != "fw-bucket" || obj.Key != "other name.bin" || obj.SHA256 != want || obj.Size != int64(len(content)) {
		t.Fatalf("got %+v", obj)
	}

	for _, args := range [][]string{
		{"object", "put", "--data", data, "--bucket", "Bad_Bucket", "--object-key", "k.bin", file}, // bucket rules
		{"object", "put", "--data", data, "--object-key", "k.bin", file},                           // no bucket
		{"object", "put", "--data", data, "--bucket", "fw-bucket", "--object-key", "a/../b.bin", file},
		{"object", "put", "--data", data, "--bucket", "fw-bucket", "--object-key", "k.bin", filepath.Join(data, "missing.bin")},
	} {
		if _, err := runCLI(t, args...); err == nil {
			t.Errorf("updraft %s succeeded", strings.Join(args, " "))
		}
	}
}
