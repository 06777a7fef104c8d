package service_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store"
)

func TestBootstrapOnlyOnEmptyDatabase(t *testing.T) {
	e := newFoundationEnv(t)
	// newFoundationEnv created two tenants already: nothing happens.
	key, created, err := e.svc.Bootstrap(e.ctx, "", "", "")
	if err != nil || created || key.ID != "" {
		t.Fatalf("Bootstrap on a non-empty database = %+v, %v, %v; want nothing created", key, created, err)
	}
}

func TestBootstrapGeneratesAndAuthenticates(t *testing.T) {
	e := newFoundationEnvEmpty(t)
	key, created, err := e.svc.Bootstrap(e.ctx, "", "", "")
	if err != nil || !created {
		t.Fatalf("Bootstrap = %v, %v", created, err)
	}
	if key.TenantID != ota.DefaultTenantID {
		t.Errorf("tenant = %q, want %q", key.TenantID, ota.DefaultTenantID)
	}
	if !regexp.MustCompile(`^[0-9A-F]{20}$`).MatchString(key.ID) || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(key.Secret) {
		t.Errorf("generated key %q / secret %q have the wrong shape", key.ID, key.Secret)
	}
	p, err := e.svc.Authenticate(e.ctx, key.ID, key.Secret)
	if err != nil || p != (service.Principal{TenantID: "default", AccessKeyID: key.ID, Role: ota.RoleAdmin}) {
		t.Fatalf("Authenticate = %+v, %v (the bootstrap key is the first admin key)", p, err)
	}
	if ten, err := e.svc.GetTenant(e.ctx, p, ""); err != nil || !ten.Operator {
		t.Fatalf("bootstrapped tenant %+v, %v: want the operator tenant", ten, err)
	}
	// Second start: nothing new.
	again, created, err := e.svc.Bootstrap(e.ctx, "", "", "")
	if err != nil || created || again.ID != "" {
		t.Fatalf("second Bootstrap = %+v, %v, %v", again, created, err)
	}
	if n, _ := e.st.CountTenants(e.ctx); n != 1 {
		t.Errorf("tenants = %d, want 1", n)
	}
}

func TestBootstrapWithGivenKey(t *testing.T) {
	e := newFoundationEnvEmpty(t)
	key, created, err := e.svc.Bootstrap(e.ctx, "acme", "AKACME0001", "acme-secret-0001")
	if err != nil || !created || key.TenantID != "acme" || key.ID != "AKACME0001" || key.Secret != "acme-secret-0001" {
		t.Fatalf("Bootstrap = %+v, %v, %v", key, created, err)
	}
	for _, bad := range [][3]string{
		{"bad tenant!", "", ""},
		{"t", "AK:1", "secretsecret"},
		{"t", "AKOK", "short"},
	} {
		e2 := newFoundationEnvEmpty(t)
		if _, _, err := e2.svc.Bootstrap(e2.ctx, bad[0], bad[1], bad[2]); ota.ErrorCode(err) != ota.CodeInvalid {
			t.Errorf("Bootstrap%v = %v, want invalid", bad, err)
		}
		if n, _ := e2.st.CountTenants(e2.ctx); n != 0 {
			t.Errorf("Bootstrap%v left %d tenants", bad, n)
		}
	}
}

func TestAuthenticateRejects(t *testing.T) {
	e := newFoundationEnvEmpty(t)
	key, _, err := e.svc.Bootstrap(e.ctx, "acme", "AKACME0001", "acme-secret-0001")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{key.ID, "acme-secret-0002"},
		{key.ID, "acme-secret-000"},
		{key.ID, ""},
		{"AKNOPE", key.Secret},
		{"", ""},
	} {
		if _, err := e.svc.Authenticate(e.ctx, c[0], c[1]); ota.ErrorCode(err) != ota.CodeUnauthenticated {
			t.Errorf("Authenticate(%q, %q) = %v, want unauthenticated", c[0], c[1], err)
		}
	}
	k, err := e.svc.AccessKey(e.ctx, key.ID)
	if err != nil || k.Secret != key.Secret {
		t.Errorf("AccessKey = %+v, %v", k, err)
	}
	if _, err := e.svc.AccessKey(e.ctx, "AKNOPE"); ota.ErrorCode(err) != ota.CodeUnauthenticated {
		t.Errorf("AccessKey(unknown) = %v, want unauthenticated", err)
	}
}

func TestProductsTenantScopedAndGloballyUnique(t *testing.T) {
	e := newFoundationEnv(t)
	pr := e.product(e.a, "sensor")
	if pr.TenantID != "acme" || pr.CreatedAt.IsZero() {
		t.Errorf("created product %+v", pr)
	}
	// Another tenant cannot take the key, nor see the product.
	_, err := e.svc.CreateProduct(e.ctx, e.b, ota.Product{Key: "sensor", Name: "Mine"})
	fdnWantCode(t, err, ota.CodeConflict, "already taken")
	_, err = e.svc.GetProduct(e.ctx, e.b, "sensor")
	fdnWantCode(t, err, ota.CodeNotFound, `product "sensor" not found`)
	list, n, err := e.svc.ListProducts(e.ctx, e.b, store.Page{})
	if err != nil || n != 0 || len(list) != 0 {
		t.Errorf("other tenant lists %v (%d), %v", list, n, err)
	}
	got, err := e.svc.GetProduct(e.ctx, e.a, "sensor")
	if err != nil || got.Name != "Product sensor" {
		t.Errorf("GetProduct = %+v, %v", got, err)
	}
	_, err = e.svc.CreateProduct(e.ctx, e.a, ota.Product{Key: "bad key", Name: "x"})
	fdnWantCode(t, err, ota.CodeInvalid, "")
	// The caller cannot choose the tenant.
	pr2, err := e.svc.CreateProduct(e.ctx, e.b, ota.Product{TenantID: "acme", Key: "camera", Name: "Cam"})
	if err != nil || pr2.TenantID != "other" {
		t.Errorf("CreateProduct with a foreign TenantID = %+v, %v", pr2, err)
	}
	if _, err := e.svc.GetProduct(e.ctx, e.a, "camera"); ota.ErrorCode(err) != ota.CodeNotFound {
		t.Errorf("product landed in the wrong tenant: %v", err)
	}
}

func TestModules(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")

	def, err := e.svc.GetModule(e.ctx, e.a, "sensor", ota.DefaultModule)
	if err != nil || def.Name != ota.DefaultModule {
		t.Fatalf("default module = %+v, %v", def, err)
	}
	_, err = e.svc.GetModule(e.ctx, e.b, "sensor", ota.DefaultModule)
	fdnWantCode(t, err, ota.CodeNotFound, "product")

	_, err = e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: ota.DefaultModule})
	fdnWantCode(t, err, ota.CodeInvalid, "reserved")
	_, err = e.svc.CreateModule(e.ctx, e.b, ota.Module{ProductKey: "sensor", Name: "mcu"})
	fdnWantCode(t, err, ota.CodeNotFound, "product")

	for i := range ota.MaxCustomModules {
		if _, err := e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: fmt.Sprintf("m%d", i), Alias: "M"}); err != nil {
			t.Fatalf("module %d: %v", i, err)
		}
	}
	_, err = e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "one-too-many"})
	fdnWantCode(t, err, ota.CodeConflict, "custom modules")
	_, n, err := e.svc.ListModules(e.ctx, e.a, "sensor", store.Page{})
	if err != nil || n != ota.MaxCustomModules {
		t.Errorf("ListModules = %d, %v", n, err)
	}
	_, _, err = e.svc.ListModules(e.ctx, e.b, "sensor", store.Page{})
	fdnWantCode(t, err, ota.CodeNotFound, "product")

	_, err = e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "m0"})
	fdnWantCode(t, err, ota.CodeConflict, "") // duplicate, also over the limit

	m, err := e.svc.UpdateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "m1", Alias: "Modem", Description: "LTE"})
	if err != nil || m.Alias != "Modem" || m.Description != "LTE" {
		t.Fatalf("UpdateModule = %+v, %v", m, err)
	}
	m, _ = e.svc.GetModule(e.ctx, e.a, "sensor", "m1")
	if m.Alias != "Modem" {
		t.Errorf("update not stored: %+v", m)
	}
	_, err = e.svc.UpdateModule(e.ctx, e.b, ota.Module{ProductKey: "sensor", Name: "m1", Alias: "Hijack"})
	fdnWantCode(t, err, ota.CodeNotFound, "")
	_, err = e.svc.UpdateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "nope"})
	fdnWantCode(t, err, ota.CodeNotFound, `module "nope"`)

	// A module that a package uses stays.
	if _, err := e.svc.CreatePackage(e.ctx, e.a, ota.Package{ProductKey: "sensor", Kind: ota.KindModule, Module: "m2", Name: "m2-pkg", Version: "2.0"},
		"m2.bin", fdnReader("module two")); err != nil {
		t.Fatal(err)
	}
	err = e.svc.DeleteModule(e.ctx, e.a, "sensor", "m2")
	fdnWantCode(t, err, ota.CodeConflict, "used by 1 package")
	err = e.svc.DeleteModule(e.ctx, e.a, "sensor", ota.DefaultModule)
	fdnWantCode(t, err, ota.CodeInvalid, "cannot be deleted")
	err = e.svc.DeleteModule(e.ctx, e.b, "sensor", "m3")
	fdnWantCode(t, err, ota.CodeNotFound, "")
	if err := e.svc.DeleteModule(e.ctx, e.a, "sensor", "m3"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetModule(e.ctx, e.a, "sensor", "m3")
	fdnWantCode(t, err, ota.CodeNotFound, "")
	// Room for one again.
	if _, err := e.svc.CreateModule(e.ctx, e.a, ota.Module{ProductKey: "sensor", Name: "m10"}); err != nil {
		t.Errorf("create after delete: %v", err)
	}
}

func TestDevices(t *testing.T) {
	e := newFoundationEnv(t)
	e.product(e.a, "sensor")

	d, err := e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "sensor", Name: "dev-1", Groups: []string{"eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(d.Secret) {
		t.Errorf("generated secret %q is not 32 bytes of hex", d.Secret)
	}
	d2, err := e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "sensor", Name: "dev-2", Secret: "my-own-secret"})
	if err != nil || d2.Secret != "my-own-secret" {
		t.Fatalf("CreateDevice with a secret = %+v, %v", d2, err)
	}
	if d.Secret == d2.Secret {
		t.Error("secrets repeat")
	}
	_, err = e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "sensor", Name: "dev-1"})
	fdnWantCode(t, err, ota.CodeConflict, "already exists")
	_, err = e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "sensor", Name: "bad name"})
	fdnWantCode(t, err, ota.CodeInvalid, "")
	_, err = e.svc.CreateDevice(e.ctx, e.a, ota.Device{ProductKey: "sensor", Name: "dev-3", Secret: "short"})
	fdnWantCode(t, err, ota.CodeInvalid, "secret")
	_, err = e.svc.CreateDevice(e.ctx, e.b, ota.Device{ProductKey: "sensor", Name: "dev-4"})
	fdnWantCode(t, err, ota.CodeNotFound, "product")

	got, err := e.svc.GetDevice(e.ctx, e.a, "sensor", "dev-1")
	if err != nil || got.Name != "dev-1" || got.Secret != "" || len(got.Groups) != 1 {
		t.Errorf("GetDevice = %+v, %v (the secret must not be returned)", got, err)
	}
	_, err = e.svc.GetDevice(e.ctx, e.b, "sensor", "dev-1")
	fdnWantCode(t, err, ota.CodeNotFound, "")
	_, err = e.svc.GetDevice(e.ctx, e.a, "sensor", "dev-9")
	fdnWantCode(t, err, ota.CodeNotFound, `device "dev-9"`)

	list, n, err := e.svc.ListDevices(e.ctx, e.a, store.DeviceFilter{ProductKey: "sensor"}, store.Page{})
	if err != nil || n != 2 || len(list) != 2 {
		t.Fatalf("ListDevices = %d, %v", n, err)
	}
	for _, d := range list {
		if d.Secret != "" {
			t.Errorf("ListDevices returned the secret of %s", d.Name)
		}
	}
	_, _, err = e.svc.ListDevices(e.ctx, e.b, store.DeviceFilter{ProductKey: "sensor"}, store.Page{})
	fdnWantCode(t, err, ota.CodeNotFound, "")
	list, n, err = e.svc.ListDevices(e.ctx, e.b, store.DeviceFilter{}, store.Page{})
	if err != nil || n != 0 || len(list) != 0 {
		t.Errorf("other tenant's ListDevices = %d, %v", n, err)
	}

	auth, err := e.svc.DeviceForAuth(e.ctx, ota.DeviceRef{ProductKey: "sensor", Name: "dev-1"})
	if err != nil || auth.Secret != d.Secret {
		t.Errorf("DeviceForAuth = %+v, %v", auth, err)
	}
	_, err = e.svc.DeviceForAuth(e.ctx, ota.DeviceRef{ProductKey: "sensor", Name: "ghost"})
	fdnWantCode(t, err, ota.CodeNotFound, "")
}
