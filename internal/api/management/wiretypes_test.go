package management

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// TestOpenAPIMatchesWireTypes: each schema of the served document has
// exactly the JSON fields of the Go types that carry it on the wire — the
// server's own structs, the public client's and the device SDK's — so the
// document, the handlers and client/ cannot drift apart unnoticed.
func TestOpenAPIMatchesWireTypes(t *testing.T) {
	doc, err := mergeOpenAPI(openapiFS)
	if err != nil {
		t.Fatal(err)
	}
	schemas, _ := doc["components"].(object)["schemas"].(object)
	for name, types := range map[string][]any{
		"ProductCreate":        {productCreate{}, client.ProductCreate{}},
		"Product":              {productJSON{}, client.Product{}},
		"ModuleCreate":         {moduleCreate{}, client.ModuleCreate{}},
		"ModuleUpdate":         {moduleUpdate{}, client.ModuleUpdate{}},
		"Module":               {moduleJSON{}, client.Module{}},
		"DeviceCreate":         {deviceCreate{}, client.DeviceCreate{}},
		"DeviceUpdate":         {deviceUpdate{}, client.DeviceUpdate{}},
		"Device":               {deviceJSON{}, client.Device{}},
		"PackageMetadata":      {packageMetadata{}, client.PackageMetadata{}},
		"Package":              {packageJSON{}, client.Package{}},
		"PackageUpdate":        {packageUpdate{}, client.PackageUpdate{}},
		"JobTarget":            {targetJSON{}, client.JobTarget{}},
		"JobWindow":            {windowJSON{}, client.JobWindow{}},
		"JobSchedule":          {scheduleJSON{}, client.JobSchedule{}},
		"JobRetry":             {retryJSON{}, client.JobRetry{}},
		"JobAbort":             {abortJSON{}, client.JobAbort{}},
		"JobCreate":            {jobCreate{}, client.JobCreate{}},
		"JobUpdate":            {jobUpdate{}, client.JobUpdate{}},
		"Job":                  {jobJSON{}, client.Job{}},
		"Task":                 {taskJSON{}, client.Task{}},
		"TaskResult":           {taskResultJSON{}, client.TaskResult{}},
		"TaskResults":          {taskResults{}, client.TaskResults{}},
		"TasksRequest":         {tasksRequest{}},
		"CanceledCount":        {canceledCount{}, client.CanceledCount{}},
		"Quota":                {quotaJSON{}, client.Quota{}},
		"TenantCreate":         {tenantCreate{}, client.TenantCreate{}},
		"Tenant":               {tenantJSON{}, client.Tenant{}},
		"AccessKey":            {keyJSON{}, client.AccessKey{}},
		"Tag":                  {tagJSON{}, client.Tag{}, wire.Tag{}},
		"DeviceNotice":         {wire.Notice{}},
		"DeviceVersionReport":  {wire.VersionReport{}},
		"DeviceProgressReport": {wire.ProgressReport{}},
	} {
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
		for _, v := range types {
			got := jsonFields(reflect.TypeOf(v))
			if !slices.Equal(got, want) {
				t.Errorf("%s: %T has JSON fields %v, the document %v", name, v, got, want)
			}
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
