package huaweiiotda_test

import (
	"context"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// TestTenantIsolation: an admin key of a second tenant, used through the
// official SDK with its own project id, sees nothing of the default tenant's
// packages, modules and batch tasks, cannot read or change them by id, and
// cannot use the default tenant's project id at all.
func TestTenantIsolation(t *testing.T) {
	f := newFleet(t, 2)
	ctx := context.Background()
	c := f.client(modeSDK)
	created, err := c.CreateBatchTask(f.taskReq(f.devices))
	if err != nil {
		t.Fatal(err)
	}
	taskID := *created.TaskId

	boot := f.p
	boot.Role = ota.RoleAdmin
	if _, err := f.svc.CreateTenant(ctx, boot, service.TenantInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	k, err := f.svc.CreateAccessKey(ctx, boot, "acme", ota.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	acme := f.client(modeSDK, withKey(k.ID, k.Secret), withProject("acme"))

	pkgs, err := acme.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage"})
	if err != nil {
		t.Fatal(err)
	}
	if pkgs.Packages != nil && len(*pkgs.Packages) != 0 {
		t.Errorf("acme lists %d of default's packages", len(*pkgs.Packages))
	}
	tasks, err := acme.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "firmwareUpgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if tasks.Batchtasks != nil && len(*tasks.Batchtasks) != 0 {
		t.Errorf("acme lists %d of default's batch tasks", len(*tasks.Batchtasks))
	}
	mods, err := acme.ListOtaModules(&model.ListOtaModulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if mods.Modules != nil && len(*mods.Modules) != 0 {
		t.Errorf("acme lists %d of default's modules", len(*mods.Modules))
	}

	_, err = acme.ShowOtaPackage(&model.ShowOtaPackageRequest{PackageId: f.pkgID})
	wantAPIError(t, err, 404, "IOTDA.000404")
	_, err = acme.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: taskID})
	wantAPIError(t, err, 404, "IOTDA.000404")
	_, err = acme.StopBatchTask(&model.StopBatchTaskRequest{TaskId: taskID})
	wantAPIError(t, err, 404, "IOTDA.000404")
	_, err = acme.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: f.pkgID})
	wantAPIError(t, err, 404, "IOTDA.000404")

	// The key with the default tenant's project id is refused outright.
	_, err = f.client(modeSDK, withKey(k.ID, k.Secret)).ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "firmwarePackage"})
	wantAPIError(t, err, 401, "IOTDA.000002")

	// And nothing of default's changed.
	shown, err := c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: taskID})
	if err != nil {
		t.Fatal(err)
	}
	if shown.Batchtask == nil || shown.Batchtask.Status == nil || *shown.Batchtask.Status == "Stopped" {
		t.Errorf("default's batch task after acme's calls: %+v", shown.Batchtask)
	}
	if _, err := c.ShowOtaPackage(&model.ShowOtaPackageRequest{PackageId: f.pkgID}); err != nil {
		t.Errorf("default's package after acme's delete: %v", err)
	}
}
