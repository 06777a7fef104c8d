package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/store/sqlite"
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

// gatedDevices puts gate in front of the Fake's version and progress
// reports: a store that blocks or fails.
type gatedDevices struct {
	*deviceprototest.Fake
	gate  func(ctx context.Context) error
	calls atomic.Int64
}

func (g *gatedDevices) ReportVersion(ctx context.Context, ref ota.DeviceRef, module, version string) error {
	g.calls.Add(1)
	if err := g.gate(ctx); err != nil {
		return err
	}
	return g.Fake.ReportVersion(ctx, ref, module, version)
}

func (g *gatedDevices) ReportProgress(ctx context.Context, ref ota.DeviceRef, p service.Progress) error {
	g.calls.Add(1)
	if err := g.gate(ctx); err != nil {
		return err
	}
	return g.Fake.ReportProgress(ctx, ref, p)
}

// versionsOf is the set of versions the Fake has recorded.
func versionsOf(f *deviceprototest.Fake) map[string]bool {
	got := map[string]bool{}
	for _, v := range f.Versions() {
		got[v.Device.Name+"="+v.Version] = true
	}
	return got
}

// Issue 8, item 5: a replica dies while its consumers hold device messages
// they received but did not acknowledge, and devices keep publishing while
// it is down. The replica that takes its client id over gets the held ones
// redelivered right after CONNACK (before its connect handler has even
// subscribed) and the queued ones after: every report is applied.
func TestExternalRedeliveredAtResumeAreRouted(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	const devices, before, during = 4, 5, 5
	for i := 0; i < devices; i++ {
		f.AddDevice(product, fmt.Sprintf("d%d", i), "s")
	}
	clientID, group := randomName("updraft-test-"), randomName("g")
	const consumers = 3

	// The first replica's store never answers: everything it receives stays
	// unacknowledged until it goes away.
	stuck := &gatedDevices{Fake: f, gate: func(ctx context.Context) error {
		<-ctx.Done()
		return ota.Errorf(ota.CodeUnavailable, "store down: %v", ctx.Err())
	}}
	first, err := NewExternal(stuck, ExternalOptions{URL: addr, ClientID: clientID, Group: group, Consumers: consumers, Workers: 2,
		Logger: quietLogger(), Dialects: []Dialect{productOnly{NewNative(stuck, 0, nil), product}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close(); wipeSessions(t, addr, clientID, consumers) })

	var devs []*device
	for i := 0; i < devices; i++ {
		d := &device{got: map[string][][]byte{}}
		d.c = paho.NewClient(connectOpts(addr, wire.ClientID(product, fmt.Sprintf("d%d", i)), "", ""))
		if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { d.c.Disconnect(0) })
		devs = append(devs, d)
	}
	want := map[string]bool{}
	report := func(round int) {
		for i, d := range devs {
			v := fmt.Sprintf("1.%d", round)
			d.publish(t, wire.Topic(product, fmt.Sprintf("d%d", i), wire.TopicVersion), wire.VersionReport{Version: v})
			want[fmt.Sprintf("d%d=%s", i, v)] = true
		}
	}
	for r := 0; r < before; r++ {
		report(r)
	}
	// Both workers are blocked on a message: the replica holds messages.
	eventually(t, "the first replica to take messages", func() bool { return stuck.calls.Load() >= 2 })
	first.Close()
	for r := before; r < before+during; r++ {
		report(r)
	}
	if n := len(f.Versions()); n != 0 {
		t.Fatalf("%d reports applied by the stuck replica", n)
	}

	// The resumed sessions' messages come right after CONNACK; make sure
	// they come before the subscriptions do, as they may on a busy host.
	slow := func() { time.Sleep(100 * time.Millisecond) }
	testHookSubscribing.Store(&slow)
	t.Cleanup(func() { testHookSubscribing.Store(nil) })
	startExternal(t, addr, clientID, group, product, f, consumers)
	eventually(t, "every report applied", func() bool { return len(versionsOf(f)) == len(want) })
	for k := range versionsOf(f) {
		if !want[k] {
			t.Fatalf("unexpected report %s", k)
		}
	}
}

// Issue 8, item 4 (the carrier's half): a message whose handling keeps
// failing for a transient reason is not acknowledged; the consumer
// reconnects and the broker redelivers it, and it is applied once the
// service takes messages again. The lag metrics show the message.
func TestExternalTransientFailureRedelivered(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	f.AddDevice(product, "d1", "s")
	var down atomic.Bool
	down.Store(true)
	g := &gatedDevices{Fake: f, gate: func(context.Context) error {
		if down.Load() {
			return ota.Errorf(ota.CodeUnavailable, "store down")
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	clientID, group := randomName("updraft-test-"), randomName("g")
	e, err := NewExternal(g, ExternalOptions{URL: addr, ClientID: clientID, Group: group, Consumers: 1, Workers: 2,
		Logger: quietLogger(), Dialects: []Dialect{productOnly{NewNative(g, 0, nil), product}},
		RetryBackoff: time.Millisecond, RedeliverAfter: 300 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); wipeSessions(t, addr, clientID, 1) })
	d := &device{got: map[string][][]byte{}}
	d.c = paho.NewClient(connectOpts(addr, wire.ClientID(product, "d1"), "", ""))
	if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })

	d.publish(t, wire.Topic(product, "d1", wire.TopicVersion), wire.VersionReport{Version: "2.0"})
	eventually(t, "the message given up on", func() bool {
		return gathered(t, reg, "updraft_mqtt_device_messages_total", "result", resultUnacked) >= 1
	})
	if e.Handled() != 0 {
		t.Fatalf("handled %d while the service was down", e.Handled())
	}
	down.Store(false)
	eventually(t, "the redelivered report applied", func() bool { return len(f.Versions()) >= 1 })
	if v := f.Versions()[0]; v.Version != "2.0" {
		t.Fatalf("version %+v", v)
	}
	eventually(t, "acknowledged", func() bool { return e.Handled() >= 1 })
	if n := gathered(t, reg, "updraft_mqtt_external_message_seconds", "dialect", "native"); n < 1 {
		t.Fatalf("%v receive-to-applied samples", n)
	}
	if n := gathered(t, reg, "updraft_mqtt_external_queued_messages", "", ""); n != 0 {
		t.Fatalf("%v messages queued after all were handled", n)
	}
}

// gathered is the value (a histogram's sample count) of the series of name
// whose label has value (any series when label is ""); -1 if there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := label == ""
			for _, l := range m.GetLabel() {
				ok = ok || (l.GetName() == label && l.GetValue() == value)
			}
			if !ok {
				continue
			}
			switch {
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			default:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// informDialect stands for a protocol whose device is the last two levels
// of /ota/device/{kind}/{product}/{device} (Alibaba's layout): it records
// what it handles, slowly for "inform" messages.
type informDialect struct {
	product string
	mu      sync.Mutex
	seen    map[string][]int // device → sequence numbers in handling order
}

func (*informDialect) Name() string { return "native" }
func (*informDialect) Authenticate(context.Context, Connect) (*Session, error) {
	return nil, ErrNotMine
}
func (i *informDialect) Filters() []string { return []string{"/ota/device/+/" + i.product + "/+"} }
func (*informDialect) DeviceKey(topic string) string {
	l := strings.Split(topic, "/")
	return l[len(l)-2] + "/" + l[len(l)-1]
}
func (i *informDialect) Handle(_ context.Context, m Message, _ Link) error {
	l := strings.Split(m.Topic, "/")
	if l[3] == "inform" {
		time.Sleep(3 * time.Millisecond) // a slow handler: a later message of another queue would overtake it
	}
	var seq int
	if err := json.Unmarshal(m.Payload, &seq); err != nil {
		return ota.Invalid("payload", "%v", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.seen[l[len(l)-1]] = append(i.seen[l[len(l)-1]], seq)
	return nil
}
func (*informDialect) Render(ota.Notice) (string, []byte, error) { return "", nil, ErrNotMine }

// Issue 8, item 8: ordering groups a device's messages by the dialect's
// DeviceKey, not by every topic level but the last, which for
// /ota/device/{kind}/{pk}/{dn} would put one device's "inform" and
// "progress" in different queues (and a whole product's "inform" in one).
func TestExternalOrdersByDeviceKey(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	dl := &informDialect{product: product, seen: map[string][]int{}}
	clientID, group := randomName("updraft-test-"), randomName("g")
	// One consumer: the broker delivers one session's messages in order, so
	// any reordering is the server's.
	e, err := NewExternal(f, ExternalOptions{URL: addr, ClientID: clientID, Group: group, Consumers: 1, Workers: 8,
		Logger: quietLogger(), Dialects: []Dialect{dl}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(); wipeSessions(t, addr, clientID, 1) })
	inform := func(dn string) string { return "/ota/device/inform/" + product + "/" + dn }
	progress := func(dn string) string { return "/ota/device/progress/" + product + "/" + dn }
	if e.shardOf(dl, inform("a")) != e.shardOf(dl, progress("a")) {
		t.Fatal("one device's topics are in different queues")
	}
	// The Alibaba dialect itself: one device's inform and progress share a
	// queue, and one product's devices spread over several.
	alink := NewAlink(f, nil)
	queues := map[int]bool{}
	for i := 0; i < 32; i++ {
		dn := fmt.Sprintf("dn%d", i)
		q := e.shardOf(alink, AlinkInformTopic("pk", dn))
		if q != e.shardOf(alink, AlinkProgressTopic("pk", dn)) {
			t.Fatalf("Alink device %s: inform and progress in different queues", dn)
		}
		queues[q] = true
	}
	if len(queues) < 2 {
		t.Fatal("a whole Alibaba product in one queue")
	}

	pub, err := dialRaw(addr, randomName("pub"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	const n = 20
	names := []string{"a", "b", "c"}
	var toks []paho.Token
	for seq := 0; seq < n; seq++ {
		for _, dn := range names {
			topic := inform(dn)
			if seq%2 == 1 {
				topic = progress(dn)
			}
			toks = append(toks, pub.Publish(topic, 1, false, strconv.Itoa(seq)))
		}
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	eventually(t, "every message handled", func() bool { return e.Handled() == n*int64(len(names)) })
	dl.mu.Lock()
	defer dl.mu.Unlock()
	for _, dn := range names {
		if !slices.IsSorted(dl.seen[dn]) || len(dl.seen[dn]) != n {
			t.Fatalf("device %s handled %v, want 0…%d in order", dn, dl.seen[dn], n-1)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func newFakeClock() *fakeClock           { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }

// newSlotLeases is a store on a fake clock and the service that leases
// replica slots from it.
func newSlotLeases(t *testing.T) (*sqlite.Store, *fakeClock, *service.Service) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	return st, clock, service.New(st, nil, clock, nil, quietLogger(), service.Options{})
}
func sessionPresent(t *testing.T, addr, id string) bool {
	t.Helper()
	c := paho.NewClient(connectOpts(addr, id, "", "").SetCleanSession(false))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	present := tok.(*paho.ConnectToken).SessionPresent()
	c.Disconnect(0)
	// The probe itself left a session: discard it.
	if wipe, err := dialRaw(addr, id, "", ""); err == nil {
		wipe.Disconnect(0)
	}
	return present
}

// Issue 8, item 6: replicas lease numbered slots from the shared store and
// name their consumer sessions after them, not after their host alone. Two
// replicas get distinct slots; when one is killed its sessions (and what
// was queued in them meanwhile) are not orphaned: once its lease expires a
// live replica drains them, applies every message and deletes them, and the
// slot is free for the next replica.
func TestExternalReplicaSlots(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	const devices = 4
	for i := 0; i < devices; i++ {
		f.AddDevice(product, fmt.Sprintf("d%d", i), "s")
	}
	st, clock, slots := newSlotLeases(t)
	base, group := randomName("updraft-test-"), randomName("g")
	const consumers, ttl = 2, 300 * time.Millisecond
	// Each replica has its own client id base (as if named after its
	// host); a slot keeps the base of the replica that created it.
	t.Cleanup(func() {
		for _, r := range []string{"a", "b", "c"} {
			for s := 0; s < 3; s++ {
				wipeSessions(t, addr, fmt.Sprintf("%s-%s-s%d", base, r, s), consumers)
			}
		}
	})
	start := func(name string) *External {
		e, err := NewExternal(f, ExternalOptions{URL: addr, ClientID: base + "-" + name, Group: group, Consumers: consumers, Workers: 2,
			Logger: quietLogger(), Dialects: nativeFor(f, product), Slots: slots, SlotTTL: ttl, MaxReplicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	a, b := start("a"), start("b")
	if a.Slot() != 0 || b.Slot() != 1 {
		t.Fatalf("slots %d, %d; want 0, 1", a.Slot(), b.Slot())
	}

	// kill -9 of a: its slot stays leased, its sessions stay at the broker
	// and keep their share of the device messages.
	a.close(false)
	var devs []*device
	for i := 0; i < devices; i++ {
		d := &device{got: map[string][][]byte{}}
		d.c = paho.NewClient(connectOpts(addr, wire.ClientID(product, fmt.Sprintf("d%d", i)), "", ""))
		if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { d.c.Disconnect(0) })
		devs = append(devs, d)
	}
	want := map[string]bool{}
	for r := 0; r < 5; r++ {
		for i, d := range devs {
			v := fmt.Sprintf("1.%d", r)
			d.publish(t, wire.Topic(product, fmt.Sprintf("d%d", i), wire.TopicVersion), wire.VersionReport{Version: v})
			want[fmt.Sprintf("d%d=%s", i, v)] = true
		}
	}
	eventually(t, "b's share applied", func() bool { return len(versionsOf(f)) > 0 })
	held := len(want) - len(versionsOf(f))
	t.Logf("%d of %d reports queued in the killed replica's sessions", held, len(want))

	// Its lease expires: b drains slot 0, so every report is applied.
	clock.Add(2 * ttl)
	eventually(t, "every report applied", func() bool { return len(versionsOf(f)) == len(want) })
	// The drained slot is free again (no row) and its sessions are gone.
	// The probe holds its lease for longer than the test runs: a lease that
	// ends at once is vacant at once, and b's drainer claimed it between
	// the probe's lease and release (CI, stop 27), so c found slot 0 taken.
	eventually(t, "slot 0 freed", func() bool {
		n, _, err := st.LeaseReplicaSlot(t.Context(), "probe", "probe", 1, clock.Now(), clock.Now().Add(time.Hour))
		if err == nil {
			st.ReleaseReplicaSlot(t.Context(), n, "probe", true)
		}
		return err == nil && n == 0
	})
	for i := 0; i < consumers; i++ {
		if sessionPresent(t, addr, fmt.Sprintf("%s-a-s0-c%d", base, i)) {
			t.Fatalf("session %d of the drained slot still exists", i)
		}
	}
	// A replica started now, whatever its host, takes the lowest free slot.
	if c := start("c"); c.Slot() != 0 {
		t.Fatalf("new replica got slot %d, want the freed 0", c.Slot())
	}
}

// A replica that resumes its sessions starts even when their SUBACKs are
// slow (a backlog comes first, on a loaded host): the broker kept their
// subscriptions. A new session without its subscriptions still fails.
func TestExternalResumedSessionsNeedNoSubAck(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	clientID, group := randomName("updraft-test-"), randomName("g")
	opts := ExternalOptions{URL: addr, ClientID: clientID, Group: group, Consumers: 2, Logger: quietLogger(),
		Dialects: nativeFor(f, product), ConnectTimeout: 500 * time.Millisecond}
	first, err := NewExternal(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	t.Cleanup(func() { wipeSessions(t, addr, clientID, 2) })

	slow := func() { time.Sleep(time.Second) }
	testHookSubscribing.Store(&slow)
	t.Cleanup(func() { testHookSubscribing.Store(nil) })
	again, err := NewExternal(f, opts)
	if err != nil {
		t.Fatalf("resuming with slow SUBACKs: %v", err)
	}
	again.Close()
	fresh := opts
	fresh.ClientID = randomName("updraft-test-")
	t.Cleanup(func() { wipeSessions(t, addr, fresh.ClientID, 2) })
	if e, err := NewExternal(f, fresh); err == nil {
		e.Close()
		t.Fatal("a new session without confirmed subscriptions started")
	}
}

// Issue 8: through an external broker a device's statuses can reach the
// server out of order. A device whose connection drops and that reconnects
// at once sends the online status of its new connection while the broker
// publishes the will (offline) of the old one; the two travel through
// different consumers (or replicas) and the will can be applied last,
// leaving an online device offline for good. Statuses name their connection
// (wire.Status.Since) and the service applies them in that order. Here one
// consumer receives the will late, after its successor's online status.
func TestExternalPresenceInConnectionOrder(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "updraft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := service.New(st, nil, newFakeClock(), nil, quietLogger(), service.Options{})
	product := randomName("p")
	if err := st.CreateTenant(ctx, ota.Tenant{ID: "t1", Name: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProduct(ctx, ota.Product{TenantID: "t1", Key: product, Name: "p", Protocol: ota.ProtocolNative, Auth: ota.AuthSecret}); err != nil {
		t.Fatal(err)
	}
	const devices = 20
	for i := 0; i < devices; i++ {
		if err := st.CreateDevice(ctx, ota.Device{TenantID: "t1", ProductKey: product, Name: fmt.Sprintf("d%d", i), Secret: "s"}); err != nil {
			t.Fatal(err)
		}
	}
	clientID, group := randomName("updraft-test-"), randomName("g")
	e, err := NewExternal(svc, ExternalOptions{URL: "mqtt://" + addr, ClientID: clientID, Group: group, Consumers: 1, Workers: 4,
		Logger: quietLogger(), Dialects: []Dialect{productOnly{NewNative(svc, 0, nil), product}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		wipeSessions(t, addr, clientID, 1)
	})
	pub := &device{got: map[string][][]byte{}}
	pub.c = paho.NewClient(connectOpts(addr, randomName("pub-"), "", ""))
	if tok := pub.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { pub.c.Disconnect(0) })
	online := func() (n int) {
		for i := 0; i < devices; i++ {
			d, err := st.GetDevice(ctx, product, fmt.Sprintf("d%d", i))
			if err != nil {
				t.Fatal(err)
			}
			if d.Online {
				n++
			}
		}
		return n
	}
	status := func(online bool, since int64) {
		for i := 0; i < devices; i++ {
			pub.publish(t, wire.Topic(product, fmt.Sprintf("d%d", i), wire.TopicStatus), wire.Status{Online: online, Since: since})
		}
	}
	now := time.Now().UnixMilli()
	status(true, now)      // connection A
	status(true, now+1500) // connection B replaces A
	status(false, now)     // A's will, handled last
	eventually(t, "every status handled", func() bool { return e.Handled() >= 3*devices })
	if n := online(); n != devices {
		t.Fatalf("%d of %d devices online after the will of a replaced connection was handled late; want all", n, devices)
	}
	status(false, now+1500) // B's will: now they are gone
	eventually(t, "every device offline", func() bool { return online() == 0 })
}

// slowVersions is a service whose version reports take a while (a loaded
// store).
type slowVersions struct {
	*deviceprototest.Fake
	delay time.Duration
}

func (s slowVersions) ReportVersion(ctx context.Context, ref ota.DeviceRef, module, version string) error {
	if version == "1.20" { // one report of each device midway: the rest go fast
		time.Sleep(s.delay)
	}
	return s.Fake.ReportVersion(ctx, ref, module, version)
}

// Issue 8: in a kill -9 run 17 version reports of 3 000 were lost. The
// drain of a dead replica's sessions judged a session empty once no
// message had finished for a second; a report whose handling took longer
// (a loaded store) looked like silence, and the clean-session CONNECT that
// deletes the session discarded the reports still queued in it (beyond the
// broker's in-flight window of 20). Here one report of each device, midway
// through the dead replica's backlog, takes longer than that second: the
// drain still applies all 180.
func TestExternalDrainWaitsForSlowHandling(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	const devices = 3
	for i := 0; i < devices; i++ {
		f.AddDevice(product, fmt.Sprintf("d%d", i), "s")
	}
	slow := slowVersions{f, drainQuiet + 300*time.Millisecond}
	_, clock, slots := newSlotLeases(t)
	base, group := randomName("updraft-test-"), randomName("g")
	const ttl = 300 * time.Millisecond
	t.Cleanup(func() {
		for s := 0; s < 2; s++ {
			wipeSessions(t, addr, fmt.Sprintf("%s-s%d", base, s), 1)
		}
	})
	start := func() *External {
		e, err := NewExternal(slow, ExternalOptions{URL: addr, ClientID: base, Group: group, Consumers: 1, Workers: 2,
			Logger: quietLogger(), Dialects: []Dialect{productOnly{NewNative(slow, 0, nil), product}}, Slots: slots, SlotTTL: ttl, MaxReplicas: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.close(false) })
		return e
	}
	a := start()
	start()        // b: live, drains a's slot once its lease expires
	a.close(false) // kill -9: a's session stays, and keeps its share
	d := &device{got: map[string][][]byte{}}
	d.c = paho.NewClient(connectOpts(addr, randomName("pub-"), "", ""))
	if tok := d.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(0) })
	want := map[string]bool{}
	for r := 0; r < 60; r++ {
		for i := 0; i < devices; i++ {
			v := fmt.Sprintf("1.%d", r)
			d.publish(t, wire.Topic(product, fmt.Sprintf("d%d", i), wire.TopicVersion), wire.VersionReport{Version: v})
			want[fmt.Sprintf("d%d=%s", i, v)] = true
		}
	}
	time.Sleep(2 * time.Second) // b's share applied
	t.Logf("%d of %d reports applied before the drain", len(versionsOf(f)), len(want))
	clock.Add(2 * ttl)
	end := time.Now().Add(60 * time.Second)
	for len(versionsOf(f)) < len(want) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d reports applied after 60 s: the drain lost %v", len(versionsOf(f)), len(want), missing(want, versionsOf(f)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func missing(want, got map[string]bool) []string {
	var out []string
	for k := range want {
		if !got[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Notify only queues its notices (they are published while the engine claims
// more); Close must still publish everything queued and wait for the broker's
// acknowledgements, and a Notify after Close is refused.
func TestExternalCloseDeliversQueuedNotices(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	product := randomName("p")
	f := deviceprototest.New()
	f.AddDevice(product, "d1", "s")
	clientID, group := randomName("updraft-test-"), randomName("g")
	e := startExternal(t, addr, clientID, group, product, f, 1)

	d, _ := connectRecorder(t, connectOpts(addr, wire.ClientID(product, "d1"), "", ""))
	noticeTopic := wire.Topic(product, "d1", wire.TopicNotice)
	d.subscribe(t, noticeTopic)

	const batches, perBatch = 8, 250
	for b := range batches {
		notices := make([]ota.Notice, perBatch)
		for i := range notices {
			notices[i] = notice(product, "d1", int64(1+b*perBatch+i), "2.0")
		}
		if err := e.Notify(context.Background(), notices); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := e.published.Load(); got != batches*perBatch {
		t.Fatalf("Close returned with %d of %d notices acknowledged by the broker", got, batches*perBatch)
	}
	eventually(t, "every queued notice", func() bool { return len(d.received(noticeTopic)) >= batches*perBatch })
	err := e.Notify(context.Background(), []ota.Notice{notice(product, "d1", 9999, "2.0")})
	if ota.ErrorCode(err) != ota.CodeUnavailable {
		t.Fatalf("Notify after Close = %v, want CodeUnavailable", err)
	}
}
