package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func testTenants(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n, err := s.CountTenants(ctx); err != nil || n != 0 {
		t.Fatalf("CountTenants on an empty store = %d, %v; want 0", n, err)
	}
	a := ota.Tenant{ID: "acme", Name: "Acme Corp", CreatedAt: at(time.Millisecond)}
	b := ota.Tenant{ID: "globex", Name: "Globex 株式会社", CreatedAt: at(2 * time.Hour)}
	mustOK(t, s.CreateTenant(ctx, a), "CreateTenant a")
	mustOK(t, s.CreateTenant(ctx, b), "CreateTenant b")
	wantCode(t, s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "other"}), ota.CodeConflict, "CreateTenant with an existing id")

	got, err := s.GetTenant(ctx, "acme")
	mustOK(t, err, "GetTenant")
	wantEqual(t, a, got, "tenant acme")
	got, err = s.GetTenant(ctx, "globex")
	mustOK(t, err, "GetTenant")
	wantEqual(t, b, got, "tenant globex")
	_, err = s.GetTenant(ctx, "nobody")
	wantCode(t, err, ota.CodeNotFound, "GetTenant of a missing id")

	n, err := s.CountTenants(ctx)
	mustOK(t, err, "CountTenants")
	if n != 2 {
		t.Fatalf("CountTenants = %d, want 2", n)
	}
}

func testAccessKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustOK(t, s.CreateTenant(ctx, ota.Tenant{ID: "acme", Name: "Acme", CreatedAt: base}), "CreateTenant")
	k := ota.AccessKey{ID: "AK0123456789", TenantID: "acme", Secret: "s3cr3t/+=", CreatedAt: at(1500 * time.Millisecond)}
	mustOK(t, s.CreateAccessKey(ctx, k), "CreateAccessKey")
	wantCode(t, s.CreateAccessKey(ctx, ota.AccessKey{ID: k.ID, TenantID: "acme", Secret: "x"}), ota.CodeConflict,
		"CreateAccessKey with an existing id")
	got, err := s.GetAccessKey(ctx, k.ID)
	mustOK(t, err, "GetAccessKey")
	wantEqual(t, k, got, "access key")
	_, err = s.GetAccessKey(ctx, "AKmissing")
	wantCode(t, err, ota.CodeNotFound, "GetAccessKey of a missing id")
}

func mustProduct(t *testing.T, s store.Store, tenant, key, name string) ota.Product {
	t.Helper()
	p := ota.Product{TenantID: tenant, Key: key, Name: name, Description: "about " + name, CreatedAt: base}
	mustOK(t, s.CreateProduct(t.Context(), p), "CreateProduct "+key)
	return p
}

func testProductCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := ota.Product{TenantID: "acme", Key: "a1B2c3D4e5", Name: "Thermostat ünï 温度計", Description: "line one\nline two",
		CreatedAt: at(123 * time.Millisecond)}
	mustOK(t, s.CreateProduct(ctx, p), "CreateProduct")
	got, err := s.GetProduct(ctx, "acme", p.Key)
	mustOK(t, err, "GetProduct")
	wantEqual(t, p, got, "product")
	got, err = s.FindProduct(ctx, p.Key)
	mustOK(t, err, "FindProduct")
	wantEqual(t, p, got, "found product")

	_, err = s.GetProduct(ctx, "globex", p.Key)
	wantCode(t, err, ota.CodeNotFound, "GetProduct of another tenant's product")
	_, err = s.GetProduct(ctx, "acme", "missing")
	wantCode(t, err, ota.CodeNotFound, "GetProduct of a missing key")
	_, err = s.FindProduct(ctx, "missing")
	wantCode(t, err, ota.CodeNotFound, "FindProduct of a missing key")
	wantCode(t, s.CreateProduct(ctx, ota.Product{TenantID: "acme", Key: p.Key, Name: "again"}), ota.CodeConflict,
		"CreateProduct with an existing key")
}

func testProductKeyUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := mustProduct(t, s, "acme", "shared", "Acme's")
	wantCode(t, s.CreateProduct(ctx, ota.Product{TenantID: "globex", Key: "shared", Name: "Globex's"}), ota.CodeConflict,
		"CreateProduct with a key another tenant uses")
	got, err := s.FindProduct(ctx, "shared")
	mustOK(t, err, "FindProduct")
	wantEqual(t, p, got, "product after the rejected duplicate")
	_, err = s.GetProduct(ctx, "globex", "shared")
	wantCode(t, err, ota.CodeNotFound, "GetProduct for the tenant whose create was rejected")
}

func productNames(ps []ota.Product) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func testProductList(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Created out of name order, keys in the opposite order of names.
	for i, name := range []string{"delta", "alpha", "echo", "charlie", "bravo"} {
		mustProduct(t, s, "acme", fmt.Sprintf("k%d", 9-i), name)
	}
	mustProduct(t, s, "globex", "other", "aardvark")

	ps, total, err := s.ListProducts(ctx, "acme", store.Page{})
	mustOK(t, err, "ListProducts")
	wantTotal(t, total, 5, "ListProducts")
	wantEqual(t, []string{"alpha", "bravo", "charlie", "delta", "echo"}, productNames(ps), "product names")
	for _, p := range ps {
		if p.TenantID != "acme" {
			t.Fatalf("ListProducts(acme) returned %+v", p)
		}
	}

	ps, total, err = s.ListProducts(ctx, "acme", store.Page{Limit: 2, Offset: 1})
	mustOK(t, err, "ListProducts page")
	wantTotal(t, total, 5, "ListProducts page")
	wantEqual(t, []string{"bravo", "charlie"}, productNames(ps), "product names, limit 2 offset 1")

	ps, total, err = s.ListProducts(ctx, "acme", store.Page{Limit: 10, Offset: 5})
	mustOK(t, err, "ListProducts past the end")
	wantTotal(t, total, 5, "ListProducts past the end")
	if len(ps) != 0 {
		t.Fatalf("ListProducts past the end = %v, want none", productNames(ps))
	}

	ps, total, err = s.ListProducts(ctx, "nobody", store.Page{})
	mustOK(t, err, "ListProducts of an empty tenant")
	if len(ps) != 0 || total != 0 {
		t.Fatalf("ListProducts of an empty tenant = %v, %d", productNames(ps), total)
	}

	// The default page size is 100.
	for i := range 101 {
		mustProduct(t, s, "many", fmt.Sprintf("m%03d", i), fmt.Sprintf("n%03d", i))
	}
	ps, total, err = s.ListProducts(ctx, "many", store.Page{})
	mustOK(t, err, "ListProducts default limit")
	wantTotal(t, total, 101, "ListProducts default limit")
	if len(ps) != 100 || ps[99].Name != "n099" {
		t.Fatalf("ListProducts with no limit returned %d rows, want the first 100", len(ps))
	}
}

func testModules(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mcu := ota.Module{TenantID: "acme", ProductKey: "pk1", Name: "mcu", Alias: "Main MCU", Description: "STM32", CreatedAt: at(time.Second)}
	modem := ota.Module{TenantID: "acme", ProductKey: "pk1", Name: "modem", Alias: "LTE", CreatedAt: at(2 * time.Second)}
	app := ota.Module{TenantID: "acme", ProductKey: "pk1", Name: "app", CreatedAt: at(3 * time.Second)}
	for _, m := range []ota.Module{mcu, modem, app} {
		mustOK(t, s.CreateModule(ctx, m), "CreateModule "+m.Name)
	}
	// The store assigns each module its id.
	for _, m := range []*ota.Module{&mcu, &modem, &app} {
		m.ID = ota.ModuleID(m.ProductKey, m.Name)
	}
	mustOK(t, s.CreateModule(ctx, ota.Module{TenantID: "acme", ProductKey: "pk2", Name: "mcu", CreatedAt: base}),
		"CreateModule with the same name in another product")
	wantCode(t, s.CreateModule(ctx, ota.Module{TenantID: "acme", ProductKey: "pk1", Name: "mcu"}), ota.CodeConflict,
		"CreateModule with an existing name")

	got, err := s.GetModule(ctx, "acme", "pk1", "mcu")
	mustOK(t, err, "GetModule")
	wantEqual(t, mcu, got, "module")
	_, err = s.GetModule(ctx, "globex", "pk1", "mcu")
	wantCode(t, err, ota.CodeNotFound, "GetModule for another tenant")
	_, err = s.GetModule(ctx, "acme", "pk1", "gps")
	wantCode(t, err, ota.CodeNotFound, "GetModule of a missing module")

	ms, total, err := s.ListModules(ctx, "acme", "pk1", store.Page{})
	mustOK(t, err, "ListModules")
	wantTotal(t, total, 3, "ListModules")
	wantEqual(t, []ota.Module{app, mcu, modem}, ms, "modules in name order")
	ms, total, err = s.ListModules(ctx, "acme", "pk1", store.Page{Limit: 1, Offset: 1})
	mustOK(t, err, "ListModules page")
	wantTotal(t, total, 3, "ListModules page")
	wantEqual(t, []ota.Module{mcu}, ms, "modules, limit 1 offset 1")
	ms, total, err = s.ListModules(ctx, "globex", "pk1", store.Page{})
	mustOK(t, err, "ListModules for another tenant")
	if len(ms) != 0 || total != 0 {
		t.Fatalf("ListModules for another tenant = %v, %d", ms, total)
	}

	upd := mcu
	upd.Alias, upd.Description = "Renamed", "new text"
	upd.CreatedAt = at(time.Hour) // not a mutable field
	mustOK(t, s.UpdateModule(ctx, upd), "UpdateModule")
	got, err = s.GetModule(ctx, "acme", "pk1", "mcu")
	mustOK(t, err, "GetModule after update")
	want := mcu
	want.Alias, want.Description = "Renamed", "new text"
	wantEqual(t, want, got, "updated module")
	wantCode(t, s.UpdateModule(ctx, ota.Module{TenantID: "acme", ProductKey: "pk1", Name: "gps"}), ota.CodeNotFound,
		"UpdateModule of a missing module")
	wantCode(t, s.UpdateModule(ctx, ota.Module{TenantID: "globex", ProductKey: "pk1", Name: "mcu", Alias: "x"}), ota.CodeNotFound,
		"UpdateModule for another tenant")

	mustOK(t, s.DeleteModule(ctx, "acme", "pk1", "mcu"), "DeleteModule")
	_, err = s.GetModule(ctx, "acme", "pk1", "mcu")
	wantCode(t, err, ota.CodeNotFound, "GetModule after delete")
	wantCode(t, s.DeleteModule(ctx, "acme", "pk1", "mcu"), ota.CodeNotFound, "DeleteModule twice")
	wantCode(t, s.DeleteModule(ctx, "globex", "pk1", "modem"), ota.CodeNotFound, "DeleteModule for another tenant")
	if _, err := s.GetModule(ctx, "acme", "pk2", "mcu"); err != nil {
		t.Fatalf("deleting pk1/mcu affected pk2/mcu: %v", err)
	}
	_, total, err = s.ListModules(ctx, "acme", "pk1", store.Page{})
	mustOK(t, err, "ListModules after delete")
	wantTotal(t, total, 2, "ListModules after delete")
}

// testFindModules: modules by id across products, highest id first, paged
// by id; the one with an id.
func testFindModules(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mustProduct(t, s, "globex", "pk3", "three")
	var all []ota.Module
	for _, m := range []ota.Module{{TenantID: "acme", ProductKey: "pk1", Name: "mcu"}, {TenantID: "acme", ProductKey: "pk1", Name: "modem"},
		{TenantID: "acme", ProductKey: "pk2", Name: "mcu"}, {TenantID: "globex", ProductKey: "pk3", Name: "mcu"}} {
		m.CreatedAt = base
		mustOK(t, s.CreateModule(ctx, m), "CreateModule")
		m.ID = ota.ModuleID(m.ProductKey, m.Name)
		if m.TenantID == "acme" {
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(a, b ota.Module) int { return strings.Compare(b.ID, a.ID) })
	got, total, err := s.FindModules(ctx, store.ModuleFilter{TenantID: "acme"}, store.Page{})
	mustOK(t, err, "FindModules")
	wantTotal(t, total, 3, "FindModules")
	wantEqual(t, all, got, "modules by id, highest first")
	got, _, err = s.FindModules(ctx, store.ModuleFilter{TenantID: "acme"}, store.Page{BeforeID: all[0].ID, Limit: 1})
	mustOK(t, err, "FindModules paged")
	wantEqual(t, all[1:2], got, "second page of one")
	got, total, err = s.FindModules(ctx, store.ModuleFilter{TenantID: "acme", ID: ota.ModuleID("pk2", "mcu")}, store.Page{})
	mustOK(t, err, "FindModules by id")
	if total != 1 || len(got) != 1 || got[0].ProductKey != "pk2" {
		t.Fatalf("by id: %v", got)
	}
	got, _, err = s.FindModules(ctx, store.ModuleFilter{TenantID: "acme", ID: ota.ModuleID("pk3", "mcu")}, store.Page{})
	mustOK(t, err, "FindModules another tenant's id")
	if len(got) != 0 {
		t.Fatalf("another tenant's module found: %v", got)
	}
	got, total, err = s.FindModules(ctx, store.ModuleFilter{TenantID: "acme", ProductKey: "pk1"}, store.Page{})
	mustOK(t, err, "FindModules of a product")
	if total != 2 || len(got) != 2 {
		t.Fatalf("of pk1: %v", got)
	}
}
