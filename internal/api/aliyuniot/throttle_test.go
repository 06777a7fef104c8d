package aliyuniot_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/updraft-ota/updraft/internal/api/aliyuniot"
)

// TestThrottle: a per-operation QPS limit (Options.QPS) admits exactly its
// figure per second per tenant and Action, answers the next call with
// Throttling in the gateway envelope, leaves other operations alone, and
// admits again in the next second.
func TestThrottle(t *testing.T) {
	e := newEnv(t)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	srv := httptest.NewServer(newMux(aliyuniot.New(e.svc, aliyuniot.Options{
		QPS: map[string]int{"ListOTAFirmware": 2},
		Now: func() time.Time { return time.Unix(0, now.Load()) },
	})))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := e.host
	e.host = u.Host
	defer func() { e.host = host }()
	l := e.legacy(e.ak, e.sk)
	list := func() error {
		r, err := l.ListOTAFirmware(at(e, iot.CreateListOTAFirmwareRequest()))
		if err == nil && !r.Success {
			t.Fatalf("ListOTAFirmware: %+v", r)
		}
		return err
	}
	// Inside one second of the server's clock: 2 pass, the third is refused.
	for i := range 2 {
		if err := list(); err != nil {
			t.Fatalf("call %d within the limit: %v", i+1, err)
		}
	}
	if code, status := legacyCode(t, list()); code != "Throttling" || status != http.StatusBadRequest { // Alibaba answers Throttling with 400
		t.Fatalf("third call: %s %d, want Throttling", code, status)
	}
	// Another Action has no limit.
	if r, err := l.ListOTAJobByFirmware(func() *iot.ListOTAJobByFirmwareRequest {
		r := at(e, iot.CreateListOTAJobByFirmwareRequest())
		r.FirmwareId = "none"
		return r
	}()); err != nil {
		t.Fatalf("another Action was throttled: %v %+v", err, r)
	}
	now.Add(int64(time.Second))
	if err := list(); err != nil {
		t.Fatalf("next second: %v", err)
	}
}
