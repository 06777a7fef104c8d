package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/api/enos"
	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// fuzzDialect is one device dialect over a real server's service, with the
// one device of its product (device "d1", secret fuzzSecret) and a valid
// CONNECT of that device.
type fuzzDialect struct {
	d       mqtt.Dialect
	product string
	valid   mqtt.Connect
	sess    *mqtt.Session
	up      []string // the device's up topics
}

const fuzzSecret = "fuzz-secret-0123456789"

func newFuzzDialects(f *testing.F) []*fuzzDialect {
	f.Helper()
	srv := server.StartForTest(f, func(c *config.Config) { c.LogLevel = "error" })
	svc := srv.Service()
	creds, _ := srv.Credentials()
	cl := client.New(srv.URL(), creds.AccessKeyID, creds.SecretAccessKey)
	ctx := context.Background()
	for _, p := range []client.ProductCreate{{Key: "nat", Name: "n"}, {Key: "hw", Name: "h", Protocol: "huawei"}, {Key: "ali", Name: "a", Protocol: "alibaba"}, {Key: "en", Name: "e", Protocol: "enos"}} {
		if _, err := cl.CreateProduct(ctx, p); err != nil {
			f.Fatal(err)
		}
		if _, err := cl.CreateDevice(ctx, p.Key, client.DeviceCreate{Name: "d1", Secret: fuzzSecret}); err != nil {
			f.Fatal(err)
		}
	}
	now := time.Now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	hwClient := huaweiiotda.ClientID("hw_d1", false, now)
	alinkPass, _ := mqtt.AlinkSign("hmacsha256", fuzzSecret, mqtt.AlinkSignContent("c1", "d1", "ali", ts))
	enosClient := "c1|securemode=2,signmethod=sha256,timestamp=" + ts + "|"
	enosPass, _ := enos.Password("sha256", "c1", "d1", "en", ts, fuzzSecret)
	ds := []*fuzzDialect{
		{d: mqtt.NewNative(svc, 0, nil), product: "nat",
			valid: mqtt.Connect{ClientID: wire.ClientID("nat", "d1"), Username: wire.Username("nat", "d1", now), Password: []byte(wire.Sign(fuzzSecret, "nat", "d1", now.UnixMilli()))},
			up:    []string{wire.Topic("nat", "d1", wire.TopicVersion), wire.Topic("nat", "d1", wire.TopicProgress), wire.Topic("nat", "d1", wire.TopicCheck), wire.Topic("nat", "d1", wire.TopicStatus)}},
		{d: huaweiiotda.NewDevices(svc, nil), product: "hw",
			valid: mqtt.Connect{ClientID: hwClient, Username: "hw_d1", Password: []byte(huaweiiotda.Password(fuzzSecret, hwClient[len(hwClient)-10:]))},
			up:    []string{huaweiiotda.UpTopic("hw_d1")}},
		{d: mqtt.NewAlink(svc, nil), product: "ali",
			valid: mqtt.Connect{ClientID: mqtt.AlinkClientID("c1", 3, "hmacsha256", ts), Username: "d1&ali", Password: []byte(alinkPass)},
			up:    []string{mqtt.AlinkInformTopic("ali", "d1"), mqtt.AlinkProgressTopic("ali", "d1"), mqtt.AlinkRequestTopic("ali", "d1"), mqtt.AlinkGetTopic("ali", "d1")}},
		{d: enos.NewDevices(svc), product: "en",
			valid: mqtt.Connect{ClientID: enosClient, Username: "d1&en", Password: []byte(enosPass)},
			up:    []string{enos.Topic("en", "d1", enos.OpInform), enos.Topic("en", "d1", enos.OpProgress), enos.Topic("en", "d1", enos.OpGetVersion), enos.Topic("en", "d1", enos.OpUpgrade) + "_reply"}},
	}
	for _, d := range ds {
		s, err := d.d.Authenticate(ctx, d.valid)
		if err != nil {
			f.Fatalf("%s: the valid CONNECT is refused: %v", d.d.Name(), err)
		}
		d.sess = s
	}
	return ds
}

// checkSession holds a granted session to its device: the one device of the
// dialect's product, and topic filters inside that device's own topics.
func checkSession(t *testing.T, d *fuzzDialect, c mqtt.Connect, s *mqtt.Session) {
	t.Helper()
	if s.Device != (ota.DeviceRef{ProductKey: d.product, Name: "d1"}) {
		t.Fatalf("%s: CONNECT %+v granted a session as %+v", d.d.Name(), c, s.Device)
	}
	for _, filter := range append(append([]string{}, s.Publish...), s.Subscribe...) {
		if filter == "#" || strings.HasPrefix(filter, "+") || !strings.Contains(filter, "d1") {
			t.Fatalf("%s: CONNECT %+v granted filter %q beyond the device's topics", d.d.Name(), c, filter)
		}
	}
}

// FuzzDeviceConnect: the CONNECT credentials of every device dialect
// (native "{p}&{d}|{ms}" + HMAC, Huawei "{device_id}_0_{t}_{YYYYMMDDHH}",
// Alink "{id}|securemode=…|" + "{dn}&{pk}", EnOS's signed client id). A
// session is granted only to the dialect's real device (a forgery would need
// its secret), confined to its own topics; whatever the input, no panic.
func FuzzDeviceConnect(f *testing.F) {
	ds := newFuzzDialects(f)
	for i, d := range ds {
		f.Add(uint8(i), d.valid.ClientID, d.valid.Username, d.valid.Password)
		f.Add(uint8(i), d.valid.ClientID, d.valid.Username, []byte("wrong"))
		f.Add(uint8(i), d.valid.ClientID+"|", "", []byte{})
	}
	f.Add(uint8(0), "nat.d1", "nat&d1|99999999999999999999", []byte("x"))
	f.Add(uint8(1), "hw_d1_0_9_2025010100", "hw_d1", []byte("x"))
	f.Add(uint8(2), "c1|securemode=-2,signmethod=hmacsha256|", "d1&ali", []byte("x"))
	f.Add(uint8(3), "c1|securemode=2,signmethod=md4,timestamp=1|", "d1&en", []byte("x"))
	f.Fuzz(func(t *testing.T, which uint8, clientID, username string, password []byte) {
		d := ds[int(which)%len(ds)]
		c := mqtt.Connect{ClientID: clientID, Username: username, Password: password, Remote: "192.0.2.1:1"}
		s, err := d.d.Authenticate(context.Background(), c)
		if err != nil {
			if s != nil {
				t.Fatalf("%s: refused (%v) but returned a session", d.d.Name(), err)
			}
			if c := ota.ErrorCode(err); !errors.Is(err, mqtt.ErrNotMine) && c == ota.CodeUnavailable {
				t.Fatalf("%s: a CONNECT's credentials made the store look down: %v", d.d.Name(), err)
			}
			return
		}
		checkSession(t, d, c, s)
	})
}

// recordLink records what a dialect sends while handling a message.
type recordLink struct{ payloads [][]byte }

func (l *recordLink) Publish(_ context.Context, _ string, payload []byte) error {
	l.payloads = append(l.payloads, payload)
	return nil
}
func (l *recordLink) Tell(ctx context.Context, topic string, payload []byte) error {
	return l.Publish(ctx, topic, payload)
}
func (*recordLink) Online(context.Context, ota.DeviceRef, bool) error { return nil }

// FuzzDevicePayloads: every device dialect's up messages (native JSON
// reports, Huawei $ota events, Alink inform/progress/get, EnOS
// inform/progress/getversion) from the device's own session. A malformed
// message is dropped with a clean error, never a transient one (which would
// leave it unacknowledged for the device to resend forever); every reply
// the dialect sends is JSON.
func FuzzDevicePayloads(f *testing.F) {
	ds := newFuzzDialects(f)
	seeds := map[int][]string{
		0: {`{"module":"default","version":"1.0.1"}`, `{"task_id":1,"step":50,"desc":"downloading"}`, `{"module":"default"}`, `{"online":true}`, `{"step":101}`, `{"task_id":-1,"step":-3}`},
		1: {`{"services":[{"service_id":"$ota","event_type":"version_report","event_time":"20250301T120000Z","paras":{"fw_version":"1.0","sw_version":"1.0"}}]}`,
			`{"services":[{"service_id":"$ota","event_type":"upgrade_progress_report","paras":{"result_code":0,"progress":50,"version":"1.1"}}]}`,
			`{"services":[{"service_id":"$ota","event_type":"firmware_upgrade_status_report","paras":{}}]}`, `{"services":null}`, `[]`},
		2: {`{"id":"1","params":{"version":"1.0","module":"default"}}`, `{"id":"2","params":{"step":"50","desc":"ok","module":"default"}}`,
			`{"id":"3","version":"1.0","params":{"module":"default"},"method":"thing.ota.firmware.get"}`, `{"id":{},"params":[]}`},
		3: {`{"id":"7","version":"1.0","method":"ota.device.inform","params":{"version":"1.0"}}`, `{"id":"7","method":"ota.device.progress","params":{"step":"40","desc":"d"}}`,
			`{"id":"8","method":"ota.device.getversion","params":{}}`, `{"id":"9","code":200,"data":{}}`, `{"id":7,"params":{"step":40}}`},
	}
	for i, d := range ds {
		for ti := range d.up {
			for _, p := range seeds[i] {
				f.Add(uint8(i), uint8(ti), []byte(p))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which, topic uint8, payload []byte) {
		d := ds[int(which)%len(ds)]
		l := &recordLink{}
		err := d.d.Handle(context.Background(), mqtt.Message{Topic: d.up[int(topic)%len(d.up)], Payload: payload, Session: d.sess}, l)
		if deviceproto.Transient(err) {
			t.Fatalf("%s on %s: payload %q: a transient error (%v): the message would never be acknowledged", d.d.Name(), d.up[int(topic)%len(d.up)], payload, err)
		}
		for _, p := range l.payloads {
			if !json.Valid(p) {
				t.Fatalf("%s: payload %q: the reply %q is not JSON", d.d.Name(), payload, p)
			}
		}
	})
}
