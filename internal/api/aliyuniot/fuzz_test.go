package aliyuniot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"mime/multipart"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/aliyuniot"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// fuzzServer is a real server (rate limits off) and its bootstrap key.
type fuzzServer struct {
	srv    *server.Server
	ak, sk string
	n      int
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	srv := server.StartForTest(f, func(c *config.Config) { c.Unthrottle(); c.LogLevel = "error" })
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	if _, err := cl.CreateProduct(context.Background(), client.ProductCreate{Key: "ap", Name: "ap", Protocol: "alibaba"}); err != nil {
		f.Fatal(err)
	}
	return &fuzzServer{srv: srv, ak: creds.AccessKeyID, sk: creds.SecretAccessKey}
}

// call sends action with params (business parameters; the signature's are
// set here), signed with RPC v1 as the legacy SDK signs.
func (s *fuzzServer) call(action string, params url.Values) *httptest.ResponseRecorder {
	s.n++
	for k, v := range map[string]string{"Action": action, "Version": aliyuniot.APIVersion, "Format": "JSON",
		"AccessKeyId": s.ak, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
		"SignatureNonce": "fuzz-" + strconv.Itoa(s.n) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36), "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05Z")} {
		params.Set(k, v)
	}
	aliyuniot.SignRPCForTest("POST", params, s.sk)
	r := httptest.NewRequest("POST", "/", nil)
	r.URL.RawQuery = params.Encode()
	w := httptest.NewRecorder()
	s.srv.Handler().ServeHTTP(w, r)
	return w
}

var fuzzActions = []string{"GenerateOTAUploadURL", "CreateOTAFirmware", "QueryOTAFirmware", "ListOTAFirmware", "DeleteOTAFirmware", "ModifyOTAFirmware",
	"CreateOTAStaticUpgradeJob", "CreateOTADynamicUpgradeJob", "QueryOTAJob", "ListOTAJobByFirmware", "ListOTATaskByJob", "CancelOTATaskByJob",
	"ReupgradeOTATask", "ConfirmOTATask", "CancelOTAStrategyByJob", "ListOTAUnfinishedTaskByDevice", "NoSuchAction"}

// FuzzAlibabaAPI: the RPC actions' parameters (typed values, 1-based lists,
// tags, pages) signed with RPC v1 like the legacy SDK, on a real server
// (rate limits off). Every answer is Alibaba's envelope: 200 with
// Success true, or an error with a Code and a message — a business error
// in the 200 envelope or a gateway error in the 4xx one — never a 5xx or
// SystemException; a correctly signed request never fails its signature.
func FuzzAlibabaAPI(f *testing.F) {
	e := newFuzzServer(f)
	for _, s := range []struct {
		action uint8
		query  string
	}{
		{0, ""},
		{1, "FirmwareName=fw&DestVersion=1.1&ProductKey=ap&FirmwareUrl=https%3A%2F%2Fx%2Fy&FirmwareSign=00&NeedToVerify=false"},
		{3, "CurrentPage=1&PageSize=10"},
		{3, "CurrentPage=9223372036854775807&PageSize=10"},
		{6, "FirmwareId=f1&TargetSelection=SPECIFIC&SrcVersion.1=1.0&TargetDeviceName.1=d1&Tag.1.Key=k&Tag.1.Value=v"},
		{7, "FirmwareId=f1&SrcVersion.2=1.0&RetryCount=-1&TimeoutInMinutes=abc"},
		{10, "JobId=j1&TaskStatus=FAILED&PageSize=1000"},
		{12, "JobId=j1&TaskId.1=t1&TaskId.3=t3"},
		{16, ""},
	} {
		f.Add(s.action, s.query)
	}
	f.Fuzz(func(t *testing.T, action uint8, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			params = url.Values{}
		}
		w := e.call(fuzzActions[int(action)%len(fuzzActions)], params)
		var out struct {
			Success      *bool
			Code         string
			Message      string
			ErrorMessage string
			RequestId    string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.RequestId == "" {
			t.Fatalf("%s: HTTP %d, not Alibaba's envelope: %q", query, w.Code, w.Body)
		}
		switch {
		case w.Code >= 500 || out.Code == "iot.system.SystemException":
			t.Fatalf("%s: a server error for client input: HTTP %d %s", query, w.Code, w.Body)
		case out.Code == "SignatureDoesNotMatch" || out.Code == "IncompleteSignature" || out.Code == "SignatureNonceUsed":
			t.Fatalf("%s: a request signed as the SDK signs it was refused: %s", query, w.Body)
		case w.Code == 200 && out.Success != nil && *out.Success:
		case out.Code == "" || out.Message+out.ErrorMessage == "":
			t.Fatalf("%s: HTTP %d, an error without code or message: %s", query, w.Code, w.Body)
		}
	})
}

// FuzzOSSUpload: the OSS-style form upload (multipart intake). Whatever the
// body, the answer is 204 or an OSS XML error (<Error><Code>…), never a 5xx,
// and a refused upload leaves no object.
func FuzzOSSUpload(f *testing.F) {
	e := newFuzzServer(f)
	var gen struct{ Data map[string]any }
	if w := e.call("GenerateOTAUploadURL", url.Values{}); json.Unmarshal(w.Body.Bytes(), &gen) != nil || gen.Data == nil {
		f.Fatalf("GenerateOTAUploadURL: %d %s", w.Code, w.Body)
	}
	d := gen.Data
	host := str(d["Host"])
	u, _ := url.Parse(host)
	const boundary = "fuzzboundary"
	form := func(fields [][2]string, file string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.SetBoundary(boundary)
		for _, kv := range fields {
			_ = mw.WriteField(kv[0], kv[1])
		}
		if file != "" {
			fw, _ := mw.CreateFormFile("file", "fw.bin")
			_, _ = fw.Write([]byte(file))
		}
		_ = mw.Close()
		return b.Bytes()
	}
	good := [][2]string{{"key", str(d["Key"])}, {"OSSAccessKeyId", str(d["OSSAccessKeyId"])}, {"policy", str(d["Policy"])}, {"Signature", str(d["Signature"])}, {"success_action_status", "204"}}
	f.Add(form(good, "firmware"))
	f.Add(form(good[:3], "firmware"))
	f.Add(form(append([][2]string{{"key", "../../etc/passwd"}}, good[1:]...), "x"))
	f.Add(form(good, ""))
	whole := form(good, "truncated")
	f.Add(whole[:len(whole)-len("--"+boundary+"--\r\n")])
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", u.Path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		w := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(w, r)
		if w.Code == 204 {
			return
		}
		var oe struct {
			XMLName xml.Name `xml:"Error"`
			Code    string   `xml:"Code"`
			Message string   `xml:"Message"`
		}
		if w.Code >= 500 || xml.Unmarshal(w.Body.Bytes(), &oe) != nil || oe.Code == "" || oe.Message == "" {
			t.Fatalf("HTTP %d, not an OSS error: %q", w.Code, w.Body)
		}
		if strings.Contains(oe.Message, "internal") {
			t.Fatalf("HTTP %d: %s", w.Code, w.Body)
		}
	})
}
