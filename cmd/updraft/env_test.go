package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
)

// The operator commands' tests share one harness: a real server in-process
// with a known access key, and the commands run in-process against it.

const (
	cliKeyID  = "CLITESTKEY0123456"
	cliSecret = "cli-test-secret-0123456789abcdef"
)

// startAPI runs a real server (server.StartForTest: SQLite, file blobs) whose
// first tenant has the access key cliKeyID:cliSecret, and returns its URL.
func startAPI(t *testing.T) string {
	t.Helper()
	return startServer(t, nil).URL()
}

// startAPIWithEngine is startAPI with a fast rollout engine, and the service
// for playing the devices.
func startAPIWithEngine(t *testing.T) (string, *service.Service) {
	t.Helper()
	srv := startServer(t, func(c *config.Config) { c.RolloutInterval = 10 * time.Millisecond })
	return srv.URL(), srv.Service()
}

func startServer(t *testing.T, mutate func(*config.Config)) *server.Server {
	t.Helper()
	return server.StartForTest(t, func(c *config.Config) {
		c.BootstrapTenant, c.BootstrapAccessKey, c.BootstrapSecretKey = "default", cliKeyID, cliSecret
		if mutate != nil {
			mutate(c)
		}
	})
}

// clearClientEnv keeps the developer's own UPDRAFT_* settings out of a test.
func clearClientEnv(t *testing.T) {
	for _, v := range []string{"UPDRAFT_SERVER", "UPDRAFT_KEY", "UPDRAFT_DATA"} {
		t.Setenv(v, "")
	}
}

// writeCredentials writes the credentials file the first `updraft serve`
// writes, for the server at base, and returns its data directory.
func writeCredentials(t *testing.T, base string) string {
	t.Helper()
	data := t.TempDir()
	creds, _ := json.Marshal(map[string]string{"tenant": "default", "access_key_id": cliKeyID, "secret_access_key": cliSecret, "server": base})
	if err := os.WriteFile(filepath.Join(data, "credentials.json"), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// runCLI runs the operator commands in-process on a fresh command tree (so
// no flag value leaks from one run into the next).
func runCLI(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "updraft", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newProductCmd(), newDeviceCmd(), newPackageCmd(), newJobCmd(), newObjectCmd(), newAuditCmd())
	setup(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), err
}

// report renders err as the CLI prints it.
func reported(err error) string {
	var b bytes.Buffer
	report(&b, err)
	return b.String()
}

func TestCLIMistakes(t *testing.T) {
	clearClientEnv(t)
	// A mistyped subcommand fails with a suggestion and the usage.
	_, err := runCLI(t, "package", "uplaod", "x.bin")
	if err == nil || !strings.Contains(err.Error(), `did you mean upload?`) || !strings.Contains(reported(err), "Available Commands:") {
		t.Errorf("package uplaod: %v\n%s", err, reported(err))
	}
	// Wrong arguments and unknown flags carry the usage.
	for _, args := range [][]string{{"product", "show"}, {"product", "list", "--bogus"}} {
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(reported(err), "Usage:") {
			t.Errorf("updraft %s: %v\n%s", strings.Join(args, " "), err, reported(err))
		}
	}
	// Nobody listening: a plain sentence naming the address and the flag.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = runCLI(t, "product", "list", "--server", addr, "--key", "a:b") // no scheme: http:// is assumed
	if msg := reported(err); !strings.Contains(msg, "cannot reach the Updraft server at http://"+addr) || !strings.Contains(msg, "--server") {
		t.Errorf("server down: %q", msg)
	}
	// --server without a scheme reaches a running server.
	base := startAPI(t)
	conn := []string{"--server", strings.TrimPrefix(base, "http://"), "--key", cliKeyID + ":" + cliSecret}
	if _, err := runCLI(t, append([]string{"product", "create", "flagterms", "--name", "Flag terms"}, conn...)...); err != nil {
		t.Fatalf("--server without scheme: %v", err)
	}
	// The server's complaint about an input field names the flag.
	fw := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(fw, []byte("fw"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, append([]string{"package", "upload", fw, "--product", "flagterms", "--version", "2.0", "--output", "json"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ ID string }
	if err := json.Unmarshal([]byte(out), &pkg); err != nil {
		t.Fatal(err)
	}
	_, err = runCLI(t, append([]string{"job", "create", "--package", pkg.ID, "--all", "--gray-percent", "150"}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), "--gray-percent") || strings.Contains(err.Error(), "gray_percent") {
		t.Errorf("job create --gray-percent 150: %v; want the flag named, not the API field", err)
	}
	// A field whose flag has the same name is named once, not "----version"
	// (the README's own example of a refused upload).
	_, err = runCLI(t, append([]string{"package", "upload", fw, "--product", "flagterms", "--version", "1.1 beta"}, conn...)...)
	if err == nil || !strings.Contains(err.Error(), `--version "1.1 beta"`) || strings.Contains(err.Error(), "---") {
		t.Errorf("package upload --version '1.1 beta': %v; want the flag named once", err)
	}
}
