package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
)

// Regroup and delete a device, then delete its product: refused while a job
// runs, done once it is canceled, and everything of it goes.
func TestDeviceAndProductLifecycleCLI(t *testing.T) {
	clearClientEnv(t)
	base := startAPI(t)
	conn := []string{"--server", base, "--key", cliKeyID + ":" + cliSecret}
	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, conn...)...)
		if err != nil {
			t.Fatalf("updraft %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, err := runCLI(t, append(args, conn...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("updraft %s: %v; want an error containing %q", strings.Join(args, " "), err, want)
		}
	}
	run("product", "create", "lamp", "--name", "Lamp")
	run("device", "create", "lamp", "l1", "--group", "old")
	run("device", "create", "lamp", "l2", "--group", "old")

	if out := run("device", "regroup", "lamp", "l1", "--group", "beta", "--group", "eu"); !strings.Contains(out, "beta,eu") {
		t.Fatalf("regroup:\n%s", out)
	}
	var list client.List[client.Device]
	if err := json.Unmarshal([]byte(run("device", "list", "lamp", "--group", "old", "--output", "json")), &list); err != nil ||
		len(list.Items) != 1 || list.Items[0].Name != "l2" {
		t.Fatalf("devices still in group old: %+v (%v)", list.Items, err)
	}
	fails("--group", "device", "regroup", "lamp", "l1")
	fails("at most", "device", "regroup", "lamp", "l1", "--group", "a", "--group", "b", "--group", "c", "--group", "d",
		"--group", "e", "--group", "f", "--group", "g", "--group", "h", "--group", "i", "--group", "j", "--group", "k")
	if out := run("device", "regroup", "lamp", "l1", "--none", "--output", "json"); strings.Contains(out, "beta") {
		t.Fatalf("regroup --none:\n%s", out)
	}

	// Labels: attributes and tags replaced separately; the groups stay.
	if out := run("device", "label", "lamp", "l1", "--attr", "region=north", "--attr", "hw=v2", "--tag", "site=a"); !strings.Contains(out, "hw=v2,region=north") || !strings.Contains(out, "site=a") {
		t.Fatalf("label:\n%s", out)
	}
	var labelled client.Device
	if err := json.Unmarshal([]byte(run("device", "label", "lamp", "l1", "--clear-tags", "--output", "json")), &labelled); err != nil ||
		len(labelled.Tags) != 0 || labelled.Attributes["region"] != "north" {
		t.Fatalf("after --clear-tags: %+v (%v)", labelled, err)
	}
	fails("--attr", "device", "label", "lamp", "l1")
	fails("KEY=VALUE", "device", "label", "lamp", "l1", "--attr", "novalue")
	fails("label key", "device", "label", "lamp", "l1", "--attr", "bad key!=x")

	run("device", "delete", "lamp", "l2")
	fails("not_found", "device", "show", "lamp", "l2")
	fails("not_found", "device", "delete", "lamp", "l2")

	// A job that stays unfinished (l1 never reports a version: it waits).
	fw := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(fw, []byte("firmware"), 0o600); err != nil {
		t.Fatal(err)
	}
	var pkg client.Package
	if err := json.Unmarshal([]byte(run("package", "upload", fw, "--product", "lamp", "--version", "2.0", "--output", "json")), &pkg); err != nil {
		t.Fatal(err)
	}
	var job client.Job
	if err := json.Unmarshal([]byte(run("job", "create", "--package", pkg.ID, "--all", "--output", "json")), &job); err != nil {
		t.Fatal(err)
	}
	fails("unfinished job "+job.ID, "product", "delete", "lamp")
	run("device", "show", "lamp", "l1") // nothing was removed
	run("job", "cancel", job.ID)
	run("product", "delete", "lamp")
	fails("not_found", "product", "show", "lamp")
	fails("not_found", "package", "show", pkg.ID)
	fails("not_found", "job", "show", job.ID)
	// The key is free again and the new product starts empty.
	run("product", "create", "lamp", "--name", "Lamp again")
	if err := json.Unmarshal([]byte(run("device", "list", "lamp", "--output", "json")), &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("a recreated product has devices %+v (%v)", list.Items, err)
	}
}
