package enos_test

import (
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestScopeByAttributesAndTags: an upgrade job scoped by EnOS attributes and
// tags targets exactly the devices carrying every pair (set through the
// service, as the native API does); values that cannot match are refused.
func TestScopeByAttributesAndTags(t *testing.T) {
	e := newEnv(t)
	e.fleet("pk-lab", "1.0", "n1", "n2", "s1", "plain")
	label := func(name string, attrs, tags map[string]string) {
		t.Helper()
		if _, err := e.svc.SetDeviceLabels(e.ctx, e.p, "pk-lab", name, attrs, tags); err != nil {
			t.Fatal(err)
		}
	}
	label("n1", map[string]string{"region": "north", "rated": "2"}, map[string]string{"site": "a"})
	label("n2", map[string]string{"region": "north", "rated": "3"}, map[string]string{"site": "a"})
	label("s1", map[string]string{"region": "south", "rated": "2"}, map[string]string{"site": "a"})
	c := e.client()
	c.login()
	with := e.params
	file := []byte(strings.Repeat("labels ", 500))
	a := c.upload(e.org, "pk-lab", pyMetadata("lab-fw", "2.0", file, false), "lab.bin", file)
	wantCode(t, "create firmware", a, 0)
	fw := dataField(t, a, "firmwareId")
	job := func(scope map[string]any) map[string]any {
		return map[string]any{"name": map[string]any{"defaultValue": "by labels"}, "type": "upgrade", "upgradePolicy": "snapshot",
			"enableUpgradeRequest": true, "upgradeScope": scope}
	}
	count := func(jobID string) int64 {
		t.Helper()
		wantCode(t, "start", c.do("ota-jobs", "start", with("jobId", jobID), map[string]any{}, nil), 0)
		for range 10 { // the engine materializes selections
			if _, err := e.svc.Advance(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
		a := c.do("ota-jobs", "searchTask", with(), map[string]any{"expression": "jobId = '" + jobID + "'"}, nil)
		wantCode(t, "searchTask", a, 0)
		return a.Pagination.TotalSize
	}
	// A number matches the attribute's text "2"; the tag narrows further.
	a = c.do("ota-jobs", "create", with("firmwareId", fw), job(map[string]any{"type": "partial",
		"attributes": map[string]any{"region": "north", "rated": 2}, "tags": map[string]string{"site": "a"}}), nil)
	wantCode(t, "create by attributes and tags", a, 0)
	j1 := dataField(t, a, "jobId")
	if n := count(j1); n != 1 {
		t.Fatalf("tasks of the attributes+tags job = %d, want 1 (n1)", n)
	}
	got := c.do("ota-jobs", "get", with("jobId", j1), nil, nil)
	if !strings.Contains(string(got.Data), `"rated":"2"`) || !strings.Contains(string(got.Data), `"site":"a"`) {
		t.Fatalf("get job does not show its scope: %s", got.Data)
	}
	a = c.do("ota-jobs", "create", with("firmwareId", fw), job(map[string]any{"type": "partial", "tags": map[string]string{"site": "a"}}), nil)
	wantCode(t, "create by tag", a, 0)
	if n := count(dataField(t, a, "jobId")); n != 3 {
		t.Fatalf("tasks of the tag job = %d, want 3", n)
	}
	wantCode(t, "object attribute value", c.do("ota-jobs", "create", with("firmwareId", fw),
		job(map[string]any{"type": "partial", "attributes": map[string]any{"region": map[string]any{"x": 1}}}), nil), 99400)
	wantCode(t, "attributes on a total scope", c.do("ota-jobs", "create", with("firmwareId", fw),
		job(map[string]any{"type": "total", "attributes": map[string]any{"region": "north"}}), nil), 99400)
	// A label the device cannot carry is refused and changes nothing.
	if _, err := e.svc.SetDeviceLabels(e.ctx, e.p, "pk-lab", "plain", map[string]string{"bad key!": "x"}, nil); ota.ErrorCode(err) != ota.CodeInvalid {
		t.Fatalf("bad label key: %v, want CodeInvalid", err)
	}
	if d, _ := e.svc.GetDevice(e.ctx, e.p, "pk-lab", "plain"); d.Attributes != nil {
		t.Fatalf("refused labels were stored: %v", d.Attributes)
	}
}
