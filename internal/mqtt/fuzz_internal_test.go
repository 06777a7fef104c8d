package mqtt

import (
	"strings"
	"testing"
)

// FuzzAlinkClientID: Alibaba's CONNECT client id
// "{clientId}|securemode=…,signmethod=…,timestamp=…|". An id that is not in
// that form is left to other dialects (ok false, no error); one that is and
// parses renders back (AlinkClientID) to an id that parses the same.
func FuzzAlinkClientID(f *testing.F) {
	for _, s := range []string{
		AlinkClientID("dev1", 3, "hmacsha256", "1700000000000"), AlinkClientID("dev1", 2, "hmacmd5", ""),
		"dev1|securemode=3,signmethod=hmacsha1,lan=C,_v=1.0|", "dev1|securemode=-2|", "|securemode=3|", "dev1|signmethod=x|",
		"dev1", "dev1|securemode=3", strings.Repeat("a", 65) + "|securemode=3|", "a|b|securemode=3|",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := parseAlinkClientID(s)
		if !ok {
			if err != nil {
				t.Fatalf("parseAlinkClientID(%q): not Alink's, yet an error: %v", s, err)
			}
			return
		}
		if err != nil {
			return
		}
		if c.clientID == "" || len(c.clientID) > 64 || strings.Contains(c.clientID, "|") {
			t.Fatalf("parseAlinkClientID(%q) accepted client id %q", s, c.clientID)
		}
		if strings.ContainsAny(c.signMethod+c.timestamp, ",|") {
			return // cannot be rendered again unambiguously; nothing to compare
		}
		again, ok, err := parseAlinkClientID(AlinkClientID(c.clientID, 3, c.signMethod, c.timestamp))
		if !ok || err != nil || again != c {
			t.Fatalf("parseAlinkClientID(%q) = %+v, rendered again it parses to %+v, %v, %v", s, c, again, ok, err)
		}
		_, _ = AlinkSign(c.signMethod, "secret", AlinkSignContent(c.clientID, "dn", "pk", c.timestamp))
	})
}

// FuzzAlinkTopic: a device's OTA topic; what parses names a device with a
// non-empty product key and name, each a single topic level.
func FuzzAlinkTopic(f *testing.F) {
	for _, s := range []string{AlinkProgressTopic("pk", "dn"), AlinkRequestTopic("pk", "dn"), AlinkGetTopic("pk", "dn"), "/ota/device/inform/pk/dn",
		"/ota/device/upgrade/pk/dn", "/sys/pk//thing/ota/firmware/get", "/ota/device/inform/pk", "ota/device/inform/pk/dn"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		tp, ok := parseAlinkTopic(topic)
		if !ok {
			return
		}
		if tp.dev.ProductKey == "" || tp.dev.Name == "" || strings.Contains(tp.dev.ProductKey+tp.dev.Name, "/") {
			t.Fatalf("parseAlinkTopic(%q) = %+v", topic, tp)
		}
		if (&Alink{}).DeviceKey(topic) != tp.dev.ProductKey+"/"+tp.dev.Name {
			t.Fatalf("DeviceKey(%q) is not the parsed device", topic)
		}
	})
}
