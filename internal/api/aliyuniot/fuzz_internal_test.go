package aliyuniot

import (
	"crypto/sha1"
	"encoding/base64"
	"math"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/ota"
)

// FuzzRPCSignature: the RPC v1 signature of every legacy SDK request, read
// from its parameters. Refusals are clean unauthenticated errors; a request
// that parses verifies with the secret it was signed with (the string to
// sign is the client's, whatever the parameters hold) and not with another.
func FuzzRPCSignature(f *testing.F) {
	for _, q := range []string{
		"Action=QueryOTAFirmware&Format=JSON&Version=2018-01-20&AccessKeyId=AK&SignatureMethod=HMAC-SHA1&Timestamp=2025-03-01T12%3A00%3A00Z&SignatureVersion=1.0&SignatureNonce=n1&FirmwareId=abc",
		"AccessKeyId=AK&Signature=x&SignatureMethod=HMAC-SHA256&SignatureNonce=n",
		"AccessKeyId=AK&SignatureMethod=HMAC-SHA1",
		"Tags.1.Key=a&Tags.1.Value=%E2%80%AE&AccessKeyId=AK&SignatureMethod=HMAC-SHA1&SignatureNonce=n&Timestamp=x",
		"",
	} {
		f.Add("GET", q)
		f.Add("POST", q)
	}
	f.Fuzz(func(t *testing.T, method, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		params.Del("Signature")
		want := base64.StdEncoding.EncodeToString(hmacSum(sha1.New, "secret&", rpcStringToSign(method, params)))
		params.Set("Signature", want)
		sr, err := parseRPC(method, params)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeUnauthenticated || ota.ErrorMessage(err) == "" {
				t.Fatalf("parseRPC(%q): %v is not a clean unauthenticated error", query, err)
			}
			return
		}
		if sr.keyID == "" || sr.nonce == "" {
			t.Fatalf("parseRPC(%q) accepted a request without key id or nonce: %+v", query, sr)
		}
		if !sr.check("secret") {
			t.Fatalf("parseRPC(%q): the request's own signature does not verify", query)
		}
		if sr.check("other") {
			t.Fatalf("parseRPC(%q): verifies with a secret it was not signed with", query)
		}
	})
}

// FuzzACS3Authorization: the ACS3-HMAC-SHA256 Authorization header (Tea
// SDK). Refusals are clean unauthenticated errors; an accepted header names
// a key and signs the date, nonce, content hash and host.
func FuzzACS3Authorization(f *testing.F) {
	f.Add("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce,Signature=abcd", "n1")
	f.Add("ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host,Signature=abcd", "n1")
	f.Add("ACS3-HMAC-SHA1 Credential=AK", "")
	f.Add("ACS3-", "n")
	f.Fuzz(func(t *testing.T, auth, nonce string) {
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("x-acs-signature-nonce", nonce)
		r.Header.Set("x-acs-date", "2025-03-01T12:00:00Z")
		r.Header.Set("x-acs-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
		sr, err := parseACS3(r, auth, nil)
		if err != nil {
			if ota.ErrorCode(err) != ota.CodeUnauthenticated {
				t.Fatalf("parseACS3(%q): %v is not a clean unauthenticated error", auth, err)
			}
			return
		}
		if sr.keyID == "" || sr.nonce == "" {
			t.Fatalf("parseACS3(%q) accepted without key id or nonce", auth)
		}
		_ = sr.check("secret") // must not panic
	})
}

// FuzzParams: the typed business parameters of every action (pages, lists,
// tags, integers). Refusals are clean invalid errors; a page that is
// accepted has an offset that fits (no overflow into a negative or wrapped
// offset, which the store would treat as the first page).
func FuzzParams(f *testing.F) {
	for _, q := range []string{"CurrentPage=2&PageSize=10", "CurrentPage=0", "PageSize=-1", "CurrentPage=9223372036854775807&PageSize=10",
		"CurrentPage=abc", "DeviceName.1=a&DeviceName.2=b", "DeviceName.2=b", "DeviceName.0=x", "Tag.1.Key=a&Tag.1.Value=b", "Tag.1.Key=a&Tag.3.Key=c",
		"DeviceName.1=a&DeviceName.99999999999999999999=b"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p := params{v: v}
		clean := func(what string, err error) {
			if err != nil && (ota.ErrorCode(err) != ota.CodeInvalid || ota.ErrorMessage(err) == "") {
				t.Fatalf("%s(%q): %v is not a clean invalid error", what, query, err)
			}
		}
		const max = 200
		cur, size, err := p.page(max)
		clean("page", err)
		if err == nil {
			if cur < 1 || size < 1 || size > max {
				t.Fatalf("page(%q) = %d, %d", query, cur, size)
			}
			pg := storePage(cur, size)
			if pg.Offset < 0 || pg.Offset > math.MaxInt32 || int64(pg.Offset)/size != cur-1 || pg.Limit != int(size) {
				t.Fatalf("page(%q) = %d × %d: store page %+v", query, cur, size, pg)
			}
		}
		list, err := p.list("DeviceName", 100)
		clean("list", err)
		for i, s := range list {
			if s != v.Get("DeviceName."+strconv.Itoa(i+1)) {
				t.Fatalf("list(%q)[%d] = %q", query, i, s)
			}
		}
		tags, err := p.tags("Tag", 10)
		clean("tags", err)
		if len(tags) > 10 {
			t.Fatalf("tags(%q): %d tags over the limit", query, len(tags))
		}
		for _, k := range []string{"CurrentPage", "PageSize"} {
			_, err := p.integer(k, 0)
			clean("integer", err)
		}
		_ = strings.ToLower(p.str("Action"))
	})
}
