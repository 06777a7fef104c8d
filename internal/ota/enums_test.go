package ota

import "testing"

// The enumeration checks front-ends use for filters accept exactly the
// declared values, and report the caller's field.
func TestEnumChecks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(field string) error
		ok    bool
	}{
		{"kind firmware", func(f string) error { return CheckPackageKind(f, KindFirmware) }, true},
		{"kind module", func(f string) error { return CheckPackageKind(f, KindModule) }, true},
		{"kind empty", func(f string) error { return CheckPackageKind(f, "") }, false},
		{"kind os", func(f string) error { return CheckPackageKind(f, "os") }, false},
		{"type upgrade", func(f string) error { return CheckJobType(f, JobUpgrade) }, true},
		{"type rollback", func(f string) error { return CheckJobType(f, "rollback") }, false},
		{"selection dynamic", func(f string) error { return CheckSelection(f, SelectDynamic) }, true},
		{"selection random", func(f string) error { return CheckSelection(f, "random") }, false},
		{"state paused", func(f string) error { return CheckJobState(f, JobPaused) }, true},
		{"state canceled", func(f string) error { return CheckJobState(f, JobCanceled) }, true},
		{"state sleeping", func(f string) error { return CheckJobState(f, "sleeping") }, false},
	} {
		err := tc.check("the_field")
		if tc.ok != (err == nil) {
			t.Errorf("%s: error %v", tc.name, err)
			continue
		}
		if err != nil && (ErrorCode(err) != CodeInvalid || ErrorField(err) != "the_field") {
			t.Errorf("%s: got code %s field %q: %v", tc.name, ErrorCode(err), ErrorField(err), err)
		}
	}
}
