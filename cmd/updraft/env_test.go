package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	root.AddCommand(newProductCmd(), newDeviceCmd(), newPackageCmd(), newJobCmd(), newObjectCmd())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), err
}
