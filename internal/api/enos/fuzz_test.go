package enos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// enosFuzzServer is a real server (rate limits off), an EnOS product with a
// device, and an access token of the bootstrap key.
type enosFuzzServer struct {
	srv            *server.Server
	org, ak, sk    string
	token          string
	deviceSecret   string
	product, devKy string
}

func newEnOSFuzzServer(f *testing.F) *enosFuzzServer {
	f.Helper()
	srv := server.StartForTest(f, func(c *config.Config) {
		c.Unthrottle()
		c.LogLevel = "error"
	})
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	s := &enosFuzzServer{srv: srv, org: creds.Tenant, ak: creds.AccessKeyID, sk: creds.SecretAccessKey, product: "ep", devKy: "d1", deviceSecret: "enos-device-secret-1"}
	if _, err := cl.CreateProduct(ctx, client.ProductCreate{Key: s.product, Name: "ep", Protocol: "enos"}); err != nil {
		f.Fatal(err)
	}
	if _, err := cl.CreateDevice(ctx, s.product, client.DeviceCreate{Name: s.devKy, Secret: s.deviceSecret}); err != nil {
		f.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	b, _ := json.Marshal(map[string]string{"appKey": s.ak, "encryption": enos.Encryption(s.ak, ts, s.sk), "timestamp": ts})
	w := s.do("POST", "/apim-token-service/v2.0/token/get", "", "application/json", b)
	var tok struct {
		Status int
		Data   struct{ AccessToken string }
	}
	if json.Unmarshal(w.Body.Bytes(), &tok) != nil || tok.Status != 0 || tok.Data.AccessToken == "" {
		f.Fatalf("token/get: %s", w.Body)
	}
	s.token = tok.Data.AccessToken
	return s
}

func (s *enosFuzzServer) do(method, path, query, contentType string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.URL.RawQuery = query
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.srv.Handler().ServeHTTP(w, r)
	return w
}

// signed sends an API call signed as EnOS's clients sign (apim-* headers;
// the multipart upload signs no body).
func (s *enosFuzzServer) signed(resource, action string, extra url.Values, contentType string, body []byte, signBody bool) *httptest.ResponseRecorder {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("action", action)
	q.Set("orgId", s.org)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	signedBody := body
	if !signBody {
		signedBody = nil
	}
	r := httptest.NewRequest("POST", "/connect-service/v2.1/"+resource, bytes.NewReader(body))
	r.URL.RawQuery = q.Encode()
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("apim-accesstoken", s.token)
	r.Header.Set("apim-timestamp", ts)
	r.Header.Set("apim-signature", enos.Signature(s.token, r.URL.Query(), signedBody, ts, s.sk))
	w := httptest.NewRecorder()
	s.srv.Handler().ServeHTTP(w, r)
	return w
}

// checkEnvelope holds an API answer to EnOS's envelope: HTTP 200 with a
// code and a message, never an internal code, and never "denied" for a
// request signed correctly.
func checkEnvelope(t *testing.T, what string, w *httptest.ResponseRecorder) {
	t.Helper()
	var env struct {
		Code      *int   `json:"code"`
		Msg       string `json:"msg"`
		RequestID string `json:"requestId"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &env) != nil || env.Code == nil || env.Msg == "" {
		t.Fatalf("%s: HTTP %d, not EnOS's envelope: %q", what, w.Code, w.Body)
	}
	switch *env.Code {
	case 99500, 24500:
		t.Fatalf("%s: an internal error for client input: %s", what, w.Body)
	case 99403:
		t.Fatalf("%s: a correctly signed request was denied: %s", what, w.Body)
	}
}

var enosActions = []struct{ resource, action string }{
	{"ota-firmwares", "get"}, {"ota-firmwares", "search"}, {"ota-firmwares", "delete"},
	{"ota-jobs", "create"}, {"ota-jobs", "get"}, {"ota-jobs", "search"}, {"ota-jobs", "start"}, {"ota-jobs", "stop"},
	{"ota-jobs", "delete"}, {"ota-jobs", "searchTask"}, {"ota-jobs", "cancelTask"}, {"ota-jobs", "retryTask"}, {"ota-nothing", "x"},
}

// FuzzEnOSAPI: the connect-service actions' query parameters and JSON
// bodies (search expressions and pagination included), signed with
// apim-signature over query and body, on a real server.
func FuzzEnOSAPI(f *testing.F) {
	s := newEnOSFuzzServer(f)
	for _, sd := range []struct {
		action      uint8
		query, body string
	}{
		{0, "firmwareId=f1", ``},
		{1, "", `{"expression":"productKey = 'ep' AND version = '1.0'","pagination":{"pageNo":1,"pageSize":10}}`},
		{1, "", `{"expression":"name.defaultValue like '%fw%'"}`},
		{1, "", `{"pagination":{"pageNo":9223372036854775807,"pageSize":10}}`},
		{3, "", `{"name":{"defaultValue":"j"},"firmwareId":"f1","type":"upgrade","upgradeScope":{"type":"partial","deviceKeys":["d1"]},"upgradeTimeout":30}`},
		{5, "", `{"expression":"status in ('Running', \"Finished\") and productKey = ep"}`},
		{9, "jobId=j1", `{"expression":"deviceKey in ('d1','d2') AND status = 'Failed'"}`},
		{10, "jobId=j1", `{"deviceKeys":["d1"]}`},
		{1, "", `{"expression":"secret = 'x' OR 1=1"}`},
		{12, "", ``},
	} {
		f.Add(sd.action, sd.query, []byte(sd.body))
	}
	f.Fuzz(func(t *testing.T, action uint8, query string, body []byte) {
		a := enosActions[int(action)%len(enosActions)]
		extra, err := url.ParseQuery(query)
		if err != nil {
			extra = url.Values{}
		}
		w := s.signed(a.resource, a.action, extra, "application/json", body, true)
		checkEnvelope(t, a.resource+"?action="+a.action+"&"+query, w)
	})
}

// FuzzEnOSFirmwareUpload: the multipart firmware upload, its lenient
// (single-quoted) metadata part and its file part.
func FuzzEnOSFirmwareUpload(f *testing.F) {
	s := newEnOSFuzzServer(f)
	const boundary = "fuzzboundary"
	form := func(meta, file string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary(boundary)
		if meta != "" {
			_ = mw.WriteField("metadata", meta)
		}
		if file != "" {
			fw, _ := mw.CreateFormFile("file", "fw.bin")
			_, _ = fw.Write([]byte(file))
		}
		_ = mw.Close()
		return b.Bytes()
	}
	f.Add(form(`{'name': {'defaultValue': 'fw'}, 'version': '1.1', 'signMethod': 'md5', 'sign': '', 'enableVerification': False}`, "firmware"))
	f.Add(form(`{"name":{"defaultValue":"fw"},"version":"1.2","enableVerification":true}`, "firmware"))
	f.Add(form(`{'name': None, 'version': True}`, "x"))
	f.Add(form("", "file without metadata"))
	whole := form(`{"name":{"defaultValue":"fw"},"version":"1.3"}`, "truncated")
	f.Add(whole[:len(whole)-len("--"+boundary+"--\r\n")])
	f.Fuzz(func(t *testing.T, body []byte) {
		w := s.signed("ota-firmwares", "create", url.Values{"productKey": {s.product}}, "multipart/form-data; boundary="+boundary, body, false)
		checkEnvelope(t, "create firmware", w)
	})
}

// FuzzEnOSToken: the token service's body (appKey, encryption, timestamp as
// a number or a string, accessToken). The answer is always the token
// envelope; only a request proving the app secret gets a token.
func FuzzEnOSToken(f *testing.F) {
	s := newEnOSFuzzServer(f)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	f.Add(false, []byte(`{"appKey":"`+s.ak+`","encryption":"`+enos.Encryption(s.ak, ts, s.sk)+`","timestamp":`+ts+`}`))
	f.Add(true, []byte(`{"appKey":"`+s.ak+`","encryption":"`+enos.Encryption(s.ak, ts, s.sk)+`","timestamp":"`+ts+`","accessToken":"`+s.token+`"}`))
	f.Add(false, []byte(`{"appKey":"`+s.ak+`","encryption":"00","timestamp":1e400}`))
	f.Add(false, []byte(`{"appKey":1}`))
	f.Add(true, []byte(``))
	f.Fuzz(func(t *testing.T, refresh bool, body []byte) {
		op := "get"
		if refresh {
			op = "refresh"
		}
		w := s.do("POST", "/apim-token-service/v2.0/token/"+op, "", "application/json", body)
		var env struct {
			Status *int
			Msg    string
			Data   *struct{ AccessToken string }
		}
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &env) != nil || env.Status == nil || env.Msg == "" {
			t.Fatalf("token/%s %q: HTTP %d, not the token envelope: %q", op, body, w.Code, w.Body)
		}
		if *env.Status == 1005 {
			t.Fatalf("token/%s %q: an internal error: %s", op, body, w.Body)
		}
		if *env.Status == 0 && !bytes.Contains(body, []byte(s.ak)) {
			t.Fatalf("token/%s %q: a token without the app key: %s", op, body, w.Body)
		}
	})
}

// FuzzEnOSDeviceHTTP: the device HTTP broker's login body and download
// query. Answers are the broker's {"code","message"} with a 2xx or 4xx,
// never a 5xx; a login succeeds only with the device's sign.
func FuzzEnOSDeviceHTTP(f *testing.F) {
	s := newEnOSFuzzServer(f)
	sign := enos.LoginSign(s.product, s.devKy, 300000, s.deviceSecret)
	f.Add(false, `{"signMethod":"sha256","lifetime":300000,"sign":"`+sign+`"}`)
	f.Add(false, `{"secureMode":"SHA256","lifetime":1,"sign":"x"}`)
	f.Add(false, `{"signMethod":"sha256","lifetime":99999999999999999999}`)
	f.Add(true, "sessionId=1.abc&fileUri=enos-connect%3A%2F%2Fx&category=ota")
	f.Add(true, "sessionId=99999999999999999999.x&fileUri=enos-connect://ota/p1&category=ota")
	f.Fuzz(func(t *testing.T, download bool, in string) {
		var w *httptest.ResponseRecorder
		if download {
			w = s.do("GET", enos.DeviceDownloadPath+s.product+"/"+s.devKy+"/file/download", in, "", nil)
		} else {
			w = s.do("POST", enos.DeviceAuthPath+s.product+"/"+s.devKy, "", "application/json", []byte(in))
		}
		if w.Code >= 500 {
			t.Fatalf("%q: HTTP %d for client input: %s", in, w.Code, w.Body)
		}
		if w.Code >= 300 || !download {
			var a struct {
				Code    *int
				Message string
			}
			if json.Unmarshal(w.Body.Bytes(), &a) != nil || a.Code == nil || a.Message == "" {
				t.Fatalf("%q: HTTP %d, not the broker's answer: %q", in, w.Code, w.Body)
			}
			// The sign's hex is accepted in either case (the SDKs differ).
			if !download && w.Code == 200 && !bytes.Contains(bytes.ToLower([]byte(in)), []byte(sign)) {
				t.Fatalf("login %q succeeded without the device's sign", in)
			}
		}
	})
}
