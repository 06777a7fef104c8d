package enos_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// i18nName is a StringI18n as the client reads it.
type i18nName struct {
	DefaultValue string            `json:"defaultValue"`
	I18nValue    map[string]string `json:"i18nValue"`
}

// jsonMetadata is a firmware's metadata part in plain JSON, its name given
// in other languages too.
func jsonMetadata(name string, i18n map[string]string, version string, file []byte) string {
	sum := sha256.Sum256(file)
	b, _ := json.Marshal(map[string]any{"name": map[string]any{"defaultValue": name, "i18nValue": i18n}, "version": version,
		"signMethod": "sha256", "sign": hex.EncodeToString(sum[:]), "enableVerification": false})
	return string(b)
}

// locales makes n well-formed locales (aa_AA, ab_AA, …), each naming name.
func locales(n int, name string) map[string]string {
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		out[string([]byte{'a', byte('a' + i%26)})+"_"+string([]byte{'A', byte('A' + i/26)})] = name
	}
	return out
}

// TestLocalizedNames: a firmware's and a job's i18nValue are kept and shown
// by get and search, and a search by name.<locale> finds exactly the ones
// whose name in that locale matches; a malformed locale is refused as an
// invalid expression.
func TestLocalizedNames(t *testing.T) {
	e := newEnv(t)
	e.fleet("pk-i18n", "1.0", "d1", "d2")
	c := e.client()
	c.login()
	with := e.params
	spring := map[string]string{"zh_CN": "春季版", "en_US": "Spring-build"}
	autumn := map[string]string{"zh_CN": "秋季版", "en_US": "Autumn-build"}
	upload := func(name string, i18n map[string]string, version string) string {
		t.Helper()
		f := []byte(strings.Repeat(version, 50))
		a := c.upload(e.org, "pk-i18n", jsonMetadata(name, i18n, version, f), name+".bin", f)
		wantCode(t, "upload "+name, a, 0)
		return dataField(t, a, "firmwareId")
	}
	fwSpring := upload("fw-spring", spring, "2.0")
	fwAutumn := upload("fw-autumn", autumn, "3.0")

	var fw struct {
		FirmwareID string   `json:"firmwareId"`
		Name       i18nName `json:"name"`
	}
	a := c.do("ota-firmwares", "get", with("firmwareId", fwSpring), nil, nil)
	wantCode(t, "get firmware", a, 0)
	if err := json.Unmarshal(a.Data, &fw); err != nil || fw.Name.DefaultValue != "fw-spring" || !reflect.DeepEqual(fw.Name.I18nValue, spring) {
		t.Fatalf("firmware name = %+v (%v), want fw-spring with %v", fw.Name, err, spring)
	}

	job := func(name string, i18n map[string]string, firmware, device string) string {
		t.Helper()
		a := c.do("ota-jobs", "create", with("firmwareId", firmware), map[string]any{
			"name": map[string]any{"defaultValue": name, "i18nValue": i18n}, "type": "upgrade", "upgradePolicy": "snapshot",
			"enableUpgradeRequest": false, "upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{device}}}, nil)
		wantCode(t, "create job "+name, a, 0)
		return dataField(t, a, "jobId")
	}
	waveOne := map[string]string{"zh_CN": "第一波", "en_US": "wave one"}
	waveTwo := map[string]string{"zh_CN": "第二波", "en_US": "wave two"}
	jobOne := job("rollout 1", waveOne, fwSpring, "d1")
	jobTwo := job("rollout 2", waveTwo, fwAutumn, "d2")

	type jobInfo struct {
		JobID        string   `json:"jobId"`
		Name         i18nName `json:"name"`
		FirmwareName i18nName `json:"firmwareName"`
	}
	var ji jobInfo
	a = c.do("ota-jobs", "get", with("jobId", jobOne), nil, nil)
	wantCode(t, "get job", a, 0)
	if err := json.Unmarshal(a.Data, &ji); err != nil || ji.Name.DefaultValue != "rollout 1" || !reflect.DeepEqual(ji.Name.I18nValue, waveOne) ||
		!reflect.DeepEqual(ji.FirmwareName.I18nValue, spring) {
		t.Fatalf("job = %s (%v), want name rollout 1 with %v and firmwareName with %v", a.Data, err, waveOne, spring)
	}

	searchFirmware := func(expr string, want ...string) {
		t.Helper()
		a := c.do("ota-firmwares", "search", with(), map[string]any{"expression": expr}, nil)
		wantCode(t, "firmware search "+expr, a, 0)
		var list []struct {
			FirmwareID string   `json:"firmwareId"`
			Name       i18nName `json:"name"`
		}
		_ = json.Unmarshal(a.Data, &list)
		var got []string
		for _, f := range list {
			got = append(got, f.FirmwareID)
			if f.FirmwareID == fwAutumn && !reflect.DeepEqual(f.Name.I18nValue, autumn) {
				t.Fatalf("%s: listed name %+v, want i18nValue %v", expr, f.Name, autumn)
			}
		}
		if !reflect.DeepEqual(got, want) || a.Pagination.TotalSize != int64(len(want)) {
			t.Fatalf("firmware search %s = %v (total %d), want %v", expr, got, a.Pagination.TotalSize, want)
		}
	}
	searchFirmware("name.en_US like 'Spring'", fwSpring)
	searchFirmware("name.zh_CN like '秋'", fwAutumn)
	searchFirmware("name.en_US = 'Autumn-build'", fwAutumn)
	searchFirmware("name.en_US = 'Autumn'")
	searchFirmware("name.en_US like 'fw'") // the default name is not the en_US one
	searchFirmware("name.ja_JP like 'build'")
	searchFirmware("name.defaultValue like 'fw-'", fwAutumn, fwSpring)
	searchFirmware("productKey = 'pk-i18n' AND name.zh_CN like '季版' AND name.zh_CN = '春季版'", fwSpring)

	searchJobs := func(expr string, want ...string) {
		t.Helper()
		a := c.do("ota-jobs", "search", with(), map[string]any{"expression": expr}, nil)
		wantCode(t, "job search "+expr, a, 0)
		var list []jobInfo
		_ = json.Unmarshal(a.Data, &list)
		var got []string
		for _, j := range list {
			got = append(got, j.JobID)
			if j.JobID == jobTwo && (!reflect.DeepEqual(j.Name.I18nValue, waveTwo) || !reflect.DeepEqual(j.FirmwareName.I18nValue, autumn)) {
				t.Fatalf("%s: listed %+v, want name %v and firmwareName %v", expr, j, waveTwo, autumn)
			}
		}
		if !reflect.DeepEqual(got, want) || a.Pagination.TotalSize != int64(len(want)) {
			t.Fatalf("job search %s = %v (total %d), want %v", expr, got, a.Pagination.TotalSize, want)
		}
	}
	searchJobs("name.en_US like 'wave one'", jobOne)
	searchJobs("name.zh_CN like '第二'", jobTwo)
	searchJobs("name.en_US like 'wave'", jobTwo, jobOne)
	searchJobs("name.en_US like 'rollout'")
	searchJobs("name.defaultValue like 'rollout 2'", jobTwo)
	searchJobs("firmwareId = '"+fwSpring+"' AND name.zh_CN like '波'", jobOne)

	// Refused as an invalid expression, never read as another field or
	// ignored: malformed locales, an operator a field does not take, and
	// names in two locales at once (the store matches them in one).
	for _, tc := range []struct{ resource, expr, msg string }{
		{"ota-firmwares", "name.EN like 'x'", `locale "EN"`},
		{"ota-firmwares", "name.en_US1 like 'x'", `locale "en_US1"`},
		{"ota-firmwares", "name.zh_cn = '春季版'", `locale "zh_cn"`},
		{"ota-jobs", "name.en_US1 like 'wave'", `locale "en_US1"`},
		{"ota-jobs", "name.EN like 'wave'", `locale "EN"`},
		{"ota-jobs", "name.en_US = 'wave one'", "does not take ="},
		{"ota-firmwares", "name.en_US in ('Spring-build')", "does not take in"},
		{"ota-firmwares", "name.en_US like 'Spring' AND name.zh_CN like '春'", "different locales"},
		{"ota-jobs", "name.defaultValue like 'rollout' AND name.en_US like 'wave'", "different locales"},
	} {
		a := c.do(tc.resource, "search", with(), map[string]any{"expression": tc.expr}, nil)
		wantCode(t, tc.resource+" search "+tc.expr, a, 99400)
		if !strings.Contains(a.Msg, tc.msg) {
			t.Fatalf("%s: message %q does not say %q", tc.expr, a.Msg, tc.msg)
		}
	}
	// Nothing changed.
	searchFirmware("productKey = 'pk-i18n'", fwAutumn, fwSpring)
	searchJobs("", jobTwo, jobOne)
}

// TestLocalizedNameLimits: at most ota.MaxLocalNames translations, each as
// long as the name it translates may be, under well-formed locales; just
// inside is kept, just outside refused (99400) with nothing created.
func TestLocalizedNameLimits(t *testing.T) {
	e := newEnv(t)
	e.fleet("pk-i18n-lim", "1.0", "d1")
	c := e.client()
	c.login()
	with := e.params
	total := func(resource string) int64 {
		t.Helper()
		a := c.do(resource, "search", with(), map[string]any{}, nil)
		wantCode(t, resource+" search", a, 0)
		return a.Pagination.TotalSize
	}
	n := 0
	upload := func(what string, i18n map[string]string, code int) string {
		t.Helper()
		n++
		version := fmt.Sprintf("%d.0", n)
		f := []byte(strings.Repeat(version, 50))
		before := total("ota-firmwares")
		a := c.upload(e.org, "pk-i18n-lim", jsonMetadata(fmt.Sprintf("fw-%d", n), i18n, version, f), "fw.bin", f)
		wantCode(t, "upload "+what, a, code)
		if code != 0 {
			if after := total("ota-firmwares"); after != before {
				t.Fatalf("upload %s refused but firmwares went from %d to %d", what, before, after)
			}
			return ""
		}
		id := dataField(t, a, "firmwareId")
		var fw struct{ Name i18nName }
		_ = json.Unmarshal(c.do("ota-firmwares", "get", with("firmwareId", id), nil, nil).Data, &fw)
		if !reflect.DeepEqual(fw.Name.I18nValue, i18n) {
			t.Fatalf("upload %s: i18nValue %v, want %v", what, fw.Name.I18nValue, i18n)
		}
		return id
	}
	fw := upload(fmt.Sprintf("%d locales", ota.MaxLocalNames), locales(ota.MaxLocalNames, "fw"), 0)
	upload(fmt.Sprintf("%d locales", ota.MaxLocalNames+1), locales(ota.MaxLocalNames+1, "fw"), 99400)
	upload("a name of the longest length", map[string]string{"en_US": strings.Repeat("n", ota.MaxPackageNameLen)}, 0)
	upload("a name one longer", map[string]string{"en_US": strings.Repeat("n", ota.MaxPackageNameLen+1)}, 99400)
	upload("a malformed locale", map[string]string{"EN": "fw"}, 99400)
	upload("a blank name", map[string]string{"en_US": " "}, 99400)
	// A locale left empty (EnOS forms send every locale) is no translation.
	f := []byte("sparse translations")
	a := c.upload(e.org, "pk-i18n-lim", jsonMetadata("fw-sparse", map[string]string{"en_US": "fw", "ja_JP": ""}, "9.9", f), "fw.bin", f)
	wantCode(t, "upload with an empty locale", a, 0)
	var sparse struct{ Name i18nName }
	_ = json.Unmarshal(c.do("ota-firmwares", "get", with("firmwareId", dataField(t, a, "firmwareId")), nil, nil).Data, &sparse)
	if !reflect.DeepEqual(sparse.Name.I18nValue, map[string]string{"en_US": "fw"}) {
		t.Fatalf("upload with an empty locale: i18nValue %v, want only en_US", sparse.Name.I18nValue)
	}

	device := "d1"
	job := func(what string, i18n map[string]string, code int) {
		t.Helper()
		before := total("ota-jobs")
		a := c.do("ota-jobs", "create", with("firmwareId", fw), map[string]any{
			"name": map[string]any{"defaultValue": "rollout", "i18nValue": i18n}, "type": "upgrade", "upgradePolicy": "snapshot",
			"enableUpgradeRequest": false, "upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{device}}}, nil)
		wantCode(t, "create job "+what, a, code)
		if code != 0 {
			if after := total("ota-jobs"); after != before {
				t.Fatalf("job %s refused but jobs went from %d to %d", what, before, after)
			}
			return
		}
		id := dataField(t, a, "jobId")
		var ji struct{ Name i18nName }
		_ = json.Unmarshal(c.do("ota-jobs", "get", with("jobId", id), nil, nil).Data, &ji)
		if !reflect.DeepEqual(ji.Name.I18nValue, i18n) {
			t.Fatalf("job %s: i18nValue %v, want %v", what, ji.Name.I18nValue, i18n)
		}
		// End the job so that the next one may take the device.
		wantCode(t, what+": delete", c.do("ota-jobs", "delete", with("jobId", id), map[string]any{}, nil), 0)
	}
	job(fmt.Sprintf("%d locales", ota.MaxLocalNames), locales(ota.MaxLocalNames, "wave"), 0)
	job(fmt.Sprintf("%d locales", ota.MaxLocalNames+1), locales(ota.MaxLocalNames+1, "wave"), 99400)
	job("a name of the longest length", map[string]string{"zh_CN": strings.Repeat("波", ota.MaxJobNameLen)}, 0)
	job("a name one longer", map[string]string{"zh_CN": strings.Repeat("波", ota.MaxJobNameLen+1)}, 99400)
	job("a malformed locale", map[string]string{"en_US1": "wave"}, 99400)
	job("a control character", map[string]string{"en_US": "wave\x1b[2J"}, 99400)
}
