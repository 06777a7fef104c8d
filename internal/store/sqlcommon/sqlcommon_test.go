package sqlcommon

import (
	"reflect"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

func TestRoundTrips(t *testing.T) {
	strs := []string{"1.0", "ünï \"quoted\" \\ back", "\x01ctl"}
	if got, err := DecodeStrings(EncodeStrings(strs)); err != nil || !reflect.DeepEqual(got, strs) {
		t.Errorf("strings round trip = %q, %v", got, err)
	}
	tags := []ota.Tag{{Key: "k", Value: "v"}, {Key: "ключ", Value: ""}}
	if got, err := DecodeTags(EncodeTags(tags)); err != nil || !reflect.DeepEqual(got, tags) {
		t.Errorf("tags round trip = %v, %v", got, err)
	}
	versions := map[string]string{"default": "1.2.3", "mcu": "m1"}
	if got, err := DecodeVersions(EncodeVersions(versions)); err != nil || !reflect.DeepEqual(got, versions) {
		t.Errorf("versions round trip = %v, %v", got, err)
	}
	names := map[string]string{"en_US": `Firmware "two"`, "zh_CN": "固件"}
	if got, err := DecodeLocalNames(EncodeLocalNames(names)); err != nil || !reflect.DeepEqual(got, names) {
		t.Errorf("local names round trip = %v, %v", got, err)
	}
	target := ota.Target{All: true, Groups: []string{"g"}, GrayPercent: 12.345, SourceVersions: []string{"1.0"}}
	if got, err := DecodeTarget(EncodeTarget(target)); err != nil || !reflect.DeepEqual(got, target) {
		t.Errorf("target round trip = %+v, %v", got, err)
	}
	w := &ota.DailyWindow{FromMinute: 1320, ToMinute: 360, UTCOffsetMinutes: -300}
	if got, err := DecodeWindow(EncodeWindow(w)); err != nil || !reflect.DeepEqual(got, w) {
		t.Errorf("window round trip = %+v, %v", got, err)
	}
}

func TestEmptyValues(t *testing.T) {
	if EncodeStrings(nil) != "[]" || EncodeTags(nil) != "[]" || EncodeVersions(nil) != "{}" || EncodeWindow(nil) != "" {
		t.Fatalf("empty encodings: %q %q %q %q", EncodeStrings(nil), EncodeTags(nil), EncodeVersions(nil), EncodeWindow(nil))
	}
	for _, s := range []string{"", "null", "[]"} {
		if v, err := DecodeStrings(s); err != nil || v != nil {
			t.Errorf("DecodeStrings(%q) = %#v, %v; want nil", s, v, err)
		}
		if v, err := DecodeTags(s); err != nil || v != nil {
			t.Errorf("DecodeTags(%q) = %#v, %v; want nil", s, v, err)
		}
	}
	if v, err := DecodeVersions("{}"); err != nil || v != nil {
		t.Errorf("DecodeVersions({}) = %#v, %v; want nil", v, err)
	}
	if v, err := DecodeLocalNames(EncodeLocalNames(nil)); err != nil || v != nil || EncodeLocalNames(nil) != "{}" {
		t.Errorf("empty local names = %#v, %v; want {} and nil", v, err)
	}
	if v, err := DecodeWindow(""); err != nil || v != nil {
		t.Errorf("DecodeWindow(\"\") = %#v, %v; want nil", v, err)
	}
	if got, err := DecodeTarget(EncodeTarget(ota.Target{})); err != nil || !reflect.DeepEqual(got, ota.Target{}) {
		t.Errorf("empty target round trip = %#v, %v", got, err)
	}
	if _, err := DecodeStrings("{not json"); err == nil {
		t.Errorf("DecodeStrings accepted malformed JSON")
	}
}

func TestLimit(t *testing.T) {
	for _, c := range []struct{ page, filter, want int }{
		{0, 0, DefaultLimit}, {5, 0, 5}, {0, 7, 7}, {5, 7, 5}, {9, 7, 7},
	} {
		if got := Limit(c.page, c.filter); got != c.want {
			t.Errorf("Limit(%d, %d) = %d, want %d", c.page, c.filter, got, c.want)
		}
	}
}
