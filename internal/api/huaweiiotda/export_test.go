package huaweiiotda

import (
	"net/http"
	"time"
)

// SignForTest signs r (body as sent) with SDK-HMAC-SHA256 as the SDK does,
// over host and X-Sdk-Date, for tests that build raw requests (fuzzing).
func SignForTest(r *http.Request, ak, sk string, body []byte, at time.Time) {
	date := at.UTC().Format(sdkDateFormat)
	r.Header.Set(headerSdkDate, date)
	signed := []string{"host", "x-sdk-date"}
	ph, _ := payloadHash(r, body)
	a := authorization{alg: algSDK, ak: ak, signedHeaders: signed}
	sig := signature(a, sk, date, canonicalRequest(r, signed, ph))
	r.Header.Set("Authorization", algSDK+" Access="+ak+", SignedHeaders=host;x-sdk-date, Signature="+sig)
}
