package deviceproto

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

func TestNoticeToWire(t *testing.T) {
	exp := time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	n := ota.Notice{TaskID: 4, JobID: "j", TenantID: "secret-tenant", ProductKey: "p", DeviceName: "d", Module: "",
		Version: "2", FromVersion: "1", URL: "u", URLExpiresAt: exp, FileName: "f.bin", Size: 9, SHA256: "s", MD5: "m",
		Sign: "s", CustomInfo: "ci", Differential: true, Tags: []ota.Tag{{Key: "a", Value: "b"}}, ExtInfo: "x", NeedConfirm: true}
	w := NoticeToWire(n)
	want := wire.Notice{TaskID: 4, JobID: "j", Module: "default", Version: "2", FromVersion: "1", URL: "u", URLExpiresAt: exp.UTC(),
		FileName: "f.bin", Size: 9, SHA256: "s", MD5: "m", SignMethod: "SHA256", Sign: "s", CustomInfo: "ci", Differential: true,
		ExtInfo: "x", Tags: []wire.Tag{{Key: "a", Value: "b"}}, NeedConfirm: true}
	a, _ := json.Marshal(w)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("got  %s\nwant %s", a, b)
	}
	// Internal fields never reach devices.
	if contains(a, "secret-tenant") {
		t.Fatal("tenant id leaked into the notice")
	}
	if w := NoticeToWire(ota.Notice{}); !w.URLExpiresAt.IsZero() || contains(mustJSON(w), "url_expires_at") {
		t.Fatal("a zero expiry is sent")
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestDecodeProgress(t *testing.T) {
	p, err := DecodeProgress([]byte(`{"task_id":3,"step":-4,"desc":"flash failed"}`))
	if err != nil || p.TaskID != 3 || p.Module != "default" || p.Reason != ota.ReasonInstallFailed || p.Detail != "flash failed" {
		t.Fatalf("%+v %v", p, err)
	}
	p, err = DecodeProgress([]byte(`{"step":100,"module":"modem"}`))
	if err != nil || p.Reason != "" || p.Module != "modem" {
		t.Fatalf("%+v %v", p, err)
	}
	for _, bad := range []string{`{"step":101}`, `{"task_id":-1}`, `{"module":"a b"}`, `[]`, `{`} {
		if _, err := DecodeProgress([]byte(bad)); ota.ErrorCode(err) != ota.CodeInvalid {
			t.Errorf("DecodeProgress(%s) = %v", bad, err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "k")
	now := time.Now()
	good := wire.Credentials{Product: "p", Device: "d", TsMillis: now.UnixMilli(), Sign: wire.Sign("k", "p", "d", now.UnixMilli())}
	if dev, err := Authenticate(context.Background(), f, good, now, 0); err != nil || dev.Name != "d" {
		t.Fatalf("%+v %v", dev, err)
	}
	unknown := good
	unknown.Device = "x"
	bad := good
	bad.Sign = "00"
	e1, e2 := authErr(f, unknown, now), authErr(f, bad, now)
	if ota.ErrorCode(e1) != ota.CodeUnauthenticated || ota.ErrorMessage(e1) != ota.ErrorMessage(e2) {
		t.Fatalf("unknown device %v vs bad sign %v: must look alike", e1, e2)
	}
	// Default skew: 5 minutes.
	if err := authErr(f, good, now.Add(6*time.Minute)); ota.ErrorCode(err) != ota.CodeUnauthenticated {
		t.Fatalf("stale credential: %v", err)
	}
}

func authErr(f Devices, c wire.Credentials, now time.Time) error {
	_, err := Authenticate(context.Background(), f, c, now, 0)
	return err
}

func TestHandleCheckSeparatesTransientErrors(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "k")
	r, err := HandleCheck(context.Background(), f, ref, []byte(`{"module":"bad module"}`))
	if err != nil || r.Error == "" {
		t.Fatalf("bad module: %+v %v", r, err)
	}
	r, err = HandleCheck(context.Background(), f, ref, nil)
	if err != nil || r.Notice != nil || r.Error != "" {
		t.Fatalf("empty check: %+v %v", r, err)
	}
	down := failing{f}
	if _, err := HandleCheck(context.Background(), down, ref, nil); !Transient(err) {
		t.Fatalf("store down: %v, want a transient error", err)
	}
}

type failing struct{ Devices }

func (failing) NextNotice(context.Context, ota.DeviceRef, string) (*ota.Notice, error) {
	return nil, &ota.Error{Code: ota.CodeUnavailable, Message: "db down", Err: errors.New("dial")}
}
