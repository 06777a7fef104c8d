package aliyuniot_test

import (
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

// TestModules: CreateOTAModule, UpdateOTAModule, DeleteOTAModule and
// ListOTAModuleByProduct through the legacy SDK, read back after each call;
// Alibaba's limits just inside and just outside; the default module and a
// module with firmware cannot be deleted.
func TestModules(t *testing.T) {
	e := newEnv(t)
	e.product("pkMod")
	l := e.legacy(e.ak, e.sk)
	code := func(success bool, c string, err error) string {
		t.Helper()
		if err != nil {
			code, _ := legacyCode(t, err)
			return code
		}
		if !success {
			return c
		}
		return ""
	}
	create := func(name, alias, desc string) string {
		r := at(e, iot.CreateCreateOTAModuleRequest())
		r.ProductKey, r.ModuleName, r.AliasName, r.Desc = "pkMod", name, alias, desc
		res, err := l.CreateOTAModule(r)
		if err != nil {
			return code(false, "", err)
		}
		return code(res.Success, res.Code, nil)
	}
	list := func() map[string]iot.OtaModuleDTO {
		t.Helper()
		r := at(e, iot.CreateListOTAModuleByProductRequest())
		r.ProductKey = "pkMod"
		res, err := l.ListOTAModuleByProduct(r)
		if err != nil || !res.Success {
			t.Fatalf("ListOTAModuleByProduct: %v %+v", err, res)
		}
		out := map[string]iot.OtaModuleDTO{}
		for _, m := range res.Data {
			out[m.ModuleName] = m
		}
		return out
	}
	for _, bad := range [][3]string{
		{strings.Repeat("m", 65), "alias", ""},
		{"mcu", strings.Repeat("a", 65), ""},
		{"mcu", "alias", strings.Repeat("d", 101)},
		{"mcu", "", ""},
		{"bad/name", "alias", ""},
		{"default", "alias", ""},
	} {
		if c := create(bad[0], bad[1], bad[2]); c == "" {
			t.Fatalf("CreateOTAModule(%q, %q, %d-char Desc) succeeded", bad[0], bad[1], len(bad[2]))
		}
	}
	if got := list(); len(got) != 1 || got["default"].ModuleName != "default" {
		t.Fatalf("after refused creates: %+v", got)
	}
	long := strings.Repeat("m", 64)
	if c := create(long, strings.Repeat("a", 64), strings.Repeat("d", 100)); c != "" {
		t.Fatalf("CreateOTAModule at the limits: %s", c)
	}
	if c := create("mcu", "MCU", "the microcontroller"); c != "" {
		t.Fatalf("CreateOTAModule mcu: %s", c)
	}
	if c := create("mcu", "MCU", ""); c == "" {
		t.Fatal("a second module mcu was created")
	}
	got := list()
	if len(got) != 3 || got["mcu"].AliasName != "MCU" || got["mcu"].Desc != "the microcontroller" || got["mcu"].ProductKey != "pkMod" || got[long].GmtCreate == "" {
		t.Fatalf("modules = %+v", got)
	}

	ur := at(e, iot.CreateUpdateOTAModuleRequest())
	ur.ProductKey, ur.ModuleName, ur.AliasName, ur.Desc = "pkMod", "mcu", "Main MCU", "renamed"
	if res, err := l.UpdateOTAModule(ur); code(res != nil && res.Success, resCode(res), err) != "" {
		t.Fatalf("UpdateOTAModule: %v %+v", err, res)
	}
	if m := list()["mcu"]; m.AliasName != "Main MCU" || m.Desc != "renamed" {
		t.Fatalf("after UpdateOTAModule: %+v", m)
	}
	ur.Desc = strings.Repeat("d", 101)
	if res, err := l.UpdateOTAModule(ur); code(res != nil && res.Success, resCode(res), err) == "" {
		t.Fatal("UpdateOTAModule with a 101-char Desc succeeded")
	}

	del := func(name string) string {
		r := at(e, iot.CreateDeleteOTAModuleRequest())
		r.ProductKey, r.ModuleName = "pkMod", name
		res, err := l.DeleteOTAModule(r)
		if err != nil {
			return code(false, "", err)
		}
		return code(res.Success, res.Code, nil)
	}
	c := e.tea("", e.ak, e.sk)
	firmwareWith(t, c, "pkMod", "fw-mcu", "1.1", []byte("mcu image"), map[string]string{"ModuleName": "mcu"})
	if del("default") == "" || del("mcu") == "" || del("nope") == "" {
		t.Fatal("deleting the default module, a module with firmware or an unknown one succeeded")
	}
	if c := del(long); c != "" {
		t.Fatalf("DeleteOTAModule: %s", c)
	}
	if got := list(); len(got) != 2 || got["mcu"].ModuleName == "" {
		t.Fatalf("after delete: %+v", got)
	}
}

func resCode(r *iot.UpdateOTAModuleResponse) string {
	if r == nil {
		return ""
	}
	return r.Code
}
