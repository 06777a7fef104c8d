package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

func randomName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// productOnly narrows the native dialect to one product's topics. Every test
// of every package shares one Mosquitto: with the dialect's own filters
// (updraft/v1/+/+/…) a test's consumer also receives the device traffic of
// all the others (an e2e fleet of thousands), which counts in Handled and can
// overflow the consumer's queue on the broker, so a test waiting for its one
// message either never sees the count it expects or loses the message.
type productOnly struct {
	Dialect
	product string
}

func (p productOnly) Filters() []string {
	var out []string
	for _, f := range p.Dialect.Filters() {
		out = append(out, strings.Replace(f, "/+/", "/"+p.product+"/", 1)) // the first level after the root is the product
	}
	return out
}

// nativeFor is the native dialect confined to product's topics.
func nativeFor(f *deviceprototest.Fake, product string) []Dialect {
	return []Dialect{productOnly{NewNative(f, 0, nil), product}}
}

// startExternal connects a server side to the real Mosquitto, consuming
// product's device topics only; at cleanup it also deletes its persistent
// sessions so the shared broker keeps nothing.
func startExternal(t *testing.T, addr, clientID, group, product string, f *deviceprototest.Fake, consumers int) *External {
	t.Helper()
	e, err := NewExternal(f, ExternalOptions{URL: "mqtt://" + addr, ClientID: clientID, Group: group, Consumers: consumers, Workers: 4, Logger: quietLogger(), Dialects: nativeFor(f, product)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		wipeSessions(t, addr, clientID, consumers)
	})
	return e
}

func wipeSessions(t *testing.T, addr, clientID string, consumers int) {
	for i := 0; i < consumers; i++ {
		c, err := dialRaw(addr, fmt.Sprintf("%s-c%d", clientID, i), "", "")
		if err != nil {
			t.Logf("wiping session: %v", err)
			continue
		}
		c.Disconnect(0)
	}
}

func TestExternalBrokerMosquitto(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	ref := f.AddDevice(product, "d1", "s")
	f.SetPending(notice(product, "d1", 7, "2.0"))
	clientID, group := randomName("updraft-test-"), randomName("g")
	e := startExternal(t, addr, clientID, group, product, f, 2)

	// A device on Mosquitto (which authenticates it; here anonymously).
	d := &device{got: map[string][][]byte{}}
	o := connectOpts(addr, wire.ClientID(product, "d1"), "", "").
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.got[m.Topic()] = append(d.got[m.Topic()], m.Payload())
			d.mu.Unlock()
		})
	offline, _ := json.Marshal(wire.Status{Online: false})
	o.SetWill(wire.Topic(product, "d1", wire.TopicStatus), string(offline), 1, false)
	d.c = paho.NewClient(o)
	if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	noticeTopic := wire.Topic(product, "d1", wire.TopicNotice)
	replyTopic := wire.Topic(product, "d1", wire.TopicCheckReply)
	d.subscribe(t, noticeTopic)
	d.subscribe(t, replyTopic)

	// Online: presence recorded and the pending notice delivered.
	d.publish(t, wire.Topic(product, "d1", wire.TopicStatus), wire.Status{Online: true})
	// QoS 1 is at-least-once throughout: wait for the notice wanted rather
	// than for an exact count.
	eventually(t, "pending notice", func() bool { return hasNotice(d.received(noticeTopic), 7) })
	if on, _ := f.Online(ref); !on {
		t.Fatal("device not recorded online")
	}

	// Device messages reach the service through the shared subscription.
	d.publish(t, wire.Topic(product, "d1", wire.TopicProgress), wire.ProgressReport{TaskID: 7, Step: 10})
	d.publish(t, wire.Topic(product, "d1", wire.TopicVersion), wire.VersionReport{Version: "2.0"})
	// Two consumers: the broker may hand the two reports to different
	// sessions, so they are handled in either order.
	eventually(t, "version report", func() bool { return len(f.Versions()) >= 1 })
	eventually(t, "progress report", func() bool { return len(f.Progress()) >= 1 })
	if v := f.Versions()[0]; v.Version != "2.0" || v.Device != ref {
		t.Fatalf("version = %+v", v)
	}
	if p := f.Progress()[0]; p.Progress.TaskID != 7 || p.Progress.Step != 10 || p.Device != ref {
		t.Fatalf("progress = %+v", p)
	}
	d.publish(t, wire.Topic(product, "d1", wire.TopicCheck), wire.CheckRequest{})
	// QoS 1 is at-least-once: a redelivered copy under load is allowed.
	eventually(t, "check reply", func() bool { return len(d.received(replyTopic)) >= 1 })
	var reply wire.CheckReply
	if err := json.Unmarshal(d.received(replyTopic)[0], &reply); err != nil || reply.Notice != nil {
		t.Fatalf("check reply %s: %v", d.received(replyTopic)[0], err)
	}

	// A new notice is pushed through the broker.
	if err := e.Notify(context.Background(), []ota.Notice{notice(product, "d1", 8, "3.0")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pushed notice", func() bool { return hasNotice(d.received(noticeTopic), 8) })
	for _, b := range d.received(noticeTopic) {
		var n wire.Notice
		if err := json.Unmarshal(b, &n); err != nil || (n.TaskID != 7 && n.TaskID != 8) || (n.TaskID == 8 && n.Version != "3.0") {
			t.Fatalf("notice %s: %v", b, err)
		}
	}

	d.publish(t, wire.Topic(product, "d1", wire.TopicStatus), wire.Status{Online: false})
	eventually(t, "offline", func() bool { on, _ := f.Online(ref); return !on })
}

// Messages devices publish while the server is down wait in its persistent
// session and are handled when it comes back with the same client id.
func TestExternalBrokerKeepsMessagesAcrossRestart(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	f.AddDevice(product, "d1", "s")
	clientID, group := randomName("updraft-test-"), randomName("g")
	// One consumer: the broker keeps a device's messages in order within one
	// session (across several, shared subscriptions may reorder them).
	e, err := NewExternal(f, ExternalOptions{URL: addr, ClientID: clientID, Group: group, Consumers: 1, Logger: quietLogger(), Dialects: nativeFor(f, product)})
	if err != nil {
		t.Fatal(err)
	}
	d := &device{got: map[string][][]byte{}}
	d.c = paho.NewClient(connectOpts(addr, wire.ClientID(product, "d1"), "", ""))
	if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })

	d.publish(t, wire.Topic(product, "d1", wire.TopicVersion), wire.VersionReport{Version: "1.0"})
	// Handled counts a message after its acknowledgement; the service sees
	// it just before. Closing in between would leave it unacknowledged and
	// the broker would rightly redeliver it after the restart.
	eventually(t, "first report acknowledged", func() bool { return e.Handled() == 1 })
	e.Close()

	for i := 0; i < 10; i++ {
		d.publish(t, wire.Topic(product, "d1", wire.TopicVersion), wire.VersionReport{Version: fmt.Sprintf("1.%d", i+1)})
	}
	startExternal(t, addr, clientID, group, product, f, 1)
	eventually(t, "reports sent during the restart", func() bool { return len(f.Versions()) == 11 })
	for i, v := range f.Versions()[1:] {
		if want := fmt.Sprintf("1.%d", i+1); v.Version != want {
			t.Fatalf("report %d = %q, want %q (in order)", i+1, v.Version, want)
		}
	}
}

// hasNotice reports whether one of the payloads is a notice of task.
func hasNotice(payloads [][]byte, task int64) bool {
	for _, b := range payloads {
		var n wire.Notice
		if json.Unmarshal(b, &n) == nil && n.TaskID == task {
			return true
		}
	}
	return false
}

// NewExternal returns only once the broker has granted its subscriptions,
// so a device message published right after is not lost (a new persistent
// session receives nothing published before it subscribed).
func TestExternalSubscribedWhenNewReturns(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	f.AddDevice(product, "d1", "s")
	d := &device{got: map[string][][]byte{}}
	d.c = paho.NewClient(connectOpts(addr, wire.ClientID(product, "d1"), "", ""))
	if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	for i := 0; i < 5; i++ {
		e := startExternal(t, addr, randomName("updraft-test-"), randomName("g"), product, f, 1)
		want := fmt.Sprintf("1.%d", i)
		d.publish(t, wire.Topic(product, "d1", wire.TopicVersion), wire.VersionReport{Version: want})
		eventually(t, "report "+want, func() bool { return e.Handled() >= 1 })
		if v := f.Versions(); v[len(v)-1].Version != want {
			t.Fatalf("last report %q, want %q", v[len(v)-1].Version, want)
		}
		e.Close()
	}
}

func TestBrokerURL(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://h:1883":        "tcp://h:1883",
		"h:1883":               "tcp://h:1883",
		"mqtts://u:p@h:8883":   "ssl://h:8883",
		"tcp://127.0.0.1:1883": "tcp://127.0.0.1:1883",
	} {
		got, _, _, err := brokerURL(in)
		if err != nil || got != want {
			t.Errorf("brokerURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, u, p, _ := brokerURL("mqtts://u:p@h:8883"); u != "u" || p != "p" {
		t.Errorf("credentials = %q %q", u, p)
	}
	var o ExternalOptions
	if err := o.applyQuery("h:1883?client_id=a&group=g&consumers=3"); err != nil || o.ClientID != "a" || o.Group != "g" || o.Consumers != 3 {
		t.Errorf("query options = %+v, %v", o, err)
	}
	for _, bad := range []string{"h:1?consumers=0", "h:1?consumers=x", "h:1?qos=2"} {
		if err := (&ExternalOptions{}).applyQuery(bad); err == nil {
			t.Errorf("applyQuery(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"http://h:1", "mqtt://"} {
		if _, _, _, err := brokerURL(bad); err == nil {
			t.Errorf("brokerURL(%q) accepted", bad)
		}
	}
}
