package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCredentialsRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_760_000_000_123)
	user := Username("prod-1", "dev:a.b@c", now)
	if user != "prod-1&dev:a.b@c|1760000000123" {
		t.Fatalf("username = %q", user)
	}
	c, err := ParseUsername(user)
	if err != nil {
		t.Fatal(err)
	}
	if c.Product != "prod-1" || c.Device != "dev:a.b@c" || c.TsMillis != now.UnixMilli() {
		t.Fatalf("parsed %+v", c)
	}
	c.Sign = Sign("s3cret", "prod-1", "dev:a.b@c", c.TsMillis)
	if err := c.Verify("s3cret", now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid credential rejected: %v", err)
	}
	if err := c.Verify("other", now, 5*time.Minute); err == nil || !strings.Contains(err.Error(), "signature mismatch") {
		t.Fatalf("wrong secret: err = %v", err)
	}
	if err := c.Verify("s3cret", now.Add(6*time.Minute), 5*time.Minute); err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("old timestamp: err = %v", err)
	}
	if err := c.Verify("s3cret", now.Add(-6*time.Minute), 5*time.Minute); err == nil {
		t.Fatal("future timestamp accepted")
	}
	// A credential signed for one device does not verify as another.
	forged := c
	forged.Device = "other"
	if err := forged.Verify("s3cret", now, 5*time.Minute); err == nil {
		t.Fatal("sign of one device accepted for another")
	}
}

func TestParseUsernameRejects(t *testing.T) {
	for _, u := range []string{"", "p", "p&d", "&d|1", "p&|1", "p&d|x", "p&d|"} {
		if _, err := ParseUsername(u); err == nil {
			t.Errorf("ParseUsername(%q) accepted", u)
		}
	}
}

func TestAuthorizationHeader(t *testing.T) {
	now := time.Now()
	h := Authorization("p", "d", "k", now)
	c, err := ParseAuthorization(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify("k", now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "Basic abc", AuthScheme + " p&d|1", AuthScheme} {
		if _, err := ParseAuthorization(bad); err == nil {
			t.Errorf("ParseAuthorization(%q) accepted", bad)
		}
	}
}

func TestTopics(t *testing.T) {
	topic := Topic("p", "d.1", TopicCheckReply)
	p, d, s, ok := ParseTopic(topic)
	if !ok || p != "p" || d != "d.1" || s != "check/reply" {
		t.Fatalf("ParseTopic(%q) = %q %q %q %v", topic, p, d, s, ok)
	}
	for _, bad := range []string{"updraft/v1/p/d", "updraft/v2/p/d/version", "x/updraft/v1/p/d/version", "updraft/v1//d/version"} {
		if _, _, _, ok := ParseTopic(bad); ok {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
}

func TestCheckReplyForms(t *testing.T) {
	for _, tc := range []struct {
		in   CheckReply
		want string
	}{
		{CheckReply{}, `{"none":true}`},
		{CheckReply{Error: "boom"}, `{"error":"boom"}`},
	} {
		b, err := json.Marshal(tc.in)
		if err != nil || string(b) != tc.want {
			t.Fatalf("marshal %+v = %s, %v", tc.in, b, err)
		}
	}
	n := &Notice{TaskID: 7, Attempt: 2, Module: "default", Version: "2.0", URL: "http://x/y", Size: 5, SignMethod: "SHA256", Sign: "ab", Tags: []Tag{{"k", "v"}}}
	b, err := json.Marshal(CheckReply{Notice: n})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "none") || strings.Contains(string(b), "url_expires_at") {
		t.Fatalf("notice reply carries extra fields: %s", b)
	}
	var back CheckReply
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Notice == nil || back.Notice.TaskID != 7 || back.Notice.Tags[0].Value != "v" || back.Notice.Attempt != 2 {
		t.Fatalf("round trip = %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"none":true}`), &back); err != nil || back.Notice != nil {
		t.Fatalf("none reply = %+v, %v", back, err)
	}
}
