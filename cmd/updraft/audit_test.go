package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

// TestAuditListCLI: changes made with the CLI are listed by `updraft audit
// list`, filtered by the flags, as a table and as JSON; a refused change
// leaves no entry and a bad flag is a clear error.
func TestAuditListCLI(t *testing.T) {
	clearClientEnv(t)
	base := startAPI(t)
	conn := []string{"--server", base, "--key", cliKeyID + ":" + cliSecret}
	run := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, conn...)...)
	}
	if _, err := run("product", "create", "lamp", "--name", "Lamp"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("device", "create", "lamp", "l1"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("device", "create", "lamp", "l1"); err == nil {
		t.Fatal("creating the same device twice succeeded")
	}
	out, err := run("audit", "list", "--actor", cliKeyID, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var l client.List[client.AuditEntry]
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("audit list --output json: %v\n%s", err, out)
	}
	var got []string
	for _, e := range l.Items {
		got = append(got, e.Action+" "+e.ResourceID+" "+e.ActorKeyID)
		if e.RequestID == "" {
			t.Errorf("entry without a request id: %+v", e)
		}
	}
	want := "device.create lamp/l1 " + cliKeyID + ",product.create lamp " + cliKeyID
	if strings.Join(got, ",") != want || l.Total != 2 {
		t.Fatalf("audit entries %v (total %d), want %s", got, l.Total, want)
	}
	out, err = run("audit", "list", "--action", "device.create")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "ACTION") || !strings.Contains(out, "lamp/l1") || strings.Contains(out, "product.create") {
		t.Fatalf("audit list --action device.create:\n%s", out)
	}
	if _, err := run("audit", "list", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Fatalf("bad --since: %v", err)
	}
}
