package aliyuniot_test

import (
	"context"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestReadonlyKey: a readonly key may list but not change anything, and the
// refusal is Alibaba's 403 Forbidden.
func TestReadonlyKey(t *testing.T) {
	e := newEnv(t)
	admin := e.p
	admin.Role = ota.RoleAdmin
	ro, err := e.svc.CreateAccessKey(context.Background(), admin, "", ota.RoleReadonly)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"", "v2"} {
		c := e.tea(alg, ro.ID, ro.Secret)
		if _, err := c.call("POST", "ListOTAFirmware", nil); err != nil {
			t.Fatalf("tea(%s) readonly list: %v", alg, err)
		}
		for _, action := range []string{"GenerateOTAUploadURL", "DeleteOTAFirmware"} {
			_, err := c.call("POST", action, map[string]string{"FirmwareId": "nope"})
			if code := teaCode(t, err); code != "Forbidden" {
				t.Fatalf("tea(%s) readonly %s: code %q, want Forbidden", alg, action, code)
			}
		}
	}
}
