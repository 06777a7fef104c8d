package huaweiiotda

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// A marker past every int64 sub-task id pages past the end; it used to read
// as 0 and restart from the first sub-task.
func TestParseTaskMarker(t *testing.T) {
	for _, id := range []int64{1, 42, math.MaxInt64} {
		if got := parseTaskMarker(taskMarker(id)); got != id {
			t.Errorf("parseTaskMarker(taskMarker(%d)) = %d", id, got)
		}
	}
	if got := parseTaskMarker(""); got != 0 {
		t.Errorf("parseTaskMarker(\"\") = %d, want 0 (from the start)", got)
	}
	for _, m := range []string{"000000008000000000000000", "fffffffffffffffffffffffe"} {
		if got := parseTaskMarker(m); got != math.MaxInt64 {
			t.Errorf("parseTaskMarker(%s) = %d, want MaxInt64 (past every sub-task)", m, got)
		}
	}
}

// retry_interval converts without wrapping, and the range rule is ota's.
func TestRetryIntervalConversion(t *testing.T) {
	if got := minutesToDuration(30); got != 30*time.Minute {
		t.Errorf("30 minutes = %v", got)
	}
	for _, m := range []int32{math.MaxInt32, math.MinInt32, 1441, -1} {
		j := ota.Job{Name: "n", PackageID: "p", Target: ota.Target{Devices: []string{"d1"}}, Retry: ota.Retry{Count: 1, Interval: minutesToDuration(m)}}
		j.Normalize()
		if err := j.Validate(time.Now()); ota.ErrorCode(err) != ota.CodeInvalid || ota.ErrorField(err) != "retry.interval_seconds" {
			t.Errorf("retry_interval %d minutes (%v): Validate = %v, want the retry interval refused", m, j.Retry.Interval, err)
		}
	}
}

// UNSIGNED-PAYLOAD leaves the body unprotected; Content-Type is not signed, so
// claiming a non-JSON type must not make a body acceptable.
func TestUnsignedPayloadRefusedWithBody(t *testing.T) {
	body := []byte(`{"version":"V6.6"}`)
	for _, ct := range []string{"text/plain", "application/octet-stream", "", "application/json"} {
		r := httptest.NewRequest(http.MethodPost, "/v5/iot/p/ota-upgrades/packages", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", ct)
		r.Header.Set(headerContentSha256, unsignedPayload)
		if _, err := payloadHash(r, body); ota.ErrorCode(err) != ota.CodeUnauthenticated {
			t.Errorf("Content-Type %q with a body: err = %v, want unauthenticated", ct, err)
		}
	}
	// An empty non-JSON request may still go unsigned, as the SDK sends it.
	r := httptest.NewRequest(http.MethodGet, "/v5/iot/p/ota-upgrades/packages", nil)
	r.Header.Set("Content-Type", "multipart/form-data")
	r.Header.Set(headerContentSha256, unsignedPayload)
	if h, err := payloadHash(r, nil); err != nil || h != unsignedPayload {
		t.Errorf("empty multipart request: %q %v", h, err)
	}
}

type fakeMessage struct{ payload []byte }

func (fakeMessage) Duplicate() bool   { return false }
func (fakeMessage) Qos() byte         { return 1 }
func (fakeMessage) Retained() bool    { return false }
func (fakeMessage) Topic() string     { return DownTopic("p_d") }
func (fakeMessage) MessageID() uint16 { return 1 }
func (m fakeMessage) Payload() []byte { return m.payload }
func (fakeMessage) Ack()              {}

// A notice that arrives once Close has begun starts no upgrade (Close marks
// the device closed before it waits, so Add never races Wait).
func TestSimDeviceNoUpgradeAfterClose(t *testing.T) {
	var downloads atomic.Int32
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		_, _ = w.Write([]byte("firmware"))
	}))
	defer files.Close()
	paras, _ := json.Marshal(UpgradeNotice{Version: "V2", URL: files.URL, FileSize: 8})
	msg, _ := json.Marshal(EventMessage{Services: []Event{{ServiceID: OTAServiceID, EventType: EventFirmware, Paras: paras}}})

	d := &SimDevice{DeviceID: "p_d", HTTP: files.Client()}
	d.Close()
	d.onMessage(nil, fakeMessage{msg})
	d.upgrades.Wait() // returns once any upgrade that did start has finished
	if n := downloads.Load(); n != 0 {
		t.Errorf("a closed device downloaded %d times", n)
	}
	if fw, _ := d.Versions(); fw != "" {
		t.Errorf("a closed device upgraded to %q", fw)
	}
}
