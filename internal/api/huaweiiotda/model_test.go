package huaweiiotda

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

func TestSplitCandidates(t *testing.T) {
	got := fmt.Sprint(SplitCandidates("a_b_c"))
	if want := "[{a_b c} {a b_c}]"; got != want {
		t.Errorf("SplitCandidates(a_b_c) = %s, want %s", got, want)
	}
	for _, id := range []string{"abc", "_abc", "abc_"} {
		if c := SplitCandidates(id); len(c) != 0 {
			t.Errorf("SplitCandidates(%q) = %v, want none", id, c)
		}
	}
	if name, ok := nameInProduct("p_1", "p_1_dev_2"); !ok || name != "dev_2" {
		t.Errorf("nameInProduct = %q %v", name, ok)
	}
	if _, ok := nameInProduct("p_1", "p_1_"); ok {
		t.Error("an empty node id was accepted")
	}
}

func TestPackageName(t *testing.T) {
	for _, v := range []string{"V2.0", "_x", ".1", "", strings.Repeat("9", 256), "a/b c"} {
		name := packageName(v, "0123abcd")
		if err := ota.CheckPackageName("name", name); err != nil {
			t.Errorf("packageName(%q) = %q: %v", v, name, err)
		}
		if !strings.HasSuffix(name, "-0123abcd") {
			t.Errorf("packageName(%q) = %q lost its suffix", v, name)
		}
	}
	if got := packageName("V2.0-rc_1", "ab"); got != "V2_0-rc_1-ab" {
		t.Errorf("packageName = %q", got)
	}
}

// Every ota code has a wire form.
func TestErrorTable(t *testing.T) {
	codes := []ota.Code{ota.CodeInvalid, ota.CodeNotFound, ota.CodeConflict, ota.CodeUnauthenticated, ota.CodeForbidden,
		ota.CodeTooLarge, ota.CodeUnsupported, ota.CodeNotVerified, ota.CodeSignMismatch, ota.CodeRateLimited,
		ota.CodeUnavailable, ota.CodeInternal}
	for _, c := range codes {
		if _, ok := errorTable[errorKey{c, ""}]; !ok {
			t.Errorf("ota code %s has no entry", c)
		}
	}
	status, body := toWire(ota.Invalid(fieldLimit, "x"))
	if status != 400 || body.ErrorCode != "IOTDA.000017" {
		t.Errorf("limit: %d %s", status, body.ErrorCode)
	}
	status, body = toWire(fmt.Errorf("boom"))
	if status != 500 || body.ErrorCode != "IOTDA.000001" || body.ErrorMsg != "Internal server error." {
		t.Errorf("plain error: %d %+v", status, body)
	}
}

func TestExtInfo(t *testing.T) {
	for in, want := range map[string]string{
		`"hello"`:       `"hello"`,
		`{"a": [1, 2]}`: `{"a":[1,2]}`,
		`[1,"x"]`:       `[1,"x"]`,
		`42`:            `"42"`, // a scalar comes back as text
		`null`:          ``,
		`"{\"k\":1}"`:   `{"k":1}`, // a string holding JSON reads back as JSON
	} {
		s, err := extInfoToJob(json.RawMessage(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(extInfoFromJob(s)); got != want {
			t.Errorf("%s → %q → %s, want %s", in, s, got, want)
		}
	}
}

func TestCanonicalURI(t *testing.T) {
	if got := canonicalURI("/v5/iot/p/ota-upgrades/packages"); got != "/v5/iot/p/ota-upgrades/packages/" {
		t.Errorf("canonicalURI = %s", got)
	}
}

func TestPassword(t *testing.T) {
	// HMAC-SHA256 with the timestamp as the key (IoTDA device SDKs).
	if got := Password("secret", "2019120219"); len(got) != 64 || got == Password("2019120219", "secret") {
		t.Errorf("Password = %s", got)
	}
	if id := ClientID("p_d", true, mustTime("2019-12-02T19:30:00Z")); id != "p_d_0_1_2019120219" {
		t.Errorf("ClientID = %s", id)
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
