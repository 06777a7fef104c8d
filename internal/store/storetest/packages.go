package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// newPackage is a valid package whose id sorts by created.
func newPackage(tenant, product, name, version string, created time.Time) ota.Package {
	return ota.Package{
		ID: ota.NewID(created), TenantID: tenant, ProductKey: product, Module: ota.DefaultModule,
		Kind: ota.KindFirmware, Name: name, Version: version, SignMethod: ota.SignSHA256,
		Sign: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", VerifyStatus: ota.VerifyNotNeeded,
		Bucket: "updraft", Key: "packages/" + name, FileName: name + ".bin", Size: 1024,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", MD5: "098f6bcd4621d373cade4e832627b4f6",
		CreatedAt: created, ModifiedAt: created,
	}
}

func mustPackage(t *testing.T, s store.Store, p ota.Package) ota.Package {
	t.Helper()
	mustOK(t, s.CreatePackage(t.Context(), p), "CreatePackage "+p.Name)
	return p
}

func packageIDs(ps []ota.Package) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func testPackageCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := ota.Package{
		ID: ota.NewID(base), TenantID: "acme", ProductKey: "pk1", Module: "mcu", Kind: ota.KindModule,
		Name: "固件 v2.0 ✓ — ünïcode", Version: "2.0.0-rc.1+build.7", Differential: true,
		LocalNames:     map[string]string{"zh_CN": "固件 二", "en_US": `Firmware "two" ✓`, "ja_JP": "ファームウェア"},
		SourceVersions: []string{"1.9.0", "1.9.1", "1.9.2"},
		Description:    "multi\nline «description»", CustomInfo: `{"reboot":true,"note":"日本語"}`,
		SignMethod: ota.SignMD5, Sign: "098f6bcd4621d373cade4e832627b4f6", NeedVerify: true, VerifyStatus: ota.VerifyInProgress,
		Tags:  []ota.Tag{{Key: "channel", Value: "beta"}, {Key: "ключ", Value: "значение"}, {Key: "empty", Value: ""}},
		Space: "app-0001", Region: "cn-north-4", Bucket: "fw-bucket", Key: "tenants/acme/pk1/fw.bin", External: true,
		FileName: "fw 2.0 (final).bin", Size: 5<<30 + 123, // over 4 GiB: needs 64 bits
		SHA256:    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		MD5:       "098f6bcd4621d373cade4e832627b4f6",
		CreatedAt: at(987 * time.Millisecond), ModifiedAt: at(time.Hour + 1*time.Millisecond),
	}
	mustOK(t, s.CreatePackage(ctx, p), "CreatePackage")
	got, err := s.GetPackage(ctx, "acme", p.ID)
	mustOK(t, err, "GetPackage")
	wantEqual(t, p, got, "package")

	plain := newPackage("acme", "pk1", "plain", "1.0", at(time.Second))
	mustPackage(t, s, plain)
	got, err = s.GetPackage(ctx, "acme", plain.ID)
	mustOK(t, err, "GetPackage plain")
	wantEqual(t, plain, got, "package without lists")

	_, err = s.GetPackage(ctx, "globex", p.ID)
	wantCode(t, err, ota.CodeNotFound, "GetPackage for another tenant")
	_, err = s.GetPackage(ctx, "acme", "ffffffffffffffffffffffff")
	wantCode(t, err, ota.CodeNotFound, "GetPackage of a missing id")

	dup := newPackage("acme", "pk2", p.Name, "3.0", at(2*time.Second))
	wantCode(t, s.CreatePackage(ctx, dup), ota.CodeConflict, "CreatePackage with a name the tenant already uses")
	mustPackage(t, s, newPackage("globex", "pk9", p.Name, "3.0", at(3*time.Second)))
}

func testPackageList(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ps []ota.Package // oldest first
	add := func(product, module string, kind ota.PackageKind, version string) {
		p := newPackage("acme", product, fmt.Sprintf("p%d", len(ps)), version, at(time.Duration(len(ps))*time.Second))
		p.Module, p.Kind = module, kind
		ps = append(ps, mustPackage(t, s, p))
	}
	add("pk1", ota.DefaultModule, ota.KindFirmware, "1.0") // 0
	add("pk1", ota.DefaultModule, ota.KindFirmware, "1.1") // 1
	add("pk1", "mcu", ota.KindModule, "m1")                // 2
	add("pk2", ota.DefaultModule, ota.KindSoftware, "1.0") // 3
	add("pk1", ota.DefaultModule, ota.KindSoftware, "1.1") // 4
	add("pk1", "mcu", ota.KindModule, "m2")                // 5
	mustPackage(t, s, newPackage("globex", "pk1", "p0", "1.0", at(time.Hour)))

	ids := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			out[i] = ps[j].ID
		}
		return out
	}
	cases := []struct {
		name string
		f    store.PackageFilter
		p    store.Page
		want []string
		tot  int64
	}{
		{"all, newest first", store.PackageFilter{TenantID: "acme"}, store.Page{}, ids(5, 4, 3, 2, 1, 0), 6},
		{"limit", store.PackageFilter{TenantID: "acme"}, store.Page{Limit: 2}, ids(5, 4), 6},
		{"limit offset", store.PackageFilter{TenantID: "acme"}, store.Page{Limit: 2, Offset: 3}, ids(2, 1), 6},
		{"before id", store.PackageFilter{TenantID: "acme"}, store.Page{BeforeID: ps[3].ID}, ids(2, 1, 0), 6},
		{"before id limit", store.PackageFilter{TenantID: "acme"}, store.Page{BeforeID: ps[4].ID, Limit: 2}, ids(3, 2), 6},
		{"product", store.PackageFilter{TenantID: "acme", ProductKey: "pk2"}, store.Page{}, ids(3), 1},
		{"module", store.PackageFilter{TenantID: "acme", Module: "mcu"}, store.Page{}, ids(5, 2), 2},
		{"kind", store.PackageFilter{TenantID: "acme", Kind: ota.KindSoftware}, store.Page{}, ids(4, 3), 2},
		{"version", store.PackageFilter{TenantID: "acme", Version: "1.1"}, store.Page{}, ids(4, 1), 2},
		{"name", store.PackageFilter{TenantID: "acme", Name: "p2"}, store.Page{}, ids(2), 1},
		{"product and kind", store.PackageFilter{TenantID: "acme", ProductKey: "pk1", Kind: ota.KindFirmware}, store.Page{}, ids(1, 0), 2},
		{"product, module and version", store.PackageFilter{TenantID: "acme", ProductKey: "pk1", Module: "mcu", Version: "m2"}, store.Page{}, ids(5), 1},
		{"nothing", store.PackageFilter{TenantID: "acme", Version: "9.9"}, store.Page{}, nil, 0},
	}
	for _, c := range cases {
		got, total, err := s.ListPackages(ctx, c.f, c.p)
		mustOK(t, err, "ListPackages "+c.name)
		wantEqual(t, c.want, packageIDs(got), c.name)
		wantTotal(t, total, c.tot, c.name)
	}
	got, _, err := s.ListPackages(ctx, store.PackageFilter{TenantID: "acme", Name: "p5"}, store.Page{})
	mustOK(t, err, "ListPackages p5")
	wantEqual(t, []ota.Package{ps[5]}, got, "listed package")
}

func testPackageUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := mustPackage(t, s, newPackage("acme", "pk1", "orig", "1.0", base))
	mustPackage(t, s, newPackage("acme", "pk1", "taken", "1.1", at(time.Second)))

	upd := p
	upd.Name, upd.Description, upd.CustomInfo = "renamed", "new description", "new info"
	upd.Tags = []ota.Tag{{Key: "k", Value: "v"}}
	upd.LocalNames = map[string]string{"en_US": "Renamed", "zh_CN": "改名"}
	upd.NeedVerify, upd.VerifyStatus = true, ota.VerifyPassed
	upd.ModifiedAt = at(time.Hour + 500*time.Millisecond)
	mustOK(t, s.UpdatePackage(ctx, upd), "UpdatePackage")
	got, err := s.GetPackage(ctx, "acme", p.ID)
	mustOK(t, err, "GetPackage")
	wantEqual(t, upd, got, "updated package")

	upd.Tags, upd.LocalNames = nil, nil
	upd.VerifyStatus = ota.VerifyFailed
	mustOK(t, s.UpdatePackage(ctx, upd), "UpdatePackage clearing tags and local names")
	got, err = s.GetPackage(ctx, "acme", p.ID)
	mustOK(t, err, "GetPackage")
	wantEqual(t, upd, got, "package with tags and local names cleared")

	clash := upd
	clash.Name = "taken"
	wantCode(t, s.UpdatePackage(ctx, clash), ota.CodeConflict, "UpdatePackage to a name in use")
	missing := upd
	missing.ID = "ffffffffffffffffffffffff"
	wantCode(t, s.UpdatePackage(ctx, missing), ota.CodeNotFound, "UpdatePackage of a missing package")
	other := upd
	other.TenantID = "globex"
	wantCode(t, s.UpdatePackage(ctx, other), ota.CodeNotFound, "UpdatePackage for another tenant")
}

func testPackageDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := mustPackage(t, s, newPackage("acme", "pk1", "gone", "1.0", base))
	keep := mustPackage(t, s, newPackage("acme", "pk1", "kept", "1.1", at(time.Second)))
	wantCode(t, s.DeletePackage(ctx, "globex", p.ID), ota.CodeNotFound, "DeletePackage for another tenant")
	mustOK(t, s.DeletePackage(ctx, "acme", p.ID), "DeletePackage")
	_, err := s.GetPackage(ctx, "acme", p.ID)
	wantCode(t, err, ota.CodeNotFound, "GetPackage after delete")
	wantCode(t, s.DeletePackage(ctx, "acme", p.ID), ota.CodeNotFound, "DeletePackage twice")
	_, total, err := s.ListPackages(ctx, store.PackageFilter{TenantID: "acme"}, store.Page{})
	mustOK(t, err, "ListPackages")
	wantTotal(t, total, 1, "packages after delete")
	if _, err := s.GetPackage(ctx, "acme", keep.ID); err != nil {
		t.Fatalf("deleting one package removed another: %v", err)
	}
	// The name is free again.
	mustPackage(t, s, newPackage("acme", "pk1", "gone", "1.0", at(time.Minute)))
}

func testPackageRefs(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newPackage("acme", "pk1", "a", "1.0", base)
	b := newPackage("globex", "pk9", "b", "1.0", at(time.Second))
	c := newPackage("acme", "pk1", "c", "1.1", at(2*time.Second))
	a.Bucket, a.Key = "shared", "objects/fw.bin"
	b.Bucket, b.Key = "shared", "objects/fw.bin"
	c.Bucket, c.Key = "shared", "objects/other.bin"
	for _, p := range []ota.Package{a, b, c} {
		mustPackage(t, s, p)
	}
	count := func(bucket, key string, want int64) {
		t.Helper()
		n, err := s.CountPackageRefs(ctx, bucket, key)
		mustOK(t, err, "CountPackageRefs")
		if n != want {
			t.Fatalf("CountPackageRefs(%s, %s) = %d, want %d", bucket, key, n, want)
		}
	}
	count("shared", "objects/fw.bin", 2)
	count("shared", "objects/other.bin", 1)
	count("other", "objects/fw.bin", 0)
	count("shared", "objects/none.bin", 0)
	mustOK(t, s.DeletePackage(ctx, "acme", a.ID), "DeletePackage")
	count("shared", "objects/fw.bin", 1)
}

// testPackageInfo: UpdatePackageInfo writes the descriptive fields only.
func testPackageInfo(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := newPackage("acme", "pk1", "fw-a", "2.0", at(0))
	p.NeedVerify, p.VerifyStatus = true, ota.VerifyInProgress
	mustPackage(t, s, p)
	mustPackage(t, s, newPackage("acme", "pk1", "fw-b", "2.0", at(time.Second)))
	edit := p
	edit.Name, edit.Description, edit.CustomInfo, edit.Tags = "fw-renamed", "d", "c", []ota.Tag{{Key: "k", Value: "v"}}
	edit.LocalNames = map[string]string{"en_US": "fw renamed"}
	edit.ModifiedAt = at(time.Minute)
	edit.VerifyStatus, edit.NeedVerify = ota.VerifyFailed, false // not written
	mustOK(t, s.UpdatePackageInfo(ctx, edit), "UpdatePackageInfo")
	got, err := s.GetPackage(ctx, "acme", p.ID)
	mustOK(t, err, "GetPackage")
	want := edit
	want.VerifyStatus, want.NeedVerify = ota.VerifyInProgress, true
	wantEqual(t, want, got, "package after UpdatePackageInfo")
	edit.Name = "fw-b"
	wantCode(t, s.UpdatePackageInfo(ctx, edit), ota.CodeConflict, "UpdatePackageInfo to a taken name")
	edit.ID = "missing"
	edit.Name = "fw-c"
	wantCode(t, s.UpdatePackageInfo(ctx, edit), ota.CodeNotFound, "UpdatePackageInfo on a missing package")
}

// testPackageFilters: resource space, verify status and name search (the
// default name or the name in a locale), paged in SQL like every listing.
func testPackageFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	var ps []ota.Package // oldest first
	localNames := map[int]map[string]string{
		0: {"en_US": "Alpha firmware", "zh_CN": "阿尔法固件"},
		1: {"en_US": "Beta firmware"},
		2: {"zh_CN": "阿尔法软件"},
	}
	add := func(name, space string, status ota.VerifyStatus, kind ota.PackageKind, module string) {
		p := newPackage("acme", "pk1", name, "2.0", at(time.Duration(len(ps))*time.Second))
		p.Space, p.VerifyStatus, p.Kind, p.Module = space, status, kind, module
		p.LocalNames = localNames[len(ps)]
		ps = append(ps, mustPackage(t, s, p))
	}
	add("alpha-fw", "app1", ota.VerifyNotNeeded, ota.KindFirmware, ota.DefaultModule) // 0
	add("beta-fw", "app2", ota.VerifyPending, ota.KindFirmware, ota.DefaultModule)    // 1
	add("alpha-sw", "app1", ota.VerifyPassed, ota.KindSoftware, ota.DefaultModule)    // 2
	add("gamma-mod", "app1", ota.VerifyFailed, ota.KindModule, "wifi")                // 3
	ids := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			out[i] = ps[j].ID
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.PackageFilter
		p    store.Page
		want []string
		tot  int64
	}{
		{"space", store.PackageFilter{Space: "app1"}, store.Page{}, ids(3, 2, 0), 3},
		{"space paged", store.PackageFilter{Space: "app1"}, store.Page{Limit: 1, BeforeID: ps[3].ID}, ids(2), 3},
		{"space and kind", store.PackageFilter{Space: "app1", Kind: ota.KindFirmware}, store.Page{}, ids(0), 1},
		{"module", store.PackageFilter{Module: "wifi"}, store.Page{}, ids(3), 1},
		{"verify statuses", store.PackageFilter{VerifyStatuses: []ota.VerifyStatus{ota.VerifyPending, ota.VerifyFailed}}, store.Page{}, ids(3, 1), 2},
		{"name contains", store.PackageFilter{NameContains: "alpha"}, store.Page{}, ids(2, 0), 2},
		{"name contains is literal", store.PackageFilter{NameContains: "%"}, store.Page{}, nil, 0},
		{"name contains, case-sensitive", store.PackageFilter{NameContains: "ALPHA"}, store.Page{}, nil, 0},
		{"name in a locale", store.PackageFilter{NameLocale: "en_US", Name: "Beta firmware"}, store.Page{}, ids(1), 1},
		{"name in a locale is the whole name", store.PackageFilter{NameLocale: "en_US", Name: "Beta"}, store.Page{}, nil, 0},
		{"name in a locale, not the default name", store.PackageFilter{NameLocale: "en_US", Name: "beta-fw"}, store.Page{}, nil, 0},
		{"name contains in a locale", store.PackageFilter{NameLocale: "en_US", NameContains: "firmware"}, store.Page{}, ids(1, 0), 2},
		{"name contains in a locale paged", store.PackageFilter{NameLocale: "en_US", NameContains: "firmware"}, store.Page{Limit: 1, Offset: 1}, ids(0), 2},
		{"name contains in another locale", store.PackageFilter{NameLocale: "zh_CN", NameContains: "阿尔法"}, store.Page{}, ids(2, 0), 2},
		{"name contains in a locale, not the default name", store.PackageFilter{NameLocale: "en_US", NameContains: "fw"}, store.Page{}, nil, 0},
		{"name contains in a locale is literal", store.PackageFilter{NameLocale: "en_US", NameContains: "%"}, store.Page{}, nil, 0},
		{"name contains in a locale, case-sensitive", store.PackageFilter{NameLocale: "en_US", NameContains: "ALPHA"}, store.Page{}, nil, 0},
		{"name contains in a locale no package has", store.PackageFilter{NameLocale: "fr_FR", NameContains: "a"}, store.Page{}, nil, 0},
		{"a locale is a key, not a JSON path", store.PackageFilter{NameLocale: "$.en_US", NameContains: "firmware"}, store.Page{}, nil, 0},
		{"default name contains ignores local names", store.PackageFilter{NameContains: "firmware"}, store.Page{}, nil, 0},
		{"a locale alone does not filter", store.PackageFilter{NameLocale: "fr_FR"}, store.Page{}, ids(3, 2, 1, 0), 4},
	} {
		c.f.TenantID = "acme"
		got, total, err := s.ListPackages(ctx, c.f, c.p)
		mustOK(t, err, "ListPackages "+c.name)
		wantEqual(t, c.want, packageIDs(got), c.name)
		wantTotal(t, total, c.tot, c.name)
	}
}

func testUploadsTakeExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	rec := func(key string, exp time.Time) {
		t.Helper()
		mustOK(t, s.RecordUpload(ctx, store.Upload{TenantID: "acme", Bucket: "up", Key: key, ExpiresAt: exp}), "RecordUpload "+key)
	}
	rec("claimed.bin", at(time.Minute))
	rec("orphan.bin", at(time.Minute))
	rec("fresh.bin", at(time.Hour))
	rec("renewed.bin", at(time.Minute))
	rec("renewed.bin", at(2*time.Hour)) // uploaded again: the new expiry
	p := newPackage("acme", "pk1", "claims", "1.0", base)
	p.Bucket, p.Key = "up", "claimed.bin"
	mustPackage(t, s, p)

	got, err := s.TakeExpiredUploads(ctx, at(30*time.Minute), 10)
	mustOK(t, err, "TakeExpiredUploads")
	if len(got) != 1 || got[0].Key != "orphan.bin" || got[0].TenantID != "acme" || !got[0].ExpiresAt.Equal(at(time.Minute)) {
		t.Fatalf("expired and unclaimed: %+v, want orphan.bin alone", got)
	}
	// Taken once: gone, and the claimed record went quietly.
	got, err = s.TakeExpiredUploads(ctx, at(30*time.Minute), 10)
	mustOK(t, err, "TakeExpiredUploads again")
	if len(got) != 0 {
		t.Fatalf("taken twice: %+v", got)
	}
	got, err = s.TakeExpiredUploads(ctx, at(3*time.Hour), 1)
	mustOK(t, err, "TakeExpiredUploads later")
	if len(got) != 1 || got[0].Key != "fresh.bin" {
		t.Fatalf("limit 1, oldest first: %+v, want fresh.bin", got)
	}
	got, err = s.TakeExpiredUploads(ctx, at(3*time.Hour), 10)
	mustOK(t, err, "TakeExpiredUploads the rest")
	if len(got) != 1 || got[0].Key != "renewed.bin" {
		t.Fatalf("the rest: %+v, want renewed.bin", got)
	}
}
