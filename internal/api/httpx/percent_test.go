package httpx

import "testing"

func TestPercentEncode(t *testing.T) {
	if got := PercentEncode("a b*~é/+"); got != "a%20b%2A~%C3%A9%2F%2B" {
		t.Errorf("PercentEncode = %s", got)
	}
}
