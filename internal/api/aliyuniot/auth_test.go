package aliyuniot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	teaerr "github.com/alibabacloud-go/tea/tea"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/updraft-ota/updraft/internal/api/aliyuniot"
)

// teaCode is the error code the Tea SDK raised (it raises 4xx answers).
func teaCode(t *testing.T, err error) string {
	t.Helper()
	var se *teaerr.SDKError
	if !errors.As(err, &se) || se.Code == nil || se.StatusCode == nil || *se.StatusCode/100 != 4 {
		t.Fatalf("the Tea SDK returned %T %v, want a 4xx SDKError with a code", err, err)
	}
	return *se.Code
}

// legacyCode is the error code the legacy SDK raised as SDK.ServerError.
func legacyCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("the legacy SDK returned %T %v, want a ServerError", err, err)
	}
	return se.ErrorCode(), se.HttpStatus()
}

// TestWrongSecret: every signing mode refuses a wrong secret with
// SignatureDoesNotMatch and an unknown key with InvalidAccessKeyId.NotFound.
func TestWrongSecret(t *testing.T) {
	e := newEnv(t)
	_, err := e.legacy(e.ak, e.sk+"x").ListOTAFirmware(at(e, iot.CreateListOTAFirmwareRequest()))
	if code, status := legacyCode(t, err); code != "SignatureDoesNotMatch" || status != http.StatusBadRequest {
		t.Fatalf("legacy, wrong secret: %s %d", code, status)
	}
	_, err = e.legacy("nokey", e.sk).ListOTAFirmware(at(e, iot.CreateListOTAFirmwareRequest()))
	if code, status := legacyCode(t, err); code != "InvalidAccessKeyId.NotFound" || status != http.StatusNotFound {
		t.Fatalf("legacy, unknown key: %s %d", code, status)
	}
	for _, alg := range []string{"", "v2"} {
		_, err := e.tea(alg, e.ak, e.sk+"x").call("POST", "ListOTAFirmware", nil)
		if code := teaCode(t, err); code != "SignatureDoesNotMatch" {
			t.Fatalf("tea(%s), wrong secret: %s", alg, code)
		}
	}
}

// recordingProxy forwards to the server and keeps the last request, so a
// test can send it again byte for byte.
type recordingProxy struct {
	*httptest.Server
	method, url string
	header      http.Header
	body        []byte
}

func newRecordingProxy(t *testing.T, target string) *recordingProxy {
	u, _ := url.Parse(target)
	rp := &recordingProxy{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	rp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rp.method, rp.url, rp.header, rp.body = r.Method, target+r.URL.RequestURI(), r.Header.Clone(), body
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rp.Close)
	return rp
}

// replay sends the recorded request again with its original Host.
func (rp *recordingProxy) replay(t *testing.T, host string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(rp.method, rp.url, bytes.NewReader(rp.body))
	req.Header = rp.header.Clone()
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestReplayedNonce: a request sent twice is refused the second time with
// SignatureNonceUsed (RPC v1 from the legacy SDK, ACS3 from Tea), also by a
// second server over the same database (replicas, restarts).
func TestReplayedNonce(t *testing.T) {
	e := newEnv(t)
	for _, sdk := range []string{"legacy", "tea-acs3", "tea-v2"} {
		t.Run(sdk, func(t *testing.T) {
			rp := newRecordingProxy(t, "http://"+e.host)
			pu, _ := url.Parse(rp.URL)
			host := e.host
			e.host = pu.Host
			switch sdk {
			case "legacy":
				if r, err := e.legacy(e.ak, e.sk).ListOTAFirmware(at(e, iot.CreateListOTAFirmwareRequest())); err != nil || !r.Success {
					t.Fatalf("first request: %v %+v", err, r)
				}
			case "tea-acs3":
				e.tea("", e.ak, e.sk).mustCall("ListOTAFirmware", nil)
			case "tea-v2":
				e.tea("v2", e.ak, e.sk).mustCall("ListOTAFirmware", nil)
			}
			e.host = host
			status, body := rp.replay(t, pu.Host)
			if status != http.StatusBadRequest || body["Code"] != "SignatureNonceUsed" || body["RequestId"] == "" || body["Message"] == "" {
				t.Fatalf("replay: %d %v", status, body)
			}
			// A second dialect over the same service (another replica's
			// view of the same store) refuses it too.
			other := httptest.NewServer(newMux(aliyuniot.New(e.svc, aliyuniot.Options{})))
			defer other.Close()
			rp.url = other.URL + rp.url[len("http://"+e.host):]
			if status, body := rp.replay(t, pu.Host); status != http.StatusBadRequest || body["Code"] != "SignatureNonceUsed" {
				t.Fatalf("replay on another replica: %d %v", status, body)
			}
		})
	}
}

func newMux(a *aliyuniot.API) *http.ServeMux {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// TestTimestampWindow: ±15 min is accepted, just outside is refused with
// InvalidTimeStamp.Expired, for RPC v1 and ACS3.
func TestTimestampWindow(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{{14*time.Minute + 50*time.Second, true}, {-14*time.Minute - 50*time.Second, true}, {15*time.Minute + 10*time.Second, false}, {-15*time.Minute - 10*time.Second, false}} {
		skewed := httptest.NewServer(newMux(aliyuniot.New(e.svc, aliyuniot.Options{Now: func() time.Time { return time.Now().Add(tc.skew) }})))
		u, _ := url.Parse(skewed.URL)
		host := e.host
		e.host = u.Host
		r, err := e.legacy(e.ak, e.sk).ListOTAFirmware(at(e, iot.CreateListOTAFirmwareRequest()))
		_, terr := e.tea("", e.ak, e.sk).call("POST", "ListOTAFirmware", nil)
		e.host = host
		skewed.Close()
		if tc.ok {
			if err != nil || !r.Success || terr != nil {
				t.Fatalf("skew %v: %v %v %+v", tc.skew, err, terr, r)
			}
			continue
		}
		if code, status := legacyCode(t, err); code != "InvalidTimeStamp.Expired" || status != http.StatusBadRequest {
			t.Fatalf("legacy, skew %v: %s %d", tc.skew, code, status)
		}
		if code := teaCode(t, terr); code != "InvalidTimeStamp.Expired" {
			t.Fatalf("tea, skew %v: %s", tc.skew, code)
		}
	}
}
