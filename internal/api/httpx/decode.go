package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/updraft-ota/updraft/internal/ota"
)

// MaxJSONBody is the default limit on a JSON request body. The largest valid
// native request (a package's metadata: description, custom info and tags at
// their limits) is well under 16 KB.
const MaxJSONBody = 1 << 20

// DecodeJSON decodes the request body into v: one JSON value, no unknown
// fields, at most max bytes (MaxJSONBody when max ≤ 0). Every failure is an
// *ota.Error (CodeInvalid, or CodeTooLarge for an oversized body) whose
// message tells the caller what to fix.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if max <= 0 {
		max = MaxJSONBody
	}
	// MaxBytesReader also tells the server to close the connection rather
	// than drain an oversized body.
	return decode(http.MaxBytesReader(w, r.Body, max), v, "the request body")
}

// DecodeJSONReader is DecodeJSON for a body that is not a whole request (a
// multipart part). what names it in messages ("the metadata part").
func DecodeJSONReader(rd io.Reader, v any, max int64, what string) error {
	if max <= 0 {
		max = MaxJSONBody
	}
	return decode(http.MaxBytesReader(nil, io.NopCloser(rd), max), v, what)
}

func decode(body io.Reader, v any, what string) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, what)
	}
	// Exactly one value: trailing data is almost always a client bug.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return ota.Invalid("", "%s has data after its JSON value: send exactly one JSON object", what)
	default:
		return decodeError(err, what)
	}
}

func decodeError(err error, what string) error {
	var (
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		return &ota.Error{Code: ota.CodeTooLarge, Message: fmt.Sprintf("%s is larger than the %d-byte limit", what, tooLarge.Limit)}
	case errors.Is(err, io.EOF):
		return ota.Invalid("", "%s is empty: send a JSON object", what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ota.Invalid("", "%s is malformed JSON: it ends before the JSON value does", what)
	case errors.As(err, &syntax):
		return ota.Invalid("", "%s is malformed JSON at byte %d: %s", what, syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return ota.Invalid("", "%s must be %s, got a JSON %s", what, jsonKind(typ.Type), typ.Value)
		}
		return ota.Invalid(typ.Field, "field %q must be %s, got a JSON %s", typ.Field, jsonKind(typ.Type), typ.Value)
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return ota.Invalid(name, "unknown field %q: check its spelling against the API document", name)
	}
	return ota.Invalid("", "reading %s: %v", what, err)
}

// jsonKind names the JSON type a Go type decodes from, for messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}
