package ota

import (
	"strings"
	"testing"
)

func validPackage() Package {
	p := Package{ProductKey: "pk_1", Name: "fw-2(beta)", Version: "V2.0", Kind: KindFirmware}
	p.Normalize()
	return p
}

// TestPackageLimits tries each documented package limit just inside and just
// outside; the outside case must name the field.
func TestPackageLimits(t *testing.T) {
	sha := strings.Repeat("a", 64)
	md5 := strings.Repeat("b", 32)
	versions := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "V1." + strings.Repeat("1", i+1)
		}
		return out
	}
	tests := []struct {
		name   string
		mutate func(*Package)
		field  string // "" = valid
		code   Code
	}{
		{"valid", func(p *Package) {}, "", ""},
		{"product key 36", func(p *Package) { p.ProductKey = strings.Repeat("p", 36) }, "", ""},
		{"product key 37", func(p *Package) { p.ProductKey = strings.Repeat("p", 37) }, "product", CodeInvalid},
		{"product key bad char", func(p *Package) { p.ProductKey = "pk.1" }, "product", CodeInvalid},
		{"product key empty", func(p *Package) { p.ProductKey = "" }, "product", CodeInvalid},
		{"version 256", func(p *Package) { p.Version = strings.Repeat("v", 256) }, "", ""},
		{"version 257", func(p *Package) { p.Version = strings.Repeat("v", 257) }, "version", CodeInvalid},
		{"version chars _.-", func(p *Package) { p.Version = "v1_2-3.4" }, "", ""},
		{"version space", func(p *Package) { p.Version = "v 1" }, "version", CodeInvalid},
		{"version slash", func(p *Package) { p.Version = "v1/2" }, "version", CodeInvalid},
		{"version unicode", func(p *Package) { p.Version = "版本1" }, "version", CodeInvalid},
		{"version empty", func(p *Package) { p.Version = "" }, "version", CodeInvalid},
		{"20 source versions", func(p *Package) { p.SourceVersions = versions(20) }, "", ""},
		{"21 source versions", func(p *Package) { p.SourceVersions = versions(21) }, "source_versions", CodeInvalid},
		{"source version bad char", func(p *Package) { p.SourceVersions = []string{"V1 0"} }, "source_versions", CodeInvalid},
		{"source equals destination", func(p *Package) { p.SourceVersions = []string{"V1.0", "V2.0"} }, "source_versions", CodeInvalid},
		{"source duplicate", func(p *Package) { p.SourceVersions = []string{"V1.0", "V1.0"} }, "source_versions", CodeInvalid},
		{"differential with source", func(p *Package) { p.Differential = true; p.SourceVersions = []string{"V1.0"} }, "", ""},
		{"differential without source", func(p *Package) { p.Differential = true }, "source_versions", CodeInvalid},
		{"name 128", func(p *Package) { p.Name = strings.Repeat("n", 128) }, "", ""},
		{"name 128 runes", func(p *Package) { p.Name = strings.Repeat("固", 128) }, "", ""},
		{"name 129", func(p *Package) { p.Name = strings.Repeat("n", 129) }, "name", CodeInvalid},
		{"name chinese", func(p *Package) { p.Name = "固件2" }, "", ""},
		{"name with spaces and dots", func(p *Package) { p.Name = "Gateway FW v2.0 (beta)" }, "", ""},
		{"name leading space", func(p *Package) { p.Name = " fw" }, "name", CodeInvalid},
		{"name trailing space", func(p *Package) { p.Name = "fw " }, "name", CodeInvalid},
		{"name blank", func(p *Package) { p.Name = "  " }, "name", CodeInvalid},
		{"name control", func(p *Package) { p.Name = "fw\x1b[2J" }, "name", CodeInvalid},
		{"name empty", func(p *Package) { p.Name = "" }, "name", CodeInvalid},
		{"description 1024", func(p *Package) { p.Description = strings.Repeat("d", 1024) }, "", ""},
		{"description 1024 runes", func(p *Package) { p.Description = strings.Repeat("描", 1024) }, "", ""},
		{"description 1025", func(p *Package) { p.Description = strings.Repeat("d", 1025) }, "description", CodeInvalid},
		{"custom info 4096", func(p *Package) { p.CustomInfo = strings.Repeat("c", 4096) }, "", ""},
		{"custom info 4097", func(p *Package) { p.CustomInfo = strings.Repeat("c", 4097) }, "custom_info", CodeInvalid},
		{"kind software", func(p *Package) { p.Kind = KindSoftware }, "", ""},
		{"kind module", func(p *Package) { p.Kind = KindModule; p.Module = "mcu" }, "", ""},
		{"kind bad", func(p *Package) { p.Kind = "os" }, "kind", CodeInvalid},
		{"module package on default module", func(p *Package) { p.Kind = KindModule }, "module", CodeInvalid},
		{"module on firmware", func(p *Package) { p.Module = "mcu" }, "module", CodeInvalid},
		{"module 64", func(p *Package) { p.Kind = KindModule; p.Module = strings.Repeat("m", 64) }, "", ""},
		{"module 65", func(p *Package) { p.Kind = KindModule; p.Module = strings.Repeat("m", 65) }, "module", CodeInvalid},
		{"sha256 sign", func(p *Package) { p.Sign = sha }, "", ""},
		{"sha256 sign 63", func(p *Package) { p.Sign = sha[:63] }, "sign", CodeInvalid},
		{"sha256 sign 65", func(p *Package) { p.Sign = sha + "a" }, "sign", CodeInvalid},
		{"sha256 sign non-hex", func(p *Package) { p.Sign = strings.Repeat("g", 64) }, "sign", CodeInvalid},
		{"md5 sign", func(p *Package) { p.SignMethod = SignMD5; p.Sign = md5 }, "", ""},
		{"md5 sign with sha length", func(p *Package) { p.SignMethod = SignMD5; p.Sign = sha }, "sign", CodeInvalid},
		{"sign method bad", func(p *Package) { p.SignMethod = "SHA1" }, "sign_method", CodeInvalid},
		{"10 tags", func(p *Package) { p.Tags = tags(10, 1) }, "", ""},
		{"11 tags", func(p *Package) { p.Tags = tags(11, 1) }, "tags", CodeInvalid},
		{"tag key 30", func(p *Package) { p.Tags = []Tag{{strings.Repeat("k", 30), "v"}} }, "", ""},
		{"tag key 31", func(p *Package) { p.Tags = []Tag{{strings.Repeat("k", 31), "v"}} }, "tags", CodeInvalid},
		{"tag key underscore", func(p *Package) { p.Tags = []Tag{{"a_b", "v"}} }, "tags", CodeInvalid},
		{"tag value 1024", func(p *Package) { p.Tags = []Tag{{"k", strings.Repeat("v", 1024)}} }, "", ""},
		{"tag value 1025", func(p *Package) { p.Tags = []Tag{{"k", strings.Repeat("v", 1025)}} }, "tags", CodeInvalid},
		{"tag value empty", func(p *Package) { p.Tags = []Tag{{"k", ""}} }, "tags", CodeInvalid},
		{"tags total 4096", func(p *Package) { p.Tags = tags(4, 1022) }, "", ""},
		{"tags total 4100", func(p *Package) { p.Tags = tags(4, 1023) }, "tags", CodeInvalid},
		{"local names zh_CN en_US", func(p *Package) { p.LocalNames = map[string]string{"zh_CN": "固件2", "en_US": "fw-2"} }, "", ""},
		{"local names 16", func(p *Package) { p.LocalNames = localNames(16, "fw") }, "", ""},
		{"local names 17", func(p *Package) { p.LocalNames = localNames(17, "fw") }, "local_names", CodeInvalid},
		{"local name 128", func(p *Package) { p.LocalNames = map[string]string{"en_US": strings.Repeat("n", 128)} }, "", ""},
		{"local name 129", func(p *Package) { p.LocalNames = map[string]string{"en_US": strings.Repeat("n", 129)} }, "local_names", CodeInvalid},
		{"local name trailing space (like the name)", func(p *Package) { p.LocalNames = map[string]string{"en_US": "fw "} }, "local_names", CodeInvalid},
		{"local name empty", func(p *Package) { p.LocalNames = map[string]string{"en_US": ""} }, "local_names", CodeInvalid},
		{"local name bad locale", func(p *Package) { p.LocalNames = map[string]string{"EN": "fw"} }, "local_names", CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := validPackage()
			tc.mutate(&p)
			err := p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error on %s, got none", tc.field)
			}
			if ErrorCode(err) != tc.code || ErrorField(err) != tc.field {
				t.Fatalf("want %s on %q, got %s on %q: %v", tc.code, tc.field, ErrorCode(err), ErrorField(err), err)
			}
			if ErrorMessage(err) == "" {
				t.Fatal("empty message")
			}
		})
	}
}

// localNames makes n translations of name under distinct well-formed
// locales (aa_AA, ab_AA, …).
func localNames(n int, name string) map[string]string {
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		out[string([]byte{'a', byte('a' + i%26)})+"_"+string([]byte{'A', byte('A' + i/26)})] = name
	}
	return out
}

// TestCheckLocale: the locales EnOS writes pass; anything else is refused.
func TestCheckLocale(t *testing.T) {
	for _, s := range []string{"en", "zh_CN", "en_US", "ja_JP", "es_ES", "yue", "yue_HK", "es_419"} {
		if err := CheckLocale("locale", s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "e", "engl", "EN", "en_us", "en_US1", "en_U", "en-US", "en_", "_US", "en_US_x", "en_41", "en_4190", "zh_CN'", "é_FR", "en.US"} {
		if err := CheckLocale("locale", s); ErrorCode(err) != CodeInvalid || ErrorField(err) != "locale" {
			t.Errorf("%q: want invalid on locale, got %v", s, err)
		}
	}
}

// tags makes n tags whose key is one character plus its index digit(s) and
// whose value is valueLen long.
func tags(n, valueLen int) []Tag {
	out := make([]Tag, n)
	for i := range out {
		out[i] = Tag{Key: "k" + string(rune('a'+i)), Value: strings.Repeat("v", valueLen)}
	}
	return out
}

func TestFileLimits(t *testing.T) {
	for _, name := range []string{"a.bin", "a.dav", "a.tar", "a.gz", "a.zip", "a.gzip", "a.apk", "a.tar.gz", "a.tar.xz", "a.pack", "a.exe", "a.bat", "a.img", "FW.BIN"} {
		if err := CheckFileName("file", name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"", "a.txt", "a.xz", "bin", ".bin", "a.bin.sh", "a.elf"} {
		if err := CheckFileName("file", name); ErrorCode(err) != CodeInvalid {
			t.Errorf("%q: want invalid, got %v", name, err)
		}
	}
	if err := CheckFileSize("file", MaxPackageSize); err != nil {
		t.Errorf("1 GB: %v", err)
	}
	if err := CheckFileSize("file", MaxPackageSize+1); ErrorCode(err) != CodeTooLarge {
		t.Errorf("1 GB + 1: want too_large, got %v", err)
	}
	if err := CheckFileSize("file", 0); ErrorCode(err) != CodeInvalid {
		t.Errorf("empty: want invalid, got %v", err)
	}
}

func TestObjectLocationLimits(t *testing.T) {
	ok := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	bad := func(err error, what string) {
		t.Helper()
		if ErrorCode(err) != CodeInvalid {
			t.Errorf("%s: want invalid, got %v", what, err)
		}
	}
	ok(CheckBucketName("b", "abc"), "bucket 3")
	ok(CheckBucketName("b", strings.Repeat("a", 63)), "bucket 63")
	ok(CheckBucketName("b", "my.bucket-1"), "bucket chars")
	bad(CheckBucketName("b", "ab"), "bucket 2")
	bad(CheckBucketName("b", strings.Repeat("a", 64)), "bucket 64")
	bad(CheckBucketName("b", "Abc"), "bucket upper")
	bad(CheckBucketName("b", "a_c"), "bucket underscore")
	ok(CheckObjectKey("k", "bbb/upgrade.bin"), "key")
	ok(CheckObjectKey("k", strings.Repeat("k", 1024)), "key 1024")
	bad(CheckObjectKey("k", strings.Repeat("k", 1025)), "key 1025")
	bad(CheckObjectKey("k", ""), "key empty")
	bad(CheckObjectKey("k", "../etc/passwd"), "key ..")
	bad(CheckObjectKey("k", "/abs"), "key leading /")
	ok(CheckRegionName("r", "cn-north-4"), "region")
	ok(CheckRegionName("r", strings.Repeat("r", 256)), "region 256")
	bad(CheckRegionName("r", strings.Repeat("r", 257)), "region 257")
	bad(CheckRegionName("r", "cn_north"), "region underscore")
}

func TestProductDeviceModuleLimits(t *testing.T) {
	valid := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	invalid := func(err error, what, field string) {
		t.Helper()
		if ErrorCode(err) != CodeInvalid || ErrorField(err) != field {
			t.Errorf("%s: want invalid on %q, got %v (field %q)", what, field, err, ErrorField(err))
		}
	}
	p := Product{Key: "pk", Name: "Thermostat"}
	valid(p.Validate(), "product")
	p.Name = ""
	invalid(p.Validate(), "product no name", "name")
	p.Name = strings.Repeat("n", 64)
	valid(p.Validate(), "product name 64")
	p.Name = strings.Repeat("n", 65)
	invalid(p.Validate(), "product name 65", "name")
	p.Name = "a\nb"
	invalid(p.Validate(), "product name control char", "name")

	d := Device{ProductKey: "pk", Name: strings.Repeat("d", 128)}
	valid(d.Validate(), "device name 128")
	d.Name = strings.Repeat("d", 129)
	invalid(d.Validate(), "device name 129", "name")
	d.Name = "dev_1-a.b:c@d"
	valid(d.Validate(), "device name chars")
	d.Name = "dev 1"
	invalid(d.Validate(), "device name space", "name")
	d.Name = "dev1"
	d.Groups = make([]string, 10)
	for i := range d.Groups {
		d.Groups[i] = "g" + string(rune('a'+i))
	}
	valid(d.Validate(), "10 groups")
	d.Groups = append(d.Groups, "gk")
	invalid(d.Validate(), "11 groups", "groups")
	d.Groups = []string{"bad group"}
	invalid(d.Validate(), "group chars", "groups")
	d.Groups = nil
	d.Versions = map[string]string{DefaultModule: "1.0", "mcu": "v 2"}
	invalid(d.Validate(), "bad reported version", "versions")

	m := Module{ProductKey: "pk", Name: "mcu", Alias: strings.Repeat("a", 64)}
	valid(m.Validate(), "module")
	m.Alias = strings.Repeat("a", 65)
	invalid(m.Validate(), "module alias 65", "alias_name")
	m.Alias = ""
	m.Name = DefaultModule
	invalid(m.Validate(), "module default", "module_name")
	m.Name = "mcu/1"
	invalid(m.Validate(), "module chars", "module_name")
}

func TestSignCheck(t *testing.T) {
	sha, md5 := strings.Repeat("a", 64), strings.Repeat("b", 32)
	if err := CheckSign(SignSHA256, "", sha, md5); err != nil {
		t.Fatalf("empty sign must match: %v", err)
	}
	if err := CheckSign(SignSHA256, strings.ToUpper(sha), sha, md5); err != nil {
		t.Fatalf("case-insensitive sha: %v", err)
	}
	if err := CheckSign(SignMD5, md5, sha, md5); err != nil {
		t.Fatalf("md5: %v", err)
	}
	if err := CheckSign(SignSHA256, md5+md5, sha, md5); ErrorCode(err) != CodeSignMismatch {
		t.Fatalf("mismatch: got %v", err)
	}
	for in, want := range map[string]SignMethod{"": SignSHA256, "SHA-256": SignSHA256, "sha256": SignSHA256, "Md5": SignMD5, "MD5": SignMD5} {
		got, err := ParseSignMethod(in)
		if err != nil || got != want {
			t.Errorf("ParseSignMethod(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSignMethod("SHA1"); ErrorCode(err) != CodeInvalid {
		t.Errorf("SHA1 accepted")
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	a := NewID(mustTime("2026-01-01T00:00:00Z"))
	b := NewID(mustTime("2026-01-01T00:00:01Z"))
	if len(a) != 24 || len(b) != 24 || !(a < b) {
		t.Fatalf("ids %s %s", a, b)
	}
	seen := map[string]bool{}
	now := mustTime("2026-01-01T00:00:00Z")
	prev := ""
	idCounter.Store(0) // no counter wrap within this test
	for i := range 10000 {
		id := NewID(now)
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		// Within one second, ids still sort by creation.
		if i > 0 && id < prev {
			t.Fatalf("id %s created after %s sorts before it", id, prev)
		}
		prev = id
	}
}

// TestAlibabaFirmwareName: Alibaba's FirmwareName rule, tighter than a
// package name, just inside and just outside.
func TestAlibabaFirmwareName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("n", 40), true}, {strings.Repeat("固", 40), true}, {"fw_2-(b)", true},
		{strings.Repeat("n", 41), false}, {"", false}, {"-fw", false}, {"(fw)", false}, {"fw.2", false}, {"fw 2", false},
	} {
		err := CheckAlibabaFirmwareName("FirmwareName", tc.name)
		if (err == nil) != tc.ok || err != nil && ErrorField(err) != "FirmwareName" {
			t.Errorf("%q: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
