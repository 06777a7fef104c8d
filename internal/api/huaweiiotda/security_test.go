package huaweiiotda_test

import (
	"context"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
)

// TestReadonlyKeyRefused: through the official SDK, a readonly key lists
// packages but its create and delete are refused with 403 IOTDA.000021 in
// the Huawei envelope, and nothing changes.
func TestReadonlyKeyRefused(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	sum := e.putObject("fw-bucket", "ro/app.bin", firmware)
	admin := e.p
	admin.Role = ota.RoleAdmin
	ro, err := e.svc.CreateAccessKey(context.Background(), admin, "", ota.RoleReadonly)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := e.client(modeSDK).CreateOtaPackage(createPkgReq("prod1", "V1.0", "fw-bucket", "ro/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	before := e.packageCount()
	for _, mode := range modes {
		c := e.client(mode, withKey(ro.ID, ro.Secret))
		if _, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage"}); err != nil {
			t.Fatalf("%s: a readonly key cannot list: %v", mode, err)
		}
		_, err := c.CreateOtaPackage(createPkgReq("prod1", "V2.0", "fw-bucket", "ro/app.bin", ptr(sum)))
		wantAPIError(t, err, 403, "IOTDA.000021")
		_, err = c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: *pkg.PackageId})
		wantAPIError(t, err, 403, "IOTDA.000021")
		if n := e.packageCount(); n != before {
			t.Fatalf("%s: packages %d after refused calls, want %d", mode, n, before)
		}
	}
}

// TestRateLimited: with --rate-limit 0.05 (burst 1) a key's first call
// passes and the next is Huawei's throttling answer, IOTDA.021101; another
// key is not affected.
func TestRateLimited(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.RateLimit = "0.05" })
	c := e.client(modeSDK)
	list := &model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage"}
	if _, err := c.ListOtaPackageInfo(list); err != nil {
		t.Fatal(err)
	}
	_, err := c.ListOtaPackageInfo(list)
	wantAPIError(t, err, 403, "IOTDA.021101")

	admin := e.p
	admin.Role = ota.RoleAdmin
	other, err := e.svc.CreateAccessKey(context.Background(), admin, "", ota.RoleReadonly)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client(modeSDK, withKey(other.ID, other.Secret)).ListOtaPackageInfo(list); err != nil {
		t.Fatalf("another key: %v", err)
	}
}
