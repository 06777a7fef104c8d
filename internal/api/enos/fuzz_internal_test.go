package enos

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// FuzzExpression: the search actions' filter language. Refusals are clean
// invalid errors on "expression"; what parses uses only the fields and
// operators allowed, and its rendering parses to the same conditions.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		`productKey = 'pk1'`, `productKey in ('a', "b") AND version = '1.0'`, `name.defaultValue like '%fw%'`,
		`deviceKey in ('d1','d2') and status = 'Failed'`, `productKey = pk1 AND`, `version = 1.0 OR version = 2.0`,
		`productKey in ()`, `productKey in ('a'`, `productKey = 'unterminated`, `secret = 'x'`, `  `, `productKey  =  "it's"`,
		`productKey = ` + "'\u202e'", `productKey like 'x'`, `name.aa like ''`, `name.en_US = 'fw' AND name.zh_CN like 'x'`,
	} {
		f.Add(s)
	}
	allowed := map[string][]string{}
	for _, m := range []map[string][]string{firmwareFields, jobFields, taskFields} {
		for k, v := range m {
			allowed[k] = append(allowed[k], v...)
		}
	}
	f.Fuzz(func(t *testing.T, expr string) {
		conds, err := parseExpression(expr, allowed)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeInvalid || ota.ErrorField(err) != "expression" {
				t.Fatalf("parseExpression(%q): %v is not a clean invalid error on expression", expr, err)
			}
			return
		}
		var terms []string
		for _, c := range conds {
			if !contains(allowed[c.field], c.op) || len(c.values) == 0 || c.op != "in" && len(c.values) != 1 {
				t.Fatalf("parseExpression(%q) = %+v: a condition it does not allow", expr, conds)
			}
			var vals []string
			for _, v := range c.values {
				q := "'"
				if strings.Contains(v, "'") {
					if strings.Contains(v, `"`) {
						return // not expressible again; nothing to compare
					}
					q = `"`
				}
				vals = append(vals, q+v+q)
			}
			field := c.field
			if field == localizedName {
				field = "name." + c.locale // the locale the condition names
			}
			if c.op == "in" {
				terms = append(terms, field+" in ("+strings.Join(vals, ", ")+")")
			} else {
				terms = append(terms, field+" "+c.op+" "+vals[0])
			}
		}
		rendered := strings.Join(terms, " AND ")
		again, err := parseExpression(rendered, allowed)
		if err != nil || !reflect.DeepEqual(again, conds) && len(conds) > 0 {
			t.Fatalf("parseExpression(%q) = %+v, rendered %q, parses to %+v, %v", expr, conds, rendered, again, err)
		}
	})
}

// FuzzLenientMetadata: the firmware upload's metadata part, JSON or the
// official sample's Python literal. Valid JSON passes unchanged; whatever the
// input, no panic.
func FuzzLenientMetadata(f *testing.F) {
	for _, s := range []string{
		`{'name': {'defaultValue': 'fw', 'i18nValue': {}}, 'version': '1.0', 'signMethod': 'md5', 'sign': 'abc', 'enableVerification': False, 'desc': None}`,
		`{"name":{"defaultValue":"fw"},"version":"1.0","enableVerification":true}`, `{'a': 'it\'s', "b": "x\"y"}`, `{'a': "True"}`,
		`'unterminated`, `"unterminated\`, `TrueFalseNone`, `{"a":"\\"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := lenientJSON(s)
		if json.Valid([]byte(s)) && out != s {
			t.Fatalf("valid JSON %q was changed into %q", s, out)
		}
		var meta firmwareMetadata
		_ = json.Unmarshal([]byte(out), &meta)
	})
}

// FuzzClientID: the CONNECT client id "{clientId}|k=v,…|". What parses
// renders back to a client id that parses the same.
func FuzzClientID(f *testing.F) {
	for _, s := range []string{"dev1|securemode=2,signmethod=sha256,timestamp=1700000000000|", "dev1|securemode=2|", "|securemode=2|",
		"dev1|securemode|", "dev1", "dev1|a=b", "a|b|c=d|", "x| SecureMode = 2 ,timestamp=1|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, params, ok := parseClientID(s)
		if !ok {
			return
		}
		if id == "" || strings.Contains(id, "|") {
			t.Fatalf("parseClientID(%q): client id %q", s, id)
		}
		_, _ = Password(params["signmethod"], id, "dk", "pk", params["timestamp"], "secret")
	})
}

// FuzzSearchPaging: a search's pagination. Refusals are clean invalid
// errors; an accepted page has a non-negative offset that is really
// (pageNo-1) × pageSize (an overflow would wrap into a negative offset, which
// the store reads as the first page).
func FuzzSearchPaging(f *testing.F) {
	for _, s := range []string{`{"pagination":{"pageNo":2,"pageSize":10}}`, `{"pagination":{"pageNo":0}}`, `{"pagination":{"pageSize":201}}`,
		`{"pagination":{"pageNo":9223372036854775807,"pageSize":10}}`, `{}`, ``, `{"pagination":null}`, `{"pagination":{"pageNo":-1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &call{r: httptest.NewRequest("POST", "/", nil), body: body}
		pg, _, err := c.search(firmwareFields)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeInvalid {
				t.Fatalf("search(%q): %v is not a clean invalid error", body, err)
			}
			return
		}
		if pg.Offset < 0 || pg.Offset > math.MaxInt32 || pg.Limit < 1 || pg.Limit > maxPageSize ||
			c.page == nil || pg.Offset/pg.Limit != c.page.PageNo-1 {
			t.Fatalf("search(%q): store page %+v for pagination %+v", body, pg, c.page)
		}
	})
}
