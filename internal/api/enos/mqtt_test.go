package enos_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
)

// recLink records what the dialect publishes.
type recLink struct{ topics, payloads []string }

func (l *recLink) Publish(_ context.Context, topic string, payload []byte) error {
	l.topics, l.payloads = append(l.topics, topic), append(l.payloads, string(payload))
	return nil
}
func (l *recLink) Tell(ctx context.Context, topic string, payload []byte) error {
	return l.Publish(ctx, topic, payload)
}
func (*recLink) Online(context.Context, ota.DeviceRef, bool) error { return nil }

// The service's answers to a progress report become EnOS's reply codes: no
// task 764, a task not sent yet 765, a negative step is a failure with its
// reason; a store outage is no reply and no acknowledgement (the device
// resends).
func TestProgressReplyCodes(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("pk", "dk", "secret")
	f.SetProtocol("pk", ota.ProtocolEnOS)
	d := enos.NewDevices(f)
	sess := &mqtt.Session{Device: ref}
	send := func(step string) (*recLink, error) {
		l := &recLink{}
		err := d.Handle(context.Background(), mqtt.Message{Topic: enos.Topic("pk", "dk", enos.OpProgress), Session: sess,
			Payload: []byte(`{"id":"7","version":"1.0","method":"ota.device.progress","params":{"step":"` + step + `","desc":"d"}}`)}, l)
		return l, err
	}
	code := func(l *recLink) int {
		t.Helper()
		if len(l.topics) != 1 || l.topics[0] != enos.Topic("pk", "dk", enos.OpProgress)+"_reply" {
			t.Fatalf("replies: %v", l.topics)
		}
		var r struct {
			ID   string
			Code int
		}
		if err := json.Unmarshal([]byte(l.payloads[0]), &r); err != nil || r.ID != "7" {
			t.Fatalf("reply %s: %v", l.payloads[0], err)
		}
		return r.Code
	}
	for _, tc := range []struct {
		fail error
		want int
	}{
		{ota.Errorf(ota.CodeNotFound, "no task"), 764},
		{ota.Errorf(ota.CodeConflict, "task is waiting"), 765},
		{nil, 200},
	} {
		if tc.fail != nil {
			f.FailNext(tc.fail)
		}
		l, err := send("40")
		if err != nil || code(l) != tc.want {
			t.Fatalf("after %v: err %v, reply %v; want %d", tc.fail, err, l.payloads, tc.want)
		}
	}
	if l, _ := send("-3"); code(l) != 200 {
		t.Fatalf("failure report: %v", l.payloads)
	}
	if p := f.Progress(); len(p) != 2 || p[1].Progress.Step != -3 || p[1].Progress.Reason != ota.ReasonVerifyFailed {
		t.Fatalf("progress calls = %+v", p)
	}
	for _, bad := range []string{"101", "abc", ""} {
		if l, _ := send(bad); code(l) != 400 {
			t.Fatalf("step %q: %v, want 400", bad, l.payloads)
		}
	}
	f.FailNext(ota.Errorf(ota.CodeUnavailable, "store down"))
	if l, err := send("40"); err == nil || len(l.topics) != 0 {
		t.Fatalf("store down: err %v, replies %v; want an error and no reply", err, l.topics)
	}
}
