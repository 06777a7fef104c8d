package aliyuniot

import (
	"github.com/updraft-ota/updraft/internal/api/httpx"

	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Request signing as the SDKs do it (spec §2.6): RPC v1 (HMAC-SHA1 over the
// parameters, legacy alibaba-cloud-sdk-go and Tea with SignatureAlgorithm
// "v2") and ACS3-HMAC-SHA256 (headers, Tea's default).
const (
	algACS3       = "ACS3-HMAC-SHA256"
	rpcTimeFormat = "2006-01-02T15:04:05Z"

	// MaxClockSkew is how far Timestamp / x-acs-date may be from the
	// server's clock either way. Alibaba's customary window.
	MaxClockSkew = 15 * time.Minute
)

func authError(field, format string, args ...any) error {
	return &ota.Error{Code: ota.CodeUnauthenticated, Field: field, Message: sprintf(format, args...)}
}

// verifier checks signed requests against the tenants' access keys and
// remembers nonces in the store.
type verifier struct {
	keys   func(ctx context.Context, id string) (ota.AccessKey, error)
	nonces func(ctx context.Context, keyID, nonce string) (bool, error)
	now    func() time.Time
}

// signedRequest is what either scheme yields before the secret is known.
type signedRequest struct {
	keyID, nonce, date string
	check              func(secret string) bool
}

// authenticate verifies r (params = query ∪ form body, body = raw body) and
// returns the caller. The nonce is spent only after the signature matched,
// so a forged request cannot burn a client's nonces.
func (v verifier) authenticate(r *http.Request, params url.Values, body []byte) (service.Principal, error) {
	var sr signedRequest
	var err error
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "ACS3-") {
		sr, err = parseACS3(r, auth, body)
	} else {
		sr, err = parseRPC(r.Method, params)
	}
	if err != nil {
		return service.Principal{}, err
	}
	t, err := time.Parse(rpcTimeFormat, sr.date)
	if err != nil {
		return service.Principal{}, authError(fieldTimestamp, "the timestamp %q is not yyyy-MM-ddTHH:mm:ssZ (UTC)", sr.date)
	}
	if d := v.now().Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return service.Principal{}, authError(fieldTimestamp, "the timestamp %s is more than %v away from the server's time: check the client's clock", sr.date, MaxClockSkew)
	}
	key, err := v.keys(r.Context(), sr.keyID)
	if err != nil {
		if c := ota.ErrorCode(err); c == ota.CodeUnavailable || c == ota.CodeInternal {
			return service.Principal{}, err
		}
		return service.Principal{}, authError(fieldAccessKey, "the AccessKeyId %q is not known: use a key Updraft issued", sr.keyID)
	}
	if !sr.check(key.Secret) {
		return service.Principal{}, authError(fieldSignature, "the request signature does not match: check the AccessKeySecret and that the request was not changed after signing")
	}
	fresh, err := v.nonces(r.Context(), key.ID, sr.nonce)
	if err != nil {
		return service.Principal{}, err
	}
	if !fresh {
		return service.Principal{}, authError(fieldNonce, "the signature nonce %q has been used before: send a new nonce with every request", sr.nonce)
	}
	return service.PrincipalOf(key), nil
}

// parseRPC reads an RPC v1 signed request from its parameters.
func parseRPC(method string, params url.Values) (signedRequest, error) {
	sig := params.Get("Signature")
	sr := signedRequest{keyID: params.Get("AccessKeyId"), nonce: params.Get("SignatureNonce"), date: params.Get("Timestamp")}
	if sig == "" || sr.keyID == "" {
		return sr, authError(fieldIncomplete, "the request is not signed: send AccessKeyId and Signature (RPC v1) or an ACS3-HMAC-SHA256 Authorization header")
	}
	if m := params.Get("SignatureMethod"); m != "HMAC-SHA1" {
		return sr, authError(fieldIncomplete, "SignatureMethod %q is not supported: use HMAC-SHA1", m)
	}
	if sr.nonce == "" {
		return sr, authError(fieldIncomplete, "SignatureNonce is required: send a unique nonce with every request")
	}
	sr.check = func(secret string) bool {
		want := base64.StdEncoding.EncodeToString(hmacSum(sha1.New, secret+"&", rpcStringToSign(method, params)))
		return subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1
	}
	return sr, nil
}

// rpcStringToSign is METHOD&%2F&httpx.PercentEncode(sorted httpx.PercentEncode(k)=httpx.PercentEncode(v) without Signature).
func rpcStringToSign(method string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		for _, v := range params[k] {
			parts = append(parts, httpx.PercentEncode(k)+"="+httpx.PercentEncode(v))
		}
	}
	return method + "&" + httpx.PercentEncode("/") + "&" + httpx.PercentEncode(strings.Join(parts, "&"))
}

// parseACS3 reads "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex".
func parseACS3(r *http.Request, auth string, body []byte) (signedRequest, error) {
	alg, rest, _ := strings.Cut(auth, " ")
	sr := signedRequest{nonce: r.Header.Get("x-acs-signature-nonce"), date: r.Header.Get("x-acs-date")}
	if alg != algACS3 {
		return sr, authError(fieldIncomplete, "the signature algorithm %q is not supported: use %s or RPC v1 (HMAC-SHA1)", alg, algACS3)
	}
	var signed []string
	var sig string
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			sr.keyID = val
		case "SignedHeaders":
			signed = strings.Split(val, ";")
		case "Signature":
			sig = strings.ToLower(val)
		}
	}
	if sr.keyID == "" || sig == "" || len(signed) == 0 {
		return sr, authError(fieldIncomplete, "the Authorization header lacks Credential, SignedHeaders or Signature")
	}
	if sr.nonce == "" {
		return sr, authError(fieldIncomplete, "x-acs-signature-nonce is required: send a unique nonce with every request")
	}
	for _, h := range []string{"x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256", "host"} {
		if !contains(signed, h) {
			return sr, authError(fieldIncomplete, "the header %s must be signed", h)
		}
	}
	sum := sha256.Sum256(body)
	if !strings.EqualFold(r.Header.Get("x-acs-content-sha256"), hex.EncodeToString(sum[:])) {
		return sr, authError(fieldSignature, "x-acs-content-sha256 does not match the request body")
	}
	sr.check = func(secret string) bool {
		crSum := sha256.Sum256([]byte(acs3CanonicalRequest(r, signed)))
		sts := algACS3 + "\n" + hex.EncodeToString(crSum[:])
		want := hex.EncodeToString(hmacSum(sha256.New, secret, sts))
		return subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1
	}
	return sr, nil
}

// acs3CanonicalRequest rebuilds what darabonba-openapi signed: the query keys
// sorted and left as they are, the values RFC 3986-encoded.
func acs3CanonicalRequest(r *http.Request, signed []string) string {
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		qs = append(qs, k+"="+httpx.PercentEncode(q.Get(k)))
	}
	var b strings.Builder
	b.WriteString(r.Method + "\n" + canonicalPath(r.URL.EscapedPath()) + "\n" + strings.Join(qs, "&") + "\n")
	for _, h := range signed {
		var vals []string
		if h == "host" {
			vals = []string{r.Host}
		} else {
			for _, v := range r.Header.Values(h) {
				vals = append(vals, strings.TrimSpace(v))
			}
		}
		sort.Strings(vals)
		b.WriteString(h + ":" + strings.Join(vals, ",") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + r.Header.Get("x-acs-content-sha256"))
	return b.String()
}

func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func hmacSum(h func() hash.Hash, key, msg string) []byte {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var sprintf = fmt.Sprintf
