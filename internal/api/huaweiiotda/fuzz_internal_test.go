package huaweiiotda

import (
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// FuzzAuthorization: the SDK-HMAC-SHA256 / V11-HMAC-SHA256 Authorization
// header. Refusals are clean unauthenticated errors; an accepted header has
// a supported scheme, a key and a signature, and signing with it does not
// panic whatever its credential scope holds.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{
		"SDK-HMAC-SHA256 Access=AK, SignedHeaders=content-type;host;x-sdk-date, Signature=abc123",
		"V11-HMAC-SHA256 Credential=AK/20250301/cn-north-4/iotdm, SignedHeaders=host;x-sdk-date, Signature=abc",
		"SDK-HMAC-SHA256 Access=AK", "Basic abc", "", "SDK-HMAC-SHA256 Access=, Signature=x", "V11-HMAC-SHA256 Credential=AK, Signature=x",
		"SDK-HMAC-SHA256 Access=AK,SignedHeaders=,Signature=x,Signature=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeUnauthenticated || !strings.HasPrefix(ota.ErrorMessage(err), "Authentication failed: ") {
				t.Fatalf("parseAuthorization(%q): %v is not a clean unauthenticated error", h, err)
			}
			return
		}
		if a.alg != algSDK && a.alg != algV11 || a.ak == "" || a.signature == "" {
			t.Fatalf("parseAuthorization(%q) accepted %+v", h, a)
		}
		_ = signature(a, "secret", "20250301T120000Z", "canonical")
	})
}

// FuzzPaging: limit, offset and marker of every list. Refusals are clean
// invalid errors (a malformed marker is never ignored); an accepted marker
// is 24 hex digits, and a sub-task marker round-trips through its id.
func FuzzPaging(f *testing.F) {
	for _, q := range []string{"limit=10&offset=0", "limit=0", "limit=51", "offset=-5", "offset=abc", "offset=99999999999999999999",
		"marker=ffffffffffffffffffffffff", "marker=000000000000000000000001", "marker=xyz", "marker=FFFFFFFFFFFFFFFFFFFFFFFF", "marker=00000000000000000000000g"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, err := parsePage(q)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeInvalid || ota.ErrorMessage(err) == "" {
				t.Fatalf("parsePage(%q): %v is not a clean invalid error", query, err)
			}
			return
		}
		if p.limit < 1 || p.limit > maxLimit || p.offset < 0 || p.offset > maxOffset {
			t.Fatalf("parsePage(%q) = %+v", query, p)
		}
		if p.marker == "" {
			return
		}
		if len(p.marker) != markerLen || strings.Trim(p.marker, "0123456789abcdef") != "" {
			t.Fatalf("parsePage(%q): marker %q", query, p.marker)
		}
		id := parseTaskMarker(p.marker)
		if id < 0 {
			t.Fatalf("marker %q: sub-task id %d", p.marker, id)
		}
		// Markers past every id read as the largest id (the next page is
		// empty); every other one round-trips.
		if id < math.MaxInt64 && taskMarker(id) != p.marker {
			t.Fatalf("marker %q: id %d renders as %q", p.marker, id, taskMarker(id))
		}
	})
}
