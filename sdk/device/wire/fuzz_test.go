package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzParseAuthorization: the device HTTP Authorization header (and so the
// MQTT username it contains). A credential that parses re-renders to a
// string that parses to the same credential, and its parts are non-empty:
// what the server verifies is exactly what it parsed.
func FuzzParseAuthorization(f *testing.F) {
	at := time.UnixMilli(1_760_000_000_123)
	for _, s := range []string{
		Authorization("prod-1", "dev:a.b@c", "s3cret", at),
		Authorization("p", "d", "k", at),
		AuthScheme + " p&d|1 sig", AuthScheme + " p&d|+5 sig", AuthScheme + " p&d&e|x|1 s",
		"", "Basic abc", AuthScheme + " p&d|1", AuthScheme, "updraft-hmac-sha256  p&d|-1  s ",
		AuthScheme + " p&d|99999999999999999999 s",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			if c != (Credentials{}) {
				t.Fatalf("ParseAuthorization(%q) failed (%v) but returned %+v", h, err, c)
			}
			return
		}
		if c.Product == "" || c.Device == "" || c.Sign == "" {
			t.Fatalf("ParseAuthorization(%q) = %+v: empty part accepted", h, c)
		}
		again, err := ParseAuthorization(AuthScheme + " " + StringToSign(c.Product, c.Device, c.TsMillis) + " " + c.Sign)
		if err != nil || again != c {
			t.Fatalf("ParseAuthorization(%q) = %+v, but its re-rendering parses to %+v, %v", h, c, again, err)
		}
		// Verify must not panic on any timestamp (time arithmetic at the extremes).
		_ = c.Verify("secret", time.Now(), 5*time.Minute)
	})
}

// FuzzParseUsername: the native MQTT CONNECT username.
func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"prod-1&dev:a.b@c|1760000000123", "", "p", "p&d", "&d|1", "p&|1", "p&d|x", "p&d|", "p&d|1|2", "p&&d|0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		c, err := ParseUsername(u)
		if err != nil {
			return
		}
		if c.Product == "" || c.Device == "" {
			t.Fatalf("ParseUsername(%q) = %+v: empty product or device accepted", u, c)
		}
		again, err := ParseUsername(StringToSign(c.Product, c.Device, c.TsMillis))
		if err != nil || again != c {
			t.Fatalf("ParseUsername(%q) = %+v, but its re-rendering parses to %+v, %v", u, c, again, err)
		}
	})
}

// FuzzParseTopic: a topic that parses is rebuilt by Topic exactly.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{Topic("p", "d.1", TopicCheckReply), Topic("p", "d", TopicVersion), "updraft/v1/p//x", "updraft/v1/p/d/", "updraft/v2/p/d/x", "updraft/v1/a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		p, d, s, ok := ParseTopic(topic)
		if !ok {
			return
		}
		if Topic(p, d, s) != topic {
			t.Fatalf("ParseTopic(%q) = %q %q %q, which Topic renders as %q", topic, p, d, s, Topic(p, d, s))
		}
	})
}

// FuzzCheckReply: a device's check reply in any of its three forms; what
// decodes re-encodes to something that decodes the same.
func FuzzCheckReply(f *testing.F) {
	for _, s := range []string{`{"none":true}`, `{"error":"boom"}`, `{"task_id":7,"module":"default","version":"1.1.0","url":"http://x/y","size":3,"sign_method":"SHA256","sign":"ab"}`,
		`{"task_id":1,"url_expires_at":"2025-01-01T00:00:00Z","tags":[{"key":"a","value":"b"}]}`, `null`, `[]`, `{"none":false,"error":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r CheckReply
		if err := json.Unmarshal(b, &r); err != nil {
			return
		}
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%q decoded to %+v, which does not encode: %v", b, r, err)
		}
		var again CheckReply
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%q re-encoded as %s, which does not decode: %v", b, out, err)
		}
		if !reflect.DeepEqual(normalizeReply(r), normalizeReply(again)) {
			t.Fatalf("%q: decoded %+v, re-encoded %s, decoded again %+v", b, r, out, again)
		}
	})
}

// normalizeReply compares notices by their JSON (times keep their instant,
// not their location).
func normalizeReply(r CheckReply) any {
	if r.Notice == nil {
		return r
	}
	b, _ := json.Marshal(r.Notice)
	return string(b)
}
