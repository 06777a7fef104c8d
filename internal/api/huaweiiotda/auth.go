package huaweiiotda

import (
	"github.com/updraft-ota/updraft/internal/api/httpx"

	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Request signing as huaweicloud-sdk-go-v3 v0.1.207 does it
// (core/auth/signer/signer.go and derived_signer.go; spec §1.6).
const (
	algSDK            = "SDK-HMAC-SHA256"
	algV11            = "V11-HMAC-SHA256"
	sdkDateFormat     = "20060102T150405Z" // X-Sdk-Date, and every IoTDA time field
	derivedDateFormat = "20060102"
	derivedService    = "iotdm" // IoTDAClientBuilder's derived auth service name
	unsignedPayload   = "UNSIGNED-PAYLOAD"

	headerSdkDate       = "X-Sdk-Date"
	headerContentSha256 = "X-Sdk-Content-Sha256"
	headerProjectID     = "X-Project-Id"
	headerAuthToken     = "X-Auth-Token"

	// MaxClockSkew is how far X-Sdk-Date may be from the server's clock, either
	// way. API Gateway's customary window; Huawei documents no exact value.
	MaxClockSkew = 15 * time.Minute
)

// keyLookup finds an access key with its secret (service.AccessKey).
type keyLookup func(ctx context.Context, id string) (ota.AccessKey, error)

// authorization is a parsed Authorization header.
type authorization struct {
	alg           string
	ak            string
	info          string // V11 only: yyyymmdd/region/service
	signedHeaders []string
	signature     string
}

func unauthenticated(format string, args ...any) error {
	return ota.Errorf(ota.CodeUnauthenticated, "Authentication failed: "+format, args...)
}

// parseAuthorization reads "SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex"
// or "V11-HMAC-SHA256 Credential=AK/yyyymmdd/region/service, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(v string) (authorization, error) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	a := authorization{alg: alg}
	if alg != algSDK && alg != algV11 {
		return a, unauthenticated("the Authorization scheme %q is not supported: sign with %s or %s (AK/SK)", alg, algSDK, algV11)
	}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Access":
			if alg == algSDK {
				a.ak = val
			}
		case "Credential":
			if alg == algV11 {
				ak, info, _ := strings.Cut(val, "/")
				a.ak, a.info = ak, info
			}
		case "SignedHeaders":
			if val != "" {
				a.signedHeaders = strings.Split(val, ";")
			}
		case "Signature":
			a.signature = val
		}
	}
	if a.ak == "" || a.signature == "" {
		return a, unauthenticated("the Authorization header lacks the access key or the signature")
	}
	return a, nil
}

// verifier checks signed requests against the tenants' access keys.
type verifier struct {
	keys keyLookup
	now  func() time.Time
}

// authenticate verifies r's signature over body and that the key belongs to
// projectID (the path's project_id). Any failure is CodeUnauthenticated,
// except a store that cannot be reached.
func (v verifier) authenticate(r *http.Request, body []byte, projectID string) (service.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.Header.Get(headerAuthToken) != "" {
			return service.Principal{}, unauthenticated("IAM tokens (X-Auth-Token) are not supported by Updraft: sign requests with an access key (AK/SK)")
		}
		return service.Principal{}, unauthenticated("the request is not signed: sign it with an access key (AK/SK)")
	}
	a, err := parseAuthorization(h)
	if err != nil {
		return service.Principal{}, err
	}
	dateHeader := r.Header.Get(headerSdkDate)
	t, err := time.Parse(sdkDateFormat, dateHeader)
	if err != nil {
		return service.Principal{}, unauthenticated("X-Sdk-Date %q is not a yyyyMMdd'T'HHmmss'Z' time", dateHeader)
	}
	if d := v.now().Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return service.Principal{}, unauthenticated("X-Sdk-Date %s is more than %v away from the server's time: check the client's clock", dateHeader, MaxClockSkew)
	}
	if a.alg == algV11 {
		parts := strings.Split(a.info, "/")
		if len(parts) != 3 || parts[1] == "" {
			return service.Principal{}, unauthenticated("the V11 credential scope %q is not yyyymmdd/region/service", a.info)
		}
		if parts[0] != t.Format(derivedDateFormat) {
			return service.Principal{}, unauthenticated("the credential date %s does not match X-Sdk-Date %s", parts[0], dateHeader)
		}
		if parts[2] != derivedService {
			return service.Principal{}, unauthenticated("the credential service %q is not %q", parts[2], derivedService)
		}
	}
	key, err := v.keys(r.Context(), a.ak)
	if err != nil {
		if c := ota.ErrorCode(err); c == ota.CodeUnavailable || c == ota.CodeInternal {
			return service.Principal{}, err
		}
		return service.Principal{}, unauthenticated("access key %q is not known", a.ak)
	}
	payloadHash, err := payloadHash(r, body)
	if err != nil {
		return service.Principal{}, err
	}
	cr := canonicalRequest(r, a.signedHeaders, payloadHash)
	want := signature(a, key.Secret, dateHeader, cr)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(a.signature))) != 1 {
		return service.Principal{}, unauthenticated("the signature does not match: check the secret key and that the request was not changed after signing")
	}
	if projectID != key.TenantID {
		return service.Principal{}, unauthenticated("project %q is not the project of access key %q: use the key's project id in the path", projectID, a.ak)
	}
	if hp := r.Header.Get(headerProjectID); hp != "" && hp != projectID {
		return service.Principal{}, unauthenticated("X-Project-Id %q does not match the project %q in the path", hp, projectID)
	}
	return service.PrincipalOf(key), nil
}

// payloadHash is the hex SHA-256 of the body, or X-Sdk-Content-Sha256 when
// sent. The SDK sends UNSIGNED-PAYLOAD only for bodies that are neither JSON
// nor BSON; every IoTDA OTA operation is JSON, so an unsigned JSON body is
// refused rather than left unprotected. Content-Type is not signed, so a
// non-empty body is refused whatever it claims to be: every handler decodes
// the body as JSON.
func payloadHash(r *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	declared := r.Header.Get(headerContentSha256)
	switch {
	case declared == "":
		return actual, nil
	case declared == unsignedPayload:
		ct := r.Header.Get("Content-Type")
		if len(body) > 0 || strings.Contains(ct, "application/json") || strings.Contains(ct, "application/bson") {
			return "", unauthenticated("X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD is not accepted: sign the request body")
		}
		return declared, nil
	case !strings.EqualFold(declared, actual):
		return "", unauthenticated("X-Sdk-Content-Sha256 does not match the body")
	}
	return declared, nil
}

// canonicalRequest rebuilds what the client signed.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL.Path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		var values []string
		if name == "host" {
			values = []string{r.Host}
		} else {
			values = append(values, r.Header.Values(name)...)
		}
		sort.Strings(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteByte(':')
			b.WriteString(strings.TrimSpace(v))
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI escapes each path segment and always ends with "/".
func canonicalURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = httpx.PercentEncode(s)
	}
	u := strings.Join(segs, "/")
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u
}

// canonicalQuery sorts keys and each key's values, escaping both.
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, httpx.PercentEncode(k)+"="+httpx.PercentEncode(v))
		}
	}
	return strings.Join(parts, "&")
}

// signature computes the expected hex signature.
func signature(a authorization, secret, date, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	crHash := hex.EncodeToString(sum[:])
	if a.alg == algV11 {
		sts := algV11 + "\n" + date + "\n" + a.info + "\n" + crHash
		// The derived key is HKDF-SHA256(ikm=SK, salt=AK, info), and its
		// lowercase hex string (not the raw bytes) is the HMAC key.
		dk, err := hkdf.Key(sha256.New, []byte(secret), []byte(a.ak), a.info, 32)
		if err != nil {
			return ""
		}
		return hmacHex([]byte(hex.EncodeToString(dk)), sts)
	}
	return hmacHex([]byte(secret), algSDK+"\n"+date+"\n"+crHash)
}

func hmacHex(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}
