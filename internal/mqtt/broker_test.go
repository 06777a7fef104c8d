package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

const waitFor = 10 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startBroker(t *testing.T, f *deviceprototest.Fake) *Broker {
	t.Helper()
	b, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// device is a raw MQTT device client speaking the native protocol by hand.
type device struct {
	c   paho.Client
	mu  sync.Mutex
	got map[string][][]byte // topic → payloads received
}

func connectOpts(addr, clientID, user, pass string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetCleanSession(true).
		SetConnectTimeout(waitFor).SetWriteTimeout(waitFor)
}

func dialRaw(addr, clientID, user, pass string, onMessage ...paho.MessageHandler) (paho.Client, error) {
	o := connectOpts(addr, clientID, user, pass)
	if len(onMessage) > 0 {
		o.SetDefaultPublishHandler(onMessage[0])
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

func dial(t *testing.T, addr, product, name, secret string) *device {
	t.Helper()
	now := time.Now()
	d := &device{got: map[string][][]byte{}}
	// One handler for every message (paho would call a per-subscription
	// handler once per matching subscription).
	c, err := dialRaw(addr, wire.ClientID(product, name), wire.Username(product, name, now), wire.Sign(secret, product, name, now.UnixMilli()),
		func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.got[m.Topic()] = append(d.got[m.Topic()], m.Payload())
			d.mu.Unlock()
		})
	if err != nil {
		t.Fatalf("connect %s/%s: %v", product, name, err)
	}
	t.Cleanup(func() { c.Disconnect(0) })
	d.c = c
	return d
}

// connectRecorder connects a device with o, recording every message it
// receives; the token says whether the broker had a session for it.
func connectRecorder(t *testing.T, o *paho.ClientOptions) (*device, *paho.ConnectToken) {
	t.Helper()
	d := &device{got: map[string][][]byte{}}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		d.mu.Lock()
		d.got[m.Topic()] = append(d.got[m.Topic()], m.Payload())
		d.mu.Unlock()
	})
	d.c = paho.NewClient(o)
	tok := d.c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", o.ClientID, tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	return d, tok.(*paho.ConnectToken)
}

// subscribe returns the SUBACK return code.
func (d *device) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := d.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	res := tok.(*paho.SubscribeToken).Result() // one entry (keyed without any $share prefix)
	if len(res) != 1 {
		t.Fatalf("subscribe %s: result %v", filter, res)
	}
	for _, code := range res {
		return code
	}
	return 0
}

func (d *device) publish(t *testing.T, topic string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	tok := d.c.Publish(topic, 1, false, b)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (d *device) received(topic string) [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]byte(nil), d.got[topic]...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func notice(product, name string, task int64, version string) ota.Notice {
	return ota.Notice{TaskID: task, JobID: "job1", ProductKey: product, DeviceName: name, Module: ota.DefaultModule,
		Version: version, URL: "http://example/pkg", Size: 3, SHA256: "ab", SignMethod: ota.SignSHA256, Sign: "ab",
		Tags: []ota.Tag{{Key: "k", Value: "v"}}}
}

func TestAuthentication(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p1", "d1", "secret1")
	b := startBroker(t, f)
	addr := b.Addr().String()
	now := time.Now()
	user := wire.Username("p1", "d1", now)
	good := wire.Sign("secret1", "p1", "d1", now.UnixMilli())

	c, err := dialRaw(addr, "p1.d1", user, good)
	if err != nil {
		t.Fatalf("valid credentials refused: %v", err)
	}
	c.Disconnect(0)

	old := now.Add(-10 * time.Minute)
	for name, tc := range map[string]struct{ id, user, pass string }{
		"wrong secret":       {"p1.d1", user, wire.Sign("other", "p1", "d1", now.UnixMilli())},
		"stale timestamp":    {"p1.d1", wire.Username("p1", "d1", old), wire.Sign("secret1", "p1", "d1", old.UnixMilli())},
		"client id mismatch": {"p1.d2", user, good},
		"unknown device":     {"p1.nobody", wire.Username("p1", "nobody", now), wire.Sign("secret1", "p1", "nobody", now.UnixMilli())},
		"no credentials":     {"p1.d1", "", ""},
		"foreign scheme":     {"p1.d1", "p1.d1", good},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := dialRaw(addr, tc.id, tc.user, tc.pass)
			if err == nil {
				c.Disconnect(0)
				t.Fatal("connection accepted")
			}
		})
	}
	// The broker records presence asynchronously: wait for the one valid
	// connection to be recorded and its disconnect to follow.
	eventually(t, "d1 recorded offline after its one connection", func() bool {
		online, n := f.Online(ota.DeviceRef{ProductKey: "p1", Name: "d1"})
		return n == 1 && !online
	})
	if _, n := f.Online(ota.DeviceRef{ProductKey: "p1", Name: "d1"}); n != 1 {
		t.Fatalf("device d1: %d connects recorded, want 1 (refused connections must not count)", n)
	}
}

func TestDeviceIsConfinedToItsOwnTopics(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "alice", "sa")
	f.AddDevice("p", "bob", "sb")
	b := startBroker(t, f)
	alice := dial(t, b.Addr().String(), "p", "alice", "sa")
	bob := dial(t, b.Addr().String(), "p", "bob", "sb")

	for _, filter := range []string{
		wire.Topic("p", "bob", wire.TopicNotice),
		wire.Topic("p", "bob", wire.TopicCheckReply),
		"updraft/v1/p/+/notice",
		"updraft/v1/p/#",
		"updraft/v1/#",
		"#",
		"$share/g/" + wire.Topic("p", "alice", wire.TopicNotice),
		wire.Topic("p", "alice", wire.TopicVersion), // up topics are not readable either
	} {
		if code := alice.subscribe(t, filter); code != 0x80 {
			t.Errorf("alice subscribing to %q: SUBACK code %#x, want 0x80 (refused)", filter, code)
		}
	}
	if code := alice.subscribe(t, wire.Topic("p", "alice", wire.TopicNotice)); code != 1 {
		t.Fatalf("alice subscribing to her own notices: code %#x", code)
	}
	if code := bob.subscribe(t, wire.Topic("p", "bob", wire.TopicNotice)); code != 1 {
		t.Fatalf("bob subscribing to his own notices: code %#x", code)
	}
	eventually(t, "both listening", func() bool { return b.Listening() == 2 })

	// A notice for bob reaches bob and nobody else.
	if err := b.Notify(context.Background(), []ota.Notice{notice("p", "bob", 1, "2.0")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's notice", func() bool { return len(bob.received(wire.Topic("p", "bob", wire.TopicNotice))) == 1 })
	// alice's own notice arrives after bob's; had she been able to read his,
	// it would be in her inbox by now (one connection delivers in order).
	if err := b.Notify(context.Background(), []ota.Notice{notice("p", "alice", 2, "2.0")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's notice", func() bool { return len(alice.received(wire.Topic("p", "alice", wire.TopicNotice))) == 1 })
	alice.mu.Lock()
	if len(alice.got) != 1 {
		t.Errorf("alice received on %d topics, want only her notice topic: %v", len(alice.got), alice.got)
	}
	alice.mu.Unlock()

	// alice cannot publish as bob: the broker disconnects her and the
	// service never hears of it.
	b2, _ := json.Marshal(wire.VersionReport{Version: "6.6.6"})
	tok := alice.c.Publish(wire.Topic("p", "bob", wire.TopicVersion), 1, false, b2)
	tok.WaitTimeout(time.Second) // no PUBACK comes: the broker closes the connection
	eventually(t, "alice disconnected", func() bool { return !alice.c.IsConnectionOpen() })
	for _, v := range f.Versions() {
		if v.Version == "6.6.6" {
			t.Fatalf("forged version report reached the service: %+v", v)
		}
	}
	// bob's own report works.
	bob.publish(t, wire.Topic("p", "bob", wire.TopicVersion), wire.VersionReport{Version: "1.0"})
	if v := f.Versions(); len(v) != 1 || v[0].Device.Name != "bob" || v[0].Version != "1.0" || v[0].Module != ota.DefaultModule {
		t.Fatalf("versions = %+v", v)
	}
}

func TestPendingNoticeDeliveredWhenDeviceListens(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s")
	f.SetPending(notice("p", "d", 42, "3.1"))
	b := startBroker(t, f)

	// Offline: Notify has nobody to publish to and keeps nothing.
	if err := b.Notify(context.Background(), []ota.Notice{notice("p", "d", 42, "3.1")}); err != nil {
		t.Fatal(err)
	}
	if b.Published() != 0 {
		t.Fatalf("published %d notices to an offline device", b.Published())
	}

	d := dial(t, b.Addr().String(), "p", "d", "s")
	eventually(t, "online", func() bool { on, _ := f.Online(ref); return on })
	d.subscribe(t, wire.Topic("p", "d", wire.TopicNotice))
	topic := wire.Topic("p", "d", wire.TopicNotice)
	eventually(t, "pending notice", func() bool { return len(d.received(topic)) == 1 })
	var n wire.Notice
	if err := json.Unmarshal(d.received(topic)[0], &n); err != nil {
		t.Fatal(err)
	}
	if n.TaskID != 42 || n.Version != "3.1" || n.URL != "http://example/pkg" || n.SignMethod != "SHA256" || n.Tags[0].Key != "k" || n.Module != "default" {
		t.Fatalf("notice = %+v", n)
	}

	// The engine's Notify of the same dispatch is not sent a second time...
	if err := b.Notify(context.Background(), []ota.Notice{notice("p", "d", 42, "3.1")}); err != nil {
		t.Fatal(err)
	}
	// ...but the next one is (a retry of the same task).
	if err := b.Notify(context.Background(), []ota.Notice{notice("p", "d", 42, "3.1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "retry notice", func() bool { return len(d.received(topic)) == 2 })
	if got := b.Published(); got != 2 {
		t.Fatalf("published %d, want 2 (pending + retry)", got)
	}

	d.c.Disconnect(0)
	eventually(t, "offline", func() bool { on, _ := f.Online(ref); return !on })
}

func TestDeviceMessages(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	d := dial(t, b.Addr().String(), "p", "d", "s")
	replyTopic := wire.Topic("p", "d", wire.TopicCheckReply)
	d.subscribe(t, replyTopic)

	d.publish(t, wire.Topic("p", "d", wire.TopicVersion), wire.VersionReport{Module: "mcu", Version: "1.2"})
	d.publish(t, wire.Topic("p", "d", wire.TopicProgress), wire.ProgressReport{TaskID: 9, Step: 40, Desc: "downloading"})
	d.publish(t, wire.Topic("p", "d", wire.TopicProgress), wire.ProgressReport{Step: wire.StepVerifyFailed, Desc: "bad hash"})
	// Malformed messages are acknowledged and dropped.
	d.publish(t, wire.Topic("p", "d", wire.TopicVersion), "not an object")
	d.publish(t, wire.Topic("p", "d", wire.TopicVersion), wire.VersionReport{Version: "bad version!"})
	d.publish(t, wire.Topic("p", "d", wire.TopicProgress), wire.ProgressReport{Step: 101})

	if v := f.Versions(); len(v) != 1 || v[0] != (deviceprototest.VersionCall{Device: ref, Module: "mcu", Version: "1.2"}) {
		t.Fatalf("versions = %+v", v)
	}
	p := f.Progress()
	if len(p) != 2 {
		t.Fatalf("progress = %+v", p)
	}
	if p[0].Progress.TaskID != 9 || p[0].Progress.Step != 40 || p[0].Progress.Detail != "downloading" || p[0].Progress.Module != ota.DefaultModule || p[0].Progress.Reason != "" {
		t.Errorf("progress[0] = %+v", p[0].Progress)
	}
	if p[1].Progress.Step != -3 || p[1].Progress.Reason != ota.ReasonVerifyFailed {
		t.Errorf("progress[1] = %+v", p[1].Progress)
	}

	// check: no update, then an update.
	d.publish(t, wire.Topic("p", "d", wire.TopicCheck), wire.CheckRequest{})
	eventually(t, "check reply", func() bool { return len(d.received(replyTopic)) == 1 })
	f.SetPending(notice("p", "d", 5, "2.0"))
	d.publish(t, wire.Topic("p", "d", wire.TopicCheck), wire.CheckRequest{Module: "default"})
	eventually(t, "second check reply", func() bool { return len(d.received(replyTopic)) == 2 })
	var none, some wire.CheckReply
	if err := json.Unmarshal(d.received(replyTopic)[0], &none); err != nil || none.Notice != nil || none.Error != "" {
		t.Fatalf("first reply = %s (%v)", d.received(replyTopic)[0], err)
	}
	if err := json.Unmarshal(d.received(replyTopic)[1], &some); err != nil || some.Notice == nil || some.Notice.TaskID != 5 {
		t.Fatalf("second reply = %s (%v)", d.received(replyTopic)[1], err)
	}
}

func TestSessionTakeOverKeepsDeviceOnline(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	first := dial(t, b.Addr().String(), "p", "d", "s")
	second := dial(t, b.Addr().String(), "p", "d", "s")
	eventually(t, "first connection taken over", func() bool { return !first.c.IsConnectionOpen() })
	eventually(t, "one connection", func() bool { return b.Connected() == 1 })
	if on, n := f.Online(ref); !on || n != 2 {
		t.Fatalf("online=%v connects=%d, want online after 2 connects", on, n)
	}
	second.c.Disconnect(0)
	eventually(t, "offline", func() bool { on, _ := f.Online(ref); return !on })
}

func TestACLMatching(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b/c", "a/b/c", true},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a/b/c", true},
		{"a/#", "a", true},
		{"a/+", "a/b/c", false},
		{"a/b", "a/b/c", false},
		{"#", "$oc/x", false},
		{"$oc/devices/x/sys/events/down", "$oc/devices/x/sys/events/down", true},
	} {
		if got := matches(tc.filter, tc.topic); got != tc.want {
			t.Errorf("matches(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
	for _, tc := range []struct {
		allowed, requested string
		want               bool
	}{
		{"u/p/d/notice", "u/p/d/notice", true},
		{"u/p/d/notice", "u/p/+/notice", false},
		{"u/p/d/notice", "u/p/d/#", false},
		{"u/p/d/#", "u/p/d/+", true},
		{"u/p/d/#", "u/p/d/notice/x", true},
		{"u/p/d/#", "u/p/#", false},
		{"u/+/d", "u/+/d", true},
		{"u/p/d/notice", "$share/g/u/p/d/notice", false},
	} {
		if got := covers(tc.allowed, tc.requested); got != tc.want {
			t.Errorf("covers(%q, %q) = %v", tc.allowed, tc.requested, got)
		}
	}
}

func TestBrokerMetrics(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	reg := prometheus.NewRegistry()
	b, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := dial(t, b.Addr().String(), "p", "d", "s")
	d.subscribe(t, wire.Topic("p", "d", wire.TopicNotice))
	d.publish(t, wire.Topic("p", "d", wire.TopicVersion), wire.VersionReport{Version: "1"})
	d.publish(t, wire.Topic("p", "d", wire.TopicVersion), "junk")
	eventually(t, "listening", func() bool { return b.Listening() == 1 })
	for series, want := range map[string]float64{
		"updraft_mqtt_connected_devices":       1,
		"updraft_mqtt_listening_devices":       1,
		"updraft_mqtt_notices_published_total": 0,
	} {
		if got := metricValue(t, reg, series, ""); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(t, reg, "updraft_mqtt_device_messages_total", resultHandled); got != 1 {
		t.Errorf("handled = %v", got)
	}
	if got := metricValue(t, reg, "updraft_mqtt_device_messages_total", resultDropped); got != 1 {
		t.Errorf("dropped = %v", got)
	}
}

// metricValue reads one series (with label result=result, if given).
func metricValue(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if result != "" {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() != result {
						continue metrics
					}
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("series %s{result=%q} not found", name, result)
	return 0
}

// A device that connects with clean session false subscribes once: vendor
// SDKs (Alibaba's Node SDK by default) never subscribe again after a
// reconnect. Its subscriptions must come back with the session, and a clean
// session must not get them.
func TestPersistentSessionKeepsSubscriptions(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p1", "d1", "s3cret")
	b := startBroker(t, f)
	addr := b.Addr().String()
	noticeTopic := wire.Topic("p1", "d1", wire.TopicNotice)
	connect := func(clean bool) (*device, bool) {
		t.Helper()
		now := time.Now()
		d, tok := connectRecorder(t, connectOpts(addr, wire.ClientID("p1", "d1"), wire.Username("p1", "d1", now),
			wire.Sign("s3cret", "p1", "d1", now.UnixMilli())).SetCleanSession(clean))
		return d, tok.SessionPresent()
	}
	d, present := connect(false)
	if present {
		t.Fatal("first connection: CONNACK says a session is present")
	}
	d.subscribe(t, noticeTopic)
	d.c.Disconnect(100)
	eventually(t, "first connection finished", func() bool { return b.Listening() == 0 && b.Connected() == 0 })

	d, present = connect(false)
	if !present {
		t.Fatal("reconnect with clean session false: CONNACK says no session is present")
	}
	eventually(t, "listening again without a SUBSCRIBE", func() bool { return b.Listening() == 1 })
	if err := b.Notify(context.Background(), []ota.Notice{notice("p1", "d1", 41, "2.0")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "notice on the resumed subscription", func() bool { return hasNotice(d.received(noticeTopic), 41) })
	d.c.Disconnect(100)
	eventually(t, "second connection finished", func() bool { return b.Connected() == 0 })

	// A clean session discards what was kept.
	d, present = connect(true)
	if present {
		t.Fatal("clean session: CONNACK says a session is present")
	}
	if err := b.Notify(context.Background(), []ota.Notice{notice("p1", "d1", 42, "2.0")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if hasNotice(d.received(noticeTopic), 42) || b.Listening() != 0 {
		t.Fatal("a clean session got the old session's subscription")
	}
	d.c.Disconnect(100)
	eventually(t, "clean connection finished", func() bool { return b.Connected() == 0 })
	d, present = connect(false)
	if present {
		t.Fatal("after a clean session ended: CONNACK says a session is present")
	}
	d.c.Disconnect(100)
}
