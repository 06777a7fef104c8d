package httpx

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// fuzzDoc has the shapes native request bodies have: strings, numbers,
// booleans, pointers, lists, maps and nested objects.
type fuzzDoc struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Ratio  float64           `json:"ratio"`
	On     *bool             `json:"on"`
	List   []string          `json:"list"`
	Labels map[string]string `json:"labels"`
	Inner  *struct {
		ID int64 `json:"id"`
	} `json:"inner"`
}

// FuzzDecodeJSON: every native JSON body and multipart metadata part goes
// through decode. Every failure is a clean *ota.Error (invalid, or too large
// with the limit), never anything else; what decodes re-encodes to a body
// that decodes to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":1,"ratio":0.5,"on":true,"list":["x"],"labels":{"k":"v"},"inner":{"id":7}}`,
		``, `{}`, `{"name":1}`, `{"unknown":1}`, `{"name":"a"} {"name":"b"}`, `{"name":"a"} x`, `[`, `{"count":1e400}`,
		`{"inner":{"id":"x"}}`, `null`, `{"name":"\ud800"}`, "{\"name\":\"a\"}\n", `{"count":99999999999999999999}`} {
		f.Add([]byte(s))
	}
	const max = 4 << 10
	f.Fuzz(func(t *testing.T, body []byte) {
		var v fuzzDoc
		err := DecodeJSONReader(bytes.NewReader(body), &v, max, "the request body")
		if err != nil {
			var oe *ota.Error
			if !asOTA(err, &oe) {
				t.Fatalf("%q: error %T %v is not an *ota.Error", body, err, err)
			}
			switch {
			case oe.Code == ota.CodeTooLarge && len(body) > max:
			case oe.Code == ota.CodeInvalid && oe.Message != "":
			default:
				t.Fatalf("%q (%d bytes): error %q %q", body, len(body), oe.Code, oe.Message)
			}
			return
		}
		if len(body) > max {
			t.Fatalf("%d bytes accepted over the %d-byte limit", len(body), max)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q decoded to %+v, which does not encode: %v", body, v, err)
		}
		var again fuzzDoc
		if err := DecodeJSONReader(bytes.NewReader(out), &again, 0, "re-encoded"); err != nil {
			t.Fatalf("%q re-encoded as %s, which is refused: %v", body, out, err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("%q: decoded %+v, re-encoded %s, decoded again %+v", body, v, out, again)
		}
	})
}

func asOTA(err error, oe **ota.Error) bool {
	e, ok := err.(*ota.Error)
	*oe = e
	return ok
}
