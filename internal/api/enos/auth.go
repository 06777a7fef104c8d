package enos

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// The apim token service and request signatures (spec §3.6).
const (
	// TokenTTL is how long an access token lives (the token service's
	// documented "expire": 7200 seconds).
	TokenTTL = 7200 * time.Second
	// MaxClockSkew is how far a token request's or a signed request's
	// timestamp may be from the server's clock. EnOS documents none; a used
	// "encryption" is remembered for twice this long, so a replay is refused
	// for as long as its timestamp would be accepted.
	MaxClockSkew = 5 * time.Minute

	headerToken     = "apim-accesstoken"
	headerTimestamp = "apim-timestamp"
	headerSignature = "apim-signature"
	nonceScope      = "enos.encryption"
)

// Encryption is the token-service proof: lowercase hex SHA-256 of
// appKey + timestamp + appSecret.
func Encryption(appKey, timestamp, appSecret string) string {
	return sha256Hex(appKey + timestamp + appSecret)
}

// Signature is apim-signature: lowercase hex SHA-256 of accessToken +
// paramsData + timestamp + appSecret, where paramsData is the query
// parameters sorted by name, each as name+value, then the raw body (none for
// the multipart firmware upload).
func Signature(accessToken string, query url.Values, body []byte, timestamp, appSecret string) string {
	return sha256Hex(accessToken + ParamsData(query, body) + timestamp + appSecret)
}

// ParamsData is the signed request content.
func ParamsData(query url.Values, body []byte) string {
	names := make([]string, 0, len(query))
	for k := range query {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range query[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	b.Write(body)
	return b.String()
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tokenRequest is the token service's body.
type tokenRequest struct {
	AppKey      string `json:"appKey"`
	Encryption  string `json:"encryption"`
	Timestamp   any    `json:"timestamp"` // the samples send a number or a string
	AccessToken string `json:"accessToken"`
}

func (t tokenRequest) timestamp() string {
	switch v := t.Timestamp.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// checkClock parses an epoch-ms timestamp and checks it against now.
func checkClock(ts string, now time.Time, code int) error {
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return wireErr(code, "timestamp "+strconv.Quote(ts)+" is not epoch milliseconds")
	}
	if d := now.Sub(time.UnixMilli(ms)); d > MaxClockSkew || d < -MaxClockSkew {
		return wireErr(code, "timestamp "+ts+" is more than "+MaxClockSkew.String()+" away from the server's time: check the client's clock")
	}
	return nil
}

// issueToken serves token/get (refresh=false) and token/refresh.
func (a *API) issueToken(ctx context.Context, req tokenRequest, refresh bool) (tokenData, error) {
	ts := req.timestamp()
	if req.AppKey == "" || req.Encryption == "" || ts == "" || refresh && req.AccessToken == "" {
		fields := "appKey, encryption and timestamp"
		if refresh {
			fields = "appKey, encryption, timestamp and accessToken"
		}
		return tokenData{}, wireErr(codeTokenEmpty, "empty parameter: "+fields+" are required")
	}
	if err := checkClock(ts, a.svc.Now(), codeTokenInvalid); err != nil {
		return tokenData{}, err
	}
	key, err := a.svc.AccessKey(ctx, req.AppKey)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeUnauthenticated {
			return tokenData{}, wireErr(codeTokenUnknownKey, "appKey "+strconv.Quote(req.AppKey)+" is not known: use an Updraft access key id of the org")
		}
		return tokenData{}, err
	}
	want := Encryption(key.ID, ts, key.Secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(req.Encryption))) != 1 {
		return tokenData{}, wireErr(codeTokenBadProof, "encryption does not match: it is sha256(appKey + timestamp + appSecret) in lowercase hex")
	}
	if err := a.svc.ClaimProof(ctx, nonceScope, want, 2*MaxClockSkew); err != nil {
		if ota.ErrorCode(err) == ota.CodeConflict {
			return tokenData{}, wireErr(codeTokenReplay, "duplicate encryption: compute it again with a new timestamp")
		}
		return tokenData{}, err
	}
	if refresh {
		t, err := a.svc.RefreshAPIToken(ctx, key, req.AccessToken, TokenTTL)
		if err != nil {
			if ota.ErrorCode(err) == ota.CodeUnauthenticated {
				return tokenData{}, wireErr(codeTokenRefresh, "refresh failed: "+ota.ErrorMessage(err))
			}
			return tokenData{}, err
		}
		return tokenData{AccessToken: t.Token, Expire: int64(TokenTTL / time.Second)}, nil
	}
	t, err := a.svc.IssueAPIToken(ctx, key, TokenTTL)
	if err != nil {
		return tokenData{}, err
	}
	return tokenData{AccessToken: t.Token, Expire: int64(t.ExpiresAt.Sub(a.svc.Now()) / time.Second)}, nil
}

// authenticate checks a request's token and signature. signedBody is the
// body the client signed (nil for the multipart upload). orgId must be the
// tenant of the token's app key.
func (a *API) authenticate(r *http.Request, signedBody []byte) (service.Principal, error) {
	token := r.Header.Get(headerToken)
	ts := r.Header.Get(headerTimestamp)
	sig := r.Header.Get(headerSignature)
	if token == "" || ts == "" || sig == "" {
		return service.Principal{}, wireErr(codeDenied, "the request is not signed: send apim-accesstoken, apim-timestamp and apim-signature (get a token from /apim-token-service/v2.0/token/get)")
	}
	t, key, err := a.svc.APIToken(r.Context(), token)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeUnauthenticated {
			return service.Principal{}, wireErr(codeDenied, ota.ErrorMessage(err))
		}
		return service.Principal{}, err
	}
	if !a.svc.Now().Before(t.ExpiresAt) {
		return service.Principal{}, wireErr(codeTokenExpired, "the access token has expired: get a new one or refresh it")
	}
	if err := checkClock(ts, a.svc.Now(), codeDenied); err != nil {
		return service.Principal{}, err
	}
	want := Signature(token, r.URL.Query(), signedBody, ts, key.Secret)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(sig))) != 1 {
		return service.Principal{}, wireErr(codeDenied, "apim-signature does not match: it is sha256(accessToken + sorted query name+value + body + timestamp + appSecret); check that the body was not changed after signing")
	}
	if org := r.URL.Query().Get("orgId"); org != key.TenantID {
		return service.Principal{}, wireErr(codeDenied, "orgId "+strconv.Quote(org)+" is not the org of the app key: use the key's tenant id as orgId")
	}
	return service.PrincipalOf(key), nil
}
