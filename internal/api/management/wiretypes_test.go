package management

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/apiv1"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// TestOpenAPIMatchesWireTypes: each schema of the served document has
// exactly the JSON fields of the one Go type that carries it on the wire —
// package apiv1's, which the handlers encode and decode and client/ re-exports,
// or the device SDK's — so the document and the code cannot drift apart
// unnoticed.
func TestOpenAPIMatchesWireTypes(t *testing.T) {
	doc, err := mergeOpenAPI(openapiFS)
	if err != nil {
		t.Fatal(err)
	}
	schemas, _ := doc["components"].(object)["schemas"].(object)
	types := map[string]any{
		"Error":                apiv1.Error{},
		"ProductCreate":        apiv1.ProductCreate{},
		"Product":              apiv1.Product{},
		"ModuleCreate":         apiv1.ModuleCreate{},
		"ModuleUpdate":         apiv1.ModuleUpdate{},
		"Module":               apiv1.Module{},
		"DeviceCreate":         apiv1.DeviceCreate{},
		"DeviceUpdate":         apiv1.DeviceUpdate{},
		"Device":               apiv1.Device{},
		"PackageMetadata":      apiv1.PackageMetadata{},
		"Package":              apiv1.Package{},
		"PackageUpdate":        apiv1.PackageUpdate{},
		"Object":               apiv1.Object{},
		"JobTarget":            apiv1.JobTarget{},
		"JobWindow":            apiv1.JobWindow{},
		"JobSchedule":          apiv1.JobSchedule{},
		"JobRetry":             apiv1.JobRetry{},
		"JobAbort":             apiv1.JobAbort{},
		"JobCreate":            apiv1.JobCreate{},
		"JobUpdate":            apiv1.JobUpdate{},
		"Job":                  apiv1.Job{},
		"Task":                 apiv1.Task{},
		"TaskList":             apiv1.TaskPage{},
		"TaskResult":           apiv1.TaskResult{},
		"TaskResults":          apiv1.TaskResults{},
		"TasksRequest":         apiv1.TasksRequest{},
		"CanceledCount":        apiv1.CanceledCount{},
		"Quota":                apiv1.Quota{},
		"TenantCreate":         apiv1.TenantCreate{},
		"Tenant":               apiv1.Tenant{},
		"KeyCreate":            apiv1.AccessKeyCreate{},
		"AccessKey":            apiv1.AccessKey{},
		"Tag":                  apiv1.Tag{},
		"DeviceNotice":         wire.Notice{},
		"DeviceVersionReport":  wire.VersionReport{},
		"DeviceProgressReport": wire.ProgressReport{},
		"ProductList":          apiv1.List[apiv1.Product]{},
		"ModuleList":           apiv1.List[apiv1.Module]{},
		"DeviceList":           apiv1.List[apiv1.Device]{},
		"PackageList":          apiv1.List[apiv1.Package]{},
		"JobList":              apiv1.List[apiv1.Job]{},
		"TenantList":           apiv1.List[apiv1.Tenant]{},
		"AccessKeyList":        apiv1.List[apiv1.AccessKey]{},
		"AuditEntry":           apiv1.AuditEntry{},
		"AuditEntryList":       apiv1.List[apiv1.AuditEntry]{},
	}
	// Every object schema has its type: a schema added without one (or a
	// wire type the document leaves out) fails here.
	for name, s := range schemas {
		if _, ok := s.(object)["properties"]; ok && types[name] == nil && name != "TaskCounts" {
			t.Errorf("schema %s has no wire type in this test", name)
		}
	}
	// TaskCounts is Job.counts: one number per task state.
	var counts []string
	for p := range schemas["TaskCounts"].(object)["properties"].(object) {
		counts = append(counts, p)
	}
	var states []string
	for _, st := range ota.TaskStates {
		states = append(states, string(st))
	}
	sort.Strings(counts)
	sort.Strings(states)
	if !slices.Equal(counts, states) {
		t.Errorf("TaskCounts has properties %v, the task states are %v", counts, states)
	}
	for name, typ := range types {
		schema, _ := schemas[name].(object)
		if schema == nil {
			t.Errorf("schema %s is not in the document", name)
			continue
		}
		props, _ := schema["properties"].(object)
		var want []string
		for p := range props {
			want = append(want, p)
		}
		sort.Strings(want)
		if got := jsonFields(reflect.TypeOf(typ)); !slices.Equal(got, want) {
			t.Errorf("%s: %T has JSON fields %v, the document %v", name, typ, got, want)
		}
	}
}

// jsonFields lists the JSON names of a struct's exported fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
