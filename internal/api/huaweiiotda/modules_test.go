package huaweiiotda_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/ota"
)

// TestOtaModules: create, list, show, update and delete in both signing
// modes; module_id is stable and derived from product and module name; a
// module package needs its module.
func TestOtaModules(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	e.product("prod2")
	sum := e.putObject("fw-bucket", "mod/mcu.bin", firmware)
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			rec := &recorder{}
			c := e.client(mode, withRecorder(rec))
			created, err := c.CreateOtaModule(&model.CreateOtaModuleRequest{Body: &model.CreateOtaModule{
				AppId: "app1", ProductId: "prod1", ModuleName: "mcu", AliasName: ptr("主控_MCU"), Description: ptr("main MCU"),
			}})
			if err != nil {
				t.Fatal(err)
			}
			id := ota.ModuleID("prod1", "mcu")
			if created.HttpStatusCode != 201 || *created.ModuleId != id || *created.ModuleName != "mcu" || *created.AliasName != "主控_MCU" ||
				*created.ProductName != "Product prod1" || *created.AppId != "app1" || !iotdaTS.MatchString(*created.CreateTime) {
				t.Fatalf("create: %+v", created)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "create_ota_module")
			}
			if _, err := c.CreateOtaModule(&model.CreateOtaModuleRequest{Body: &model.CreateOtaModule{AppId: "app1", ProductId: "prod2", ModuleName: "modem"}}); err != nil {
				t.Fatal(err)
			}

			// A module package of it, and the module upgrade task type.
			req := createPkgReq("prod1", "M2", "fw-bucket", "mod/mcu.bin", ptr(sum))
			req.Body.PackageType, req.Body.ModuleName = "modulePackage", ptr("mcu")
			pkg, err := c.CreateOtaPackage(req)
			if err != nil {
				t.Fatal(err)
			}
			if *pkg.PackageType != "modulePackage" || *pkg.ModuleName != "mcu" {
				t.Fatalf("module package: %+v", pkg)
			}
			mods, err := c.ListOtaPackageInfo(&model.ListOtaPackageInfoRequest{PackageType: "modulePackage"})
			if err != nil || len(*mods.Packages) != 1 {
				t.Fatalf("module packages: %+v %v", mods, err)
			}
			var doc any = map[string]any{"package_ids": []string{*pkg.PackageId}}
			task := &model.CreateBatchTask{TaskName: "mcu_M2", TaskType: "firmwareUpgrade", Targets: &[]string{"prod1_dev_" + mode[:3]}, Document: &doc}
			_, err = c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: task})
			wantAPIError(t, err, 400, "IOTDA.000006")
			task.TaskType = "moduleUpgrade"
			mt, err := c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: task})
			if err != nil || *mt.TaskType != "moduleUpgrade" {
				t.Fatalf("module task: %+v %v", mt, err)
			}
			if l, err := c.ListBatchTasks(&model.ListBatchTasksRequest{TaskType: "moduleUpgrade"}); err != nil || len(*l.Batchtasks) != 1 {
				t.Fatalf("module tasks: %+v %v", l, err)
			}
			// Its one target is not a registered device: the sub-task is
			// skipped at once and the engine may complete the task before the
			// stop arrives (then a conflict).
			if _, err := c.StopBatchTask(&model.StopBatchTaskRequest{TaskId: *mt.TaskId}); err != nil {
				wantAPIError(t, err, 409, "IOTDA.000409")
			}
			if _, err := c.DeleteBatchTask(&model.DeleteBatchTaskRequest{TaskId: *mt.TaskId}); err != nil {
				t.Fatal(err)
			}

			shown, err := c.ShowOtaModule(&model.ShowOtaModuleRequest{ModuleId: id})
			if err != nil || *shown.ModuleName != "mcu" || *shown.ProductId != "prod1" || *shown.Description != "main MCU" {
				t.Fatalf("show: %+v %v", shown, err)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "show_ota_module")
			}

			all, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1"})
			if err != nil || *all.Page.Count != 2 || len(*all.Modules) != 2 {
				t.Fatalf("list: %+v %v", all, err)
			}
			ids := []string{*(*all.Modules)[0].ModuleId, *(*all.Modules)[1].ModuleId}
			if !sort.IsSorted(sort.Reverse(sort.StringSlice(ids))) {
				t.Errorf("modules not in marker order: %v", ids)
			}
			one, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", Limit: ptr(int32(1))})
			if err != nil || len(*one.Modules) != 1 {
				t.Fatalf("limit 1: %+v %v", one, err)
			}
			rest, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", Marker: one.Page.Marker})
			if err != nil || len(*rest.Modules) != 1 || *(*rest.Modules)[0].ModuleId != ids[1] {
				t.Fatalf("after marker: %+v %v", rest, err)
			}
			byProduct, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", ProductId: ptr("prod2")})
			if err != nil || len(*byProduct.Modules) != 1 || *(*byProduct.Modules)[0].ModuleName != "modem" {
				t.Fatalf("product filter: %+v %v", byProduct, err)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "list_ota_modules")
			}

			upd, err := c.UpdateOtaModule(&model.UpdateOtaModuleRequest{ModuleId: id, Body: &model.UpdateOtaModule{Description: ptr("main MCU, rev B")}})
			if err != nil || *upd.Description != "main MCU, rev B" || *upd.AliasName != "主控_MCU" {
				t.Fatalf("update: %+v %v", upd, err)
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "update_ota_module")
			}

			// In use by a package: not deleted.
			_, err = c.DeleteOtaModule(&model.DeleteOtaModuleRequest{ModuleId: id})
			wantAPIError(t, err, 409, "IOTDA.000409")
			if _, err := c.DeleteOtaPackage(&model.DeleteOtaPackageRequest{PackageId: *pkg.PackageId}); err != nil {
				t.Fatal(err)
			}
			for _, mid := range []string{id, ota.ModuleID("prod2", "modem")} {
				del, err := c.DeleteOtaModule(&model.DeleteOtaModuleRequest{ModuleId: mid})
				if err != nil || del.HttpStatusCode != 204 {
					t.Fatalf("delete: %+v %v", del, err)
				}
			}
			if mode == modeSDK {
				checkGolden(t, rec, e.project, "delete_ota_module")
			}
			_, err = c.ShowOtaModule(&model.ShowOtaModuleRequest{ModuleId: id})
			wantAPIError(t, err, 404, "IOTDA.000404")
		})
	}
}

// TestOtaModuleLimits: names, aliases, descriptions, 10 modules per product,
// duplicates, paging; rejected requests change nothing.
func TestOtaModuleLimits(t *testing.T) {
	e := newEnv(t)
	e.product("prod1")
	c := e.client(modeSDK)
	create := func(name string, mutate func(*model.CreateOtaModule)) error {
		b := &model.CreateOtaModule{AppId: "app1", ProductId: "prod1", ModuleName: name}
		if mutate != nil {
			mutate(b)
		}
		_, err := c.CreateOtaModule(&model.CreateOtaModuleRequest{Body: b})
		return err
	}
	count := func() int {
		r, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", Limit: ptr(int32(50))})
		if err != nil {
			t.Fatal(err)
		}
		return int(*r.Page.Count)
	}
	bad := map[string]struct {
		name   string
		mutate func(*model.CreateOtaModule)
		status int
	}{
		"name of 65":         {strings.Repeat("m", 65), nil, 400},
		"name with a space":  {"m 1", nil, 400},
		"no name":            {"", nil, 400},
		"the default module": {"default", nil, 400},
		"alias of 65":        {"m1", func(b *model.CreateOtaModule) { b.AliasName = ptr(strings.Repeat("a", 65)) }, 400},
		"alias with a space": {"m1", func(b *model.CreateOtaModule) { b.AliasName = ptr("a b") }, 400},
		"description 1025":   {"m1", func(b *model.CreateOtaModule) { b.Description = ptr(strings.Repeat("d", 1025)) }, 400},
		"app_id missing":     {"m1", func(b *model.CreateOtaModule) { b.AppId = "" }, 400},
		"unknown product":    {"m1", func(b *model.CreateOtaModule) { b.ProductId = "nope" }, 404},
	}
	for name, tc := range bad {
		err := create(tc.name, tc.mutate)
		code := map[int]string{400: "IOTDA.000006", 404: "IOTDA.000404"}[tc.status]
		t.Run(name, func(t *testing.T) { wantAPIError(t, err, tc.status, code) })
	}
	if n := count(); n != 0 {
		t.Fatalf("rejected requests created %d modules", n)
	}
	if err := create(strings.Repeat("m", 64), func(b *model.CreateOtaModule) {
		b.AliasName, b.Description = ptr(strings.Repeat("a", 64)), ptr(strings.Repeat("d", 1024))
	}); err != nil {
		t.Fatalf("limits just inside: %v", err)
	}
	for i := 2; i <= 10; i++ {
		if err := create(fmt.Sprintf("m%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	wantAPIError(t, create("m11", nil), 409, "IOTDA.000409")
	wantAPIError(t, create("m2", nil), 409, "IOTDA.000409")
	if n := count(); n != 10 {
		t.Fatalf("%d modules, want 10", n)
	}
	_, err := c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", Limit: ptr(int32(51))})
	wantAPIError(t, err, 400, "IOTDA.000017")
	_, err = c.ListOtaModules(&model.ListOtaModulesRequest{AppId: "app1", Offset: ptr(int32(501))})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.UpdateOtaModule(&model.UpdateOtaModuleRequest{ModuleId: ota.ModuleID("prod1", "m2"), Body: &model.UpdateOtaModule{AliasName: ptr(strings.Repeat("a", 65))}})
	wantAPIError(t, err, 400, "IOTDA.000006")
	_, err = c.UpdateOtaModule(&model.UpdateOtaModuleRequest{ModuleId: "0123456789abcdef01234567", Body: &model.UpdateOtaModule{}})
	wantAPIError(t, err, 404, "IOTDA.000404")
}
