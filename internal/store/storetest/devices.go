package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

func mustDevice(t *testing.T, s store.Store, d ota.Device) ota.Device {
	t.Helper()
	if d.Secret == "" {
		d.Secret = "secret-" + d.Name
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = base
	}
	mustOK(t, s.CreateDevice(t.Context(), d), "CreateDevice "+d.Name)
	return d
}

func deviceNames(ds []ota.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

func testDeviceCreateGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	full := ota.Device{
		TenantID: "acme", ProductKey: "pk1", Name: "dev-001", Secret: "0123456789abcdef",
		Groups:   []string{"g-north", "g-beta"},
		Versions: map[string]string{ota.DefaultModule: "1.2.3", "mcu": "v7"},
		Online:   true, LastSeen: at(5*time.Minute + 7*time.Millisecond), CreatedAt: at(17 * time.Millisecond),
	}
	mustOK(t, s.CreateDevice(ctx, full), "CreateDevice")
	bare := ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "dev-002", Secret: "x", CreatedAt: at(time.Second)}
	mustOK(t, s.CreateDevice(ctx, bare), "CreateDevice without groups or versions")

	got, err := s.GetDevice(ctx, "pk1", "dev-001")
	mustOK(t, err, "GetDevice")
	wantEqual(t, full, got, "device")
	got, err = s.GetDevice(ctx, "pk1", "dev-002")
	mustOK(t, err, "GetDevice bare")
	wantEqual(t, bare, got, "bare device")
	if got.Online || !got.LastSeen.IsZero() || len(got.Versions) != 0 || len(got.Groups) != 0 {
		t.Fatalf("bare device = %+v", got)
	}

	// Brief: what a rollout reads, and nothing else.
	full.Attributes, full.Tags = map[string]string{"region": "north"}, map[string]string{"site": "s1"}
	full.Name = "dev-003"
	mustOK(t, s.CreateDevice(ctx, full), "CreateDevice with labels")
	brief, _, err := s.ListDevices(ctx, store.DeviceFilter{TenantID: "acme", ProductKey: "pk1", Brief: true, Groups: []string{"g-beta"}},
		store.Page{Limit: 10}, false)
	mustOK(t, err, "ListDevices Brief")
	want := ota.Device{TenantID: "acme", ProductKey: "pk1", Versions: full.Versions, Online: true, CreatedAt: full.CreatedAt}
	if len(brief) != 2 {
		t.Fatalf("ListDevices Brief in group g-beta = %v, want dev-001 and dev-003", deviceNames(brief))
	}
	for i, name := range []string{"dev-001", "dev-003"} {
		want.Name = name
		wantEqual(t, want, brief[i], "brief device "+name)
	}

	wantCode(t, s.CreateDevice(ctx, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "dev-001", Secret: "y"}),
		ota.CodeConflict, "CreateDevice with an existing name")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk2", Name: "dev-001"})
	_, err = s.GetDevice(ctx, "pk1", "dev-404")
	wantCode(t, err, ota.CodeNotFound, "GetDevice of a missing device")
	_, err = s.GetDevice(ctx, "pk404", "dev-001")
	wantCode(t, err, ota.CodeNotFound, "GetDevice of a missing product")
}

func testDeviceVersionsOnline(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	d := mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1"})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d2"})

	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "d1", ota.DefaultModule, "1.0.0", at(time.Minute)), "SetDeviceVersion default")
	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "d1", "mcu", "m-1", at(2*time.Minute)), "SetDeviceVersion mcu")
	got, err := s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	d.Versions = map[string]string{ota.DefaultModule: "1.0.0", "mcu": "m-1"}
	d.LastSeen = at(2 * time.Minute)
	wantEqual(t, d, got, "device after two version reports")

	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "d1", ota.DefaultModule, "1.1.0", at(3*time.Minute)), "SetDeviceVersion again")
	got, err = s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	d.Versions[ota.DefaultModule] = "1.1.0"
	d.LastSeen = at(3 * time.Minute)
	wantEqual(t, d, got, "device after a newer report")

	other, err := s.GetDevice(ctx, "pk1", "d2")
	mustOK(t, err, "GetDevice d2")
	if len(other.Versions) != 0 || !other.LastSeen.IsZero() {
		t.Fatalf("reports of d1 changed d2: %+v", other)
	}

	mustOK(t, presence(s.SetDeviceOnline(ctx, "pk1", "d1", true, at(4*time.Minute+250*time.Millisecond), 0)), "SetDeviceOnline true")
	got, err = s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	if !got.Online || !got.LastSeen.Equal(at(4*time.Minute+250*time.Millisecond)) {
		t.Fatalf("after connect: online %v last seen %v", got.Online, got.LastSeen)
	}
	mustOK(t, presence(s.SetDeviceOnline(ctx, "pk1", "d1", false, at(5*time.Minute), 0)), "SetDeviceOnline false")
	got, err = s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice")
	d.Online, d.LastSeen = false, at(5*time.Minute)
	wantEqual(t, d, got, "device after disconnect")

	wantCode(t, s.SetDeviceVersion(ctx, "pk1", "ghost", ota.DefaultModule, "1", base), ota.CodeNotFound,
		"SetDeviceVersion of a missing device")
	wantCode(t, presence(s.SetDeviceOnline(ctx, "pk1", "ghost", true, base, 0)), ota.CodeNotFound, "SetDeviceOnline of a missing device")
	wantCode(t, presence(s.SetDeviceOnline(ctx, "pk1", "ghost", true, base, 7)), ota.CodeNotFound, "stamped SetDeviceOnline of a missing device")

	// Stamped changes apply in stamp order: an older one (the will of a
	// dropped connection handled after its successor's online status)
	// changes nothing, one with stamp 0 applies whatever came before and
	// keeps the stamp.
	stamped := func(online bool, stamp int64, wantApplied, wantOnline bool, what string) {
		t.Helper()
		applied, err := s.SetDeviceOnline(ctx, "pk1", "d1", online, at(6*time.Minute), stamp)
		mustOK(t, err, what)
		got, err := s.GetDevice(ctx, "pk1", "d1")
		mustOK(t, err, "GetDevice")
		if applied != wantApplied || got.Online != wantOnline {
			t.Fatalf("%s: applied %v online %v, want applied %v online %v", what, applied, got.Online, wantApplied, wantOnline)
		}
	}
	stamped(true, 20, true, true, "online of connection 10 (stamp 20)")
	stamped(false, 21, true, false, "its will (stamp 21)")
	stamped(true, 40, true, true, "online of connection 20 (stamp 40)")
	stamped(false, 21, false, true, "connection 10's will again, handled late")
	stamped(false, 40, false, true, "a change with the applied stamp")
	stamped(false, 0, true, false, "an unordered offline")
	stamped(true, 39, false, false, "an older stamp after an unordered change")
	stamped(true, 42, true, true, "the next connection")
	stamped(false, 43, true, false, "its will")

	// A sighting (device HTTP) moves last_seen only when the last poll on
	// record is older than staleBefore (the first one always), and never
	// changes online.
	seen := func(want time.Time, what string) {
		t.Helper()
		got, err := s.GetDevice(ctx, "pk1", "d1")
		mustOK(t, err, "GetDevice")
		if got.Online || !got.LastSeen.Equal(want) {
			t.Fatalf("%s: online %v last seen %v, want offline and %v", what, got.Online, got.LastSeen, want)
		}
	}
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "d1", at(5*time.Minute+10*time.Second), at(5*time.Minute-time.Second)), "SetDeviceSeen first")
	seen(at(5*time.Minute+10*time.Second), "a first sighting")
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "d1", at(5*time.Minute+20*time.Second), at(5*time.Minute)), "SetDeviceSeen fresh")
	seen(at(5*time.Minute+10*time.Second), "a sighting within the interval")
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "d1", at(6*time.Minute), at(5*time.Minute+30*time.Second)), "SetDeviceSeen stale")
	seen(at(6*time.Minute), "a sighting after the interval")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "never-seen"})
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "never-seen", at(7*time.Minute), at(6*time.Minute)), "SetDeviceSeen first")
	got, err = s.GetDevice(ctx, "pk1", "never-seen")
	mustOK(t, err, "GetDevice never-seen")
	if !got.LastSeen.Equal(at(7 * time.Minute)) {
		t.Fatalf("a first sighting: last seen %v, want %v", got.LastSeen, at(7*time.Minute))
	}
	mustOK(t, s.SetDeviceSeen(ctx, "pk1", "ghost", base, base), "SetDeviceSeen of a missing device")
}

func testDeviceDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1", Versions: map[string]string{"default": "1"}})
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d2"})
	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "d1", "mcu", "2", base), "SetDeviceVersion")
	mustOK(t, s.DeleteDevice(ctx, "pk1", "d1"), "DeleteDevice")
	_, err := s.GetDevice(ctx, "pk1", "d1")
	wantCode(t, err, ota.CodeNotFound, "GetDevice after delete")
	wantCode(t, s.DeleteDevice(ctx, "pk1", "d1"), ota.CodeNotFound, "DeleteDevice twice")
	if _, err := s.GetDevice(ctx, "pk1", "d2"); err != nil {
		t.Fatalf("DeleteDevice d1 affected d2: %v", err)
	}
	// The versions went with the device.
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "d1"})
	got, err := s.GetDevice(ctx, "pk1", "d1")
	mustOK(t, err, "GetDevice recreated")
	if len(got.Versions) != 0 {
		t.Fatalf("a recreated device inherited versions %v", got.Versions)
	}
	ds, _, err := s.ListDevices(ctx, store.DeviceFilter{ProductKey: "pk1", Module: "mcu", Versions: []string{"2"}}, store.Page{}, false)
	mustOK(t, err, "ListDevices by version after delete")
	if len(ds) != 0 {
		t.Fatalf("a deleted device's version still matches: %v", deviceNames(ds))
	}
}

func testDeviceList(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	mustProduct(t, s, "globex", "pk3", "three")
	for _, n := range []int{7, 3, 9, 0, 5, 1, 8, 2, 6, 4} { // out of order
		mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: fmt.Sprintf("d%02d", n)})
	}
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk2", Name: "d05b"})
	mustDevice(t, s, ota.Device{TenantID: "globex", ProductKey: "pk3", Name: "d00"})

	list := func(f store.DeviceFilter, p store.Page, count bool) ([]string, int64) {
		t.Helper()
		ds, total, err := s.ListDevices(ctx, f, p, count)
		mustOK(t, err, fmt.Sprintf("ListDevices(%+v, %+v)", f, p))
		return deviceNames(ds), total
	}
	all := []string{"d00", "d01", "d02", "d03", "d04", "d05", "d06", "d07", "d08", "d09"}

	names, total := list(store.DeviceFilter{ProductKey: "pk1"}, store.Page{}, true)
	wantEqual(t, all, names, "devices of pk1")
	wantTotal(t, total, 10, "devices of pk1")

	names, total = list(store.DeviceFilter{ProductKey: "pk1"}, store.Page{}, false)
	wantEqual(t, all, names, "devices of pk1 without count")
	wantTotal(t, total, -1, "devices of pk1 without count")

	names, total = list(store.DeviceFilter{ProductKey: "pk1"}, store.Page{Limit: 3, Offset: 2}, true)
	wantEqual(t, []string{"d02", "d03", "d04"}, names, "limit 3 offset 2")
	wantTotal(t, total, 10, "limit 3 offset 2")

	names, _ = list(store.DeviceFilter{ProductKey: "pk1", Limit: 4}, store.Page{}, false)
	wantEqual(t, all[:4], names, "filter limit 4")
	names, _ = list(store.DeviceFilter{ProductKey: "pk1", Limit: 4}, store.Page{Limit: 2}, false)
	wantEqual(t, all[:2], names, "filter limit 4, page limit 2")

	// Keyset paging: names after AfterName; the count still covers the filter.
	names, total = list(store.DeviceFilter{ProductKey: "pk1", AfterName: "d06"}, store.Page{}, true)
	wantEqual(t, all[7:], names, "after d06")
	wantTotal(t, total, 10, "after d06")
	var walked []string
	after := ""
	for range 10 {
		page, _ := list(store.DeviceFilter{ProductKey: "pk1", AfterName: after, Limit: 3}, store.Page{}, false)
		if len(page) == 0 {
			break
		}
		walked = append(walked, page...)
		after = page[len(page)-1]
	}
	wantEqual(t, all, walked, "keyset walk in pages of 3")

	names, total = list(store.DeviceFilter{ProductKey: "pk1", Names: []string{"d08", "d01", "nope"}}, store.Page{}, true)
	wantEqual(t, []string{"d01", "d08"}, names, "by names")
	wantTotal(t, total, 2, "by names")
	long := []string{"d09", "d03"}
	for i := range 200 {
		long = append(long, fmt.Sprintf("absent-%03d", i))
	}
	names, total = list(store.DeviceFilter{ProductKey: "pk1", Names: long}, store.Page{}, true)
	wantEqual(t, []string{"d03", "d09"}, names, "by 202 names")
	wantTotal(t, total, 2, "by 202 names")

	// Tenant-wide: both products of acme in name order, not globex's.
	names, total = list(store.DeviceFilter{TenantID: "acme"}, store.Page{}, true)
	wantEqual(t, append(append(append([]string{}, all[:6]...), "d05b"), all[6:]...), names, "devices of tenant acme")
	wantTotal(t, total, 11, "devices of tenant acme")
	names, _ = list(store.DeviceFilter{TenantID: "globex", ProductKey: "pk1"}, store.Page{}, true)
	if len(names) != 0 {
		t.Fatalf("tenant globex sees acme's devices %v", names)
	}
}

func testDeviceListFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	mustProduct(t, s, "acme", "pk2", "two")
	dev := func(name string, groups []string, versions map[string]string) {
		mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: name, Groups: groups, Versions: versions})
	}
	dev("a", []string{"g1"}, map[string]string{"default": "1.0"})
	dev("b", []string{"g2", "g3"}, map[string]string{"default": "1.1", "mcu": "m1"})
	dev("c", nil, map[string]string{"mcu": "m2"})
	dev("d", []string{"g3"}, nil)
	dev("e", []string{"g1", "g2"}, map[string]string{"default": "2.0", "mcu": "m1"})
	// Reported later rather than at creation.
	dev("f", nil, nil)
	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "f", ota.DefaultModule, "1.0", base), "SetDeviceVersion f")
	mustOK(t, presence(s.SetDeviceOnline(ctx, "pk1", "c", true, base, 0)), "SetDeviceOnline c")
	mustOK(t, presence(s.SetDeviceOnline(ctx, "pk1", "d", true, base, 0)), "SetDeviceOnline d")
	yes, no := true, false
	// Another product with matching groups and versions must never show up.
	mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk2", Name: "x", Groups: []string{"g1"},
		Versions: map[string]string{"default": "1.0", "mcu": "m1"}})

	cases := []struct {
		name string
		f    store.DeviceFilter
		want []string
	}{
		{"group g1", store.DeviceFilter{Groups: []string{"g1"}}, []string{"a", "e"}},
		{"groups g2 or g3", store.DeviceFilter{Groups: []string{"g2", "g3"}}, []string{"b", "d", "e"}},
		{"group nobody", store.DeviceFilter{Groups: []string{"g9"}}, nil},
		{"default 1.0", store.DeviceFilter{Module: ota.DefaultModule, Versions: []string{"1.0"}}, []string{"a", "f"}},
		{"default 1.0 or 2.0", store.DeviceFilter{Module: ota.DefaultModule, Versions: []string{"1.0", "2.0"}}, []string{"a", "e", "f"}},
		{"versions without module mean default", store.DeviceFilter{Versions: []string{"1.1"}}, []string{"b"}},
		{"mcu m1", store.DeviceFilter{Module: "mcu", Versions: []string{"m1"}}, []string{"b", "e"}},
		{"mcu version of another module's value", store.DeviceFilter{Module: "mcu", Versions: []string{"1.0"}}, nil},
		{"has mcu", store.DeviceFilter{Module: "mcu", HasVersion: true}, []string{"b", "c", "e"}},
		{"has default", store.DeviceFilter{Module: ota.DefaultModule, HasVersion: true}, []string{"a", "b", "e", "f"}},
		{"group and version", store.DeviceFilter{Groups: []string{"g2"}, Module: "mcu", Versions: []string{"m1"}}, []string{"b", "e"}},
		{"group and names", store.DeviceFilter{Groups: []string{"g3"}, Names: []string{"a", "b", "c"}}, []string{"b"}},
		{"has mcu after b", store.DeviceFilter{Module: "mcu", HasVersion: true, AfterName: "b"}, []string{"c", "e"}},
		{"online", store.DeviceFilter{Online: &yes}, []string{"c", "d"}},
		{"offline", store.DeviceFilter{Online: &no}, []string{"a", "b", "e", "f"}},
		{"online in g3", store.DeviceFilter{Online: &yes, Groups: []string{"g3"}}, []string{"d"}},
		{"name prefix", store.DeviceFilter{NamePrefix: "b"}, []string{"b"}},
		{"name prefix matches none", store.DeviceFilter{NamePrefix: "bb"}, nil},
		{"name prefix is literal, not a pattern", store.DeviceFilter{NamePrefix: "_"}, nil},
	}
	for _, c := range cases {
		f := c.f
		f.ProductKey = "pk1"
		ds, total, err := s.ListDevices(ctx, f, store.Page{}, true)
		mustOK(t, err, "ListDevices "+c.name)
		wantEqual(t, c.want, deviceNames(ds), c.name)
		if f.AfterName == "" {
			wantTotal(t, total, int64(len(c.want)), c.name)
		}
	}

	// Version distribution: per version of a module, most devices first,
	// devices without a version under "".
	vcs, err := s.CountDeviceVersions(ctx, "acme", "pk1", "", 0)
	mustOK(t, err, "CountDeviceVersions default")
	vc := func(v string, n int64) store.VersionCount { return store.VersionCount{Version: v, Devices: n} }
	wantVC := []store.VersionCount{vc("", 2), vc("1.0", 2), vc("1.1", 1), vc("2.0", 1)}
	if fmt.Sprint(vcs) != fmt.Sprint(wantVC) {
		t.Fatalf("CountDeviceVersions default = %v, want %v", vcs, wantVC)
	}
	vcs, err = s.CountDeviceVersions(ctx, "acme", "pk1", "mcu", 2)
	mustOK(t, err, "CountDeviceVersions mcu")
	if want := []store.VersionCount{vc("", 3), vc("m1", 2)}; fmt.Sprint(vcs) != fmt.Sprint(want) {
		t.Fatalf("CountDeviceVersions mcu limit 2 = %v, want %v", vcs, want)
	}
	if vcs, err = s.CountDeviceVersions(ctx, "globex", "pk1", "", 0); err != nil || len(vcs) != 0 {
		t.Fatalf("another tenant sees version counts %v (%v)", vcs, err)
	}

	// A matching device comes back whole, versions of every module included.
	ds, _, err := s.ListDevices(ctx, store.DeviceFilter{ProductKey: "pk1", Names: []string{"b"}}, store.Page{}, false)
	mustOK(t, err, "ListDevices b")
	want := ota.Device{TenantID: "acme", ProductKey: "pk1", Name: "b", Secret: "secret-b", Groups: []string{"g2", "g3"},
		Versions: map[string]string{"default": "1.1", "mcu": "m1"}, CreatedAt: base}
	wantEqual(t, []ota.Device{want}, ds, "listed device")
}

func testDeviceCountPresent(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.CountPresent(ctx, base)
	mustOK(t, err, "CountPresent empty")
	if len(got) != 0 {
		t.Fatalf("no devices, yet present: %+v", got)
	}
	mustOK(t, s.CreateProduct(ctx, ota.Product{TenantID: "acme", Key: "nat", Name: "n", CreatedAt: base, Protocol: ota.ProtocolNative}), "CreateProduct nat")
	mustOK(t, s.CreateProduct(ctx, ota.Product{TenantID: "other", Key: "hw", Name: "h", CreatedAt: base, Protocol: ota.ProtocolHuawei}), "CreateProduct hw")
	for _, d := range []ota.Device{
		{TenantID: "acme", ProductKey: "nat", Name: "on1"}, {TenantID: "acme", ProductKey: "nat", Name: "on2"},
		{TenantID: "acme", ProductKey: "nat", Name: "poller"}, {TenantID: "acme", ProductKey: "nat", Name: "stale-poller"},
		{TenantID: "acme", ProductKey: "nat", Name: "off"},
		{TenantID: "other", ProductKey: "hw", Name: "on", ProtocolID: "hw_on"},
	} {
		mustDevice(t, s, d)
	}
	mustOK(t, presence(s.SetDeviceOnline(ctx, "nat", "on1", true, base, 0)), "online on1")
	mustOK(t, presence(s.SetDeviceOnline(ctx, "nat", "on2", true, base, 0)), "online on2")
	mustOK(t, presence(s.SetDeviceOnline(ctx, "hw", "on", true, base, 0)), "online hw")
	mustOK(t, s.SetDeviceSeen(ctx, "nat", "poller", at(time.Minute), at(0)), "poll")
	mustOK(t, s.SetDeviceSeen(ctx, "nat", "stale-poller", at(-time.Hour), at(-2*time.Hour)), "old poll")
	got, err = s.CountPresent(ctx, at(30*time.Second))
	mustOK(t, err, "CountPresent")
	counts := map[string]int64{}
	for _, p := range got {
		counts[string(p.Protocol)+"/"+p.Transport] = p.Devices
	}
	want := map[string]int64{"native/mqtt": 2, "huawei/mqtt": 1, "native/http": 1}
	if len(counts) != len(want) {
		t.Fatalf("present %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Fatalf("present %v, want %v", counts, want)
		}
	}
}

// The software module's version is read as ota.Device.Version reads it: the
// reported software version, else (never reported one) the firmware's.
func testDeviceSoftwareVersionFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustProduct(t, s, "acme", "pk1", "one")
	dev := func(name string, versions map[string]string) {
		mustDevice(t, s, ota.Device{TenantID: "acme", ProductKey: "pk1", Name: name, Versions: versions})
	}
	dev("both", map[string]string{ota.DefaultModule: "V1", ota.SoftwareModule: "S1"})
	dev("fwonly", map[string]string{ota.DefaultModule: "S1"})
	dev("fwv1", map[string]string{ota.DefaultModule: "V1"})
	dev("none", nil)
	dev("later", nil)
	mustOK(t, s.SetDeviceVersion(ctx, "pk1", "later", ota.SoftwareModule, "S1", base), "SetDeviceVersion later")
	sw := ota.SoftwareModule
	for _, c := range []struct {
		name string
		f    store.DeviceFilter
		want []string
	}{
		{"software S1", store.DeviceFilter{Module: sw, Versions: []string{"S1"}}, []string{"both", "fwonly", "later"}},
		{"software V1: only where no software version was reported", store.DeviceFilter{Module: sw, Versions: []string{"V1"}}, []string{"fwv1"}},
		{"has software", store.DeviceFilter{Module: sw, HasVersion: true}, []string{"both", "fwonly", "fwv1", "later"}},
		{"default S1 is the firmware only", store.DeviceFilter{Module: ota.DefaultModule, Versions: []string{"S1"}}, []string{"fwonly"}},
	} {
		f := c.f
		f.ProductKey = "pk1"
		ds, total, err := s.ListDevices(ctx, f, store.Page{}, true)
		mustOK(t, err, "ListDevices "+c.name)
		wantEqual(t, c.want, deviceNames(ds), c.name)
		wantTotal(t, total, int64(len(c.want)), c.name)
	}
}

// presence drops SetDeviceOnline's applied result where only its error counts.
func presence(_ bool, err error) error { return err }
