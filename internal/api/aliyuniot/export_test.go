package aliyuniot

import (
	"crypto/sha1"
	"encoding/base64"
	"net/url"
)

// SignRPCForTest sets params' RPC v1 Signature for method with secret, as
// the legacy SDK computes it, for tests that build raw requests (fuzzing).
func SignRPCForTest(method string, params url.Values, secret string) {
	params.Del("Signature")
	params.Set("Signature", base64.StdEncoding.EncodeToString(hmacSum(sha1.New, secret+"&", rpcStringToSign(method, params))))
}
