package enos_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestTokenService(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	now := e.clock.Now().UnixMilli()

	a := c.tokenCall("get", now, e.secret, "")
	if a.Status != 0 || a.Data == nil || a.Data.Expire != 7200 || a.Data.AccessToken == "" {
		t.Fatalf("token/get = %+v, want status 0, expire 7200", a)
	}
	first := a.Data.AccessToken

	if a := c.tokenCall("get", now, e.secret, ""); a.Status != 1001 {
		t.Fatalf("replayed encryption: status %d (%s), want 1001", a.Status, a.Msg)
	}
	if a := c.tokenCall("get", now+1, "wrong-secret", ""); a.Status != 1003 {
		t.Fatalf("wrong secret: status %d (%s), want 1003", a.Status, a.Msg)
	}
	other := *c
	other.appKey = "AK-NOBODY"
	if a := other.tokenCall("get", now+2, e.secret, ""); a.Status != 1002 {
		t.Fatalf("unknown appKey: status %d (%s), want 1002", a.Status, a.Msg)
	}
	if a := c.tokenCall("get", now-int64(time.Hour/time.Millisecond), e.secret, ""); a.Status != 1004 {
		t.Fatalf("stale timestamp: status %d (%s), want 1004", a.Status, a.Msg)
	}
	// Get again while the token lives: the same token.
	e.clock.Add(time.Second)
	a = c.tokenCall("get", e.clock.Now().UnixMilli(), e.secret, "")
	if a.Status != 0 || a.Data.AccessToken != first {
		t.Fatalf("second token/get = %+v, want the same token %s", a, first)
	}
	// Refresh: a new token; the old one stops working.
	e.clock.Add(time.Second)
	r := c.tokenCall("refresh", e.clock.Now().UnixMilli(), e.secret, first)
	if r.Status != 0 || r.Data.AccessToken == first {
		t.Fatalf("token/refresh = %+v, want a new token", r)
	}
	e.clock.Add(time.Second)
	if a := c.tokenCall("refresh", e.clock.Now().UnixMilli(), e.secret, "not-a-token"); a.Status != 1204 {
		t.Fatalf("refresh of an unknown token: status %d (%s), want 1204", a.Status, a.Msg)
	}
	c.token = first
	wantCode(t, "old token after refresh", c.do("ota-jobs", "search", map[string]string{"orgId": e.org}, map[string]any{}, nil), 99403)
	c.token = r.Data.AccessToken
	wantCode(t, "refreshed token", c.do("ota-jobs", "search", map[string]string{"orgId": e.org}, map[string]any{}, nil), 0)
}

func TestRequestSignature(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login()
	q := map[string]string{"orgId": e.org}
	body := map[string]any{"expression": "type = 'upgrade'"}
	wantCode(t, "signed search", c.do("ota-jobs", "search", q, body, nil), 0)
	wantCode(t, "bad signature", c.do("ota-jobs", "search", q, body, func(r *http.Request) {
		r.Header.Set("apim-signature", "00"+r.Header.Get("apim-signature")[2:])
	}), 99403)
	wantCode(t, "query changed after signing", c.do("ota-jobs", "search", q, body, func(r *http.Request) {
		r.URL.RawQuery += "&extra=1"
	}), 99403)
	wantCode(t, "unsigned", c.do("ota-jobs", "search", q, body, func(r *http.Request) { r.Header.Del("apim-signature") }), 99403)
	wantCode(t, "another org", c.do("ota-jobs", "search", map[string]string{"orgId": "org-other"}, body, nil), 99403)
	wantCode(t, "missing orgId", c.do("ota-jobs", "search", nil, body, nil), 99400)
	wantCode(t, "missing action", c.do("ota-jobs", "", q, body, nil), 99400)
	wantCode(t, "stale apim-timestamp", c.do("ota-jobs", "search", q, body, func(r *http.Request) {
		ts := strconv.FormatInt(e.clock.Now().Add(-time.Hour).UnixMilli(), 10)
		r.Header.Set("apim-timestamp", ts)
	}), 99403)

	// The token expires after 7 200 s.
	e.clock.Add(7200*time.Second - time.Second)
	wantCode(t, "token just before expiry", c.do("ota-jobs", "search", q, body, nil), 0)
	e.clock.Add(time.Second)
	wantCode(t, "expired token", c.do("ota-jobs", "search", q, body, nil), 1203)
	c.login()
	wantCode(t, "new token after expiry", c.do("ota-jobs", "search", q, body, nil), 0)
}

// TestTokenOnReplica: a token and a used encryption hold on another server
// over the same database (a restart or a replica).
func TestTokenOnReplica(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	ts := e.clock.Now().UnixMilli()
	a := c.tokenCall("get", ts, e.secret, "")
	if a.Status != 0 {
		t.Fatalf("token/get = %+v", a)
	}
	c.token = a.Data.AccessToken
	r := *c
	r.base = e.replica()
	if a := r.tokenCall("get", ts, e.secret, ""); a.Status != 1001 {
		t.Fatalf("encryption replayed on the replica: status %d (%s), want 1001", a.Status, a.Msg)
	}
	wantCode(t, "token on the replica", r.do("ota-jobs", "search", map[string]string{"orgId": e.org}, map[string]any{}, nil), 0)
	e.clock.Add(time.Second)
	if a := r.tokenCall("get", e.clock.Now().UnixMilli(), e.secret, ""); a.Status != 0 || a.Data.AccessToken != c.token {
		t.Fatalf("token/get on the replica = %+v, want the live token", a)
	}
}
