package httpx

import "strings"

// PercentEncode is RFC 3986 percent-encoding with upper-case hex, as the
// vendors' request signatures (Huawei SDK-HMAC, Alibaba RPC and ACS3)
// canonicalize paths and queries: only A-Z a-z 0-9 - _ . ~ stay as they are.
func PercentEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
