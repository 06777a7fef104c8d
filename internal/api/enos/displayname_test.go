package enos_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFirmwareDisplayNames: EnOS firmware names are free text — spaces,
// dots, any script — up to 128 characters; 129, or a name that starts with
// a space, is refused with 99400 and creates nothing.
func TestFirmwareDisplayNames(t *testing.T) {
	e := newEnv(t)
	e.fleet("pk-names", "1.0")
	c := e.client()
	c.login()
	file := []byte("firmware bytes")
	for i, name := range []string{"Gateway FW 2.0 (beta)", "网关固件 2.0", strings.Repeat("n", 128)} {
		a := c.upload(e.org, "pk-names", pyMetadata(name, "2."+string(rune('0'+i)), file, false), "fw.bin", file)
		wantCode(t, "create "+name, a, 0)
		got := c.do("ota-firmwares", "get", map[string]string{"orgId": e.org, "firmwareId": dataField(t, a, "firmwareId")}, map[string]any{}, nil)
		wantCode(t, "get "+name, got, 0)
		var fw struct {
			Name struct {
				DefaultValue string `json:"defaultValue"`
			} `json:"name"`
		}
		if err := json.Unmarshal(got.Data, &fw); err != nil || fw.Name.DefaultValue != name {
			t.Fatalf("firmware %q read back as %q (%v)", name, fw.Name.DefaultValue, err)
		}
	}
	for _, name := range []string{strings.Repeat("n", 129), " leading"} {
		wantCode(t, "create "+name, c.upload(e.org, "pk-names", pyMetadata(name, "3.0", file, false), "fw.bin", file), 99400)
	}
	a := c.do("ota-firmwares", "search", map[string]string{"orgId": e.org}, map[string]any{"expression": "productKey='pk-names'"}, nil)
	wantCode(t, "search", a, 0)
	if a.Pagination == nil || a.Pagination.TotalSize != 3 {
		t.Fatalf("after the refused creates: %+v firmware, want 3", a.Pagination)
	}
}
