package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

func TestStatusTable(t *testing.T) {
	want := map[ota.Code]int{
		ota.CodeInvalid: 400, ota.CodeNotFound: 404, ota.CodeConflict: 409, ota.CodeUnauthenticated: 401,
		ota.CodeForbidden: 403, ota.CodeTooLarge: 413, ota.CodeUnsupported: 501, ota.CodeNotVerified: 409,
		ota.CodeSignMismatch: 422, ota.CodeRateLimited: 429, ota.CodeUnavailable: 503, ota.CodeInternal: 500,
		ota.Code("something new"): 500,
	}
	for code, status := range want {
		if got := Status(code); got != status {
			t.Errorf("Status(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	type in struct {
		Name  string   `json:"name"`
		Count int      `json:"count"`
		Tags  []string `json:"tags"`
	}
	cases := []struct {
		body     string
		code     ota.Code
		field    string
		fragment string
	}{
		{`{"name":"a","count":2,"tags":["x"]}`, "", "", ""},
		{`{"name":"a","colour":1}`, ota.CodeInvalid, "colour", `unknown field "colour"`},
		{`{"name":1}`, ota.CodeInvalid, "name", `field "name" must be a string, got a JSON number`},
		{`{"count":"2"}`, ota.CodeInvalid, "count", "must be an integer"},
		{`{"tags":"x"}`, ota.CodeInvalid, "tags", "must be an array"},
		{`[]`, ota.CodeInvalid, "", "must be an object"},
		{`{"name":"a",}`, ota.CodeInvalid, "", "malformed JSON at byte"},
		{`{"name":"a"`, ota.CodeInvalid, "", "ends before"},
		{``, ota.CodeInvalid, "", "is empty"},
		{`{} {}`, ota.CodeInvalid, "", "exactly one JSON object"},
		{`{} x`, ota.CodeInvalid, "", "malformed JSON"},
		{`{"name":"` + strings.Repeat("a", 100) + `"}`, ota.CodeTooLarge, "", "64-byte limit"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		var v in
		err := DecodeJSON(httptest.NewRecorder(), r, &v, 64)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		if ota.ErrorCode(err) != tc.code || ota.ErrorField(err) != tc.field || !strings.Contains(ota.ErrorMessage(err), tc.fragment) {
			t.Errorf("%.40s: got %v (field %q), want %s %q mentioning %q", tc.body, err, ota.ErrorField(err), tc.code, tc.field, tc.fragment)
		}
	}
	// A reader (a multipart part) is named in messages.
	err := DecodeJSONReader(strings.NewReader(`{`), &in{}, 0, "the metadata part")
	if !strings.Contains(ota.ErrorMessage(err), "the metadata part is malformed JSON") {
		t.Errorf("reader: %v", err)
	}
}

func TestRequestID(t *testing.T) {
	var seen string
	h := RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = RequestIDFrom(r.Context()) }))
	for _, tc := range []struct {
		sent string
		keep bool
	}{{"abc-123_x.y", true}, {"", false}, {"has space", false}, {strings.Repeat("a", 65), false}, {"a\nb", false}} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set(RequestIDHeader, tc.sent)
		h.ServeHTTP(rec, r)
		got := rec.Header().Get(RequestIDHeader)
		if got == "" || got != seen || (got == tc.sent) != tc.keep {
			t.Errorf("sent %q: header %q, context %q, keep %v", tc.sent, got, seen, tc.keep)
		}
	}
}

func TestWriteErrorHidesInternalCauses(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	var rec *httptest.ResponseRecorder
	RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec = w.(*httptest.ResponseRecorder)
		WriteError(w, r, log, errors.New("pq: password authentication failed for user secret_admin"))
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	var body ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || body.Code != string(ota.CodeInternal) || strings.Contains(body.Message, "secret_admin") || body.RequestID == "" {
		t.Errorf("internal error answer: %d %+v", rec.Code, body)
	}
	if !strings.Contains(logged.String(), "secret_admin") || !strings.Contains(logged.String(), body.RequestID) {
		t.Errorf("the cause and request id were not logged: %s", logged.String())
	}

	rec2 := httptest.NewRecorder()
	WriteError(rec2, httptest.NewRequest("GET", "/x", nil), log, ota.Invalid("version", "version <1> is bad & wrong"))
	if rec2.Code != 400 || !strings.Contains(rec2.Body.String(), `"field":"version"`) || !strings.Contains(rec2.Body.String(), "<1> is bad & wrong") {
		t.Errorf("invalid: %d %s", rec2.Code, rec2.Body.String())
	}
}
