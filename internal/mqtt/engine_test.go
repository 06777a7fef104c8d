package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// The rules of the broker's own MQTT engine, checked with hand-encoded
// packets (mochi's codec) so that no client library smooths anything over.

// raw is a bare MQTT connection.
type raw struct {
	t       testing.TB
	c       net.Conn
	r       *bufio.Reader
	version byte
}

func rawDial(t *testing.T, addr string, version byte) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReader(c), version: version}
}

func (r *raw) send(pk packets.Packet) {
	r.t.Helper()
	r.c.Write(r.encode(pk))
}

func (r *raw) encode(pk packets.Packet) []byte {
	r.t.Helper()
	pk.ProtocolVersion = r.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1
		err = pk.SubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		r.t.Fatalf("cannot encode packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return buf.Bytes()
}

// read returns the next packet, or an error once the broker has closed the
// connection (or nothing came within d).
func (r *raw) read(d time.Duration) (packets.Packet, error) {
	r.c.SetReadDeadline(time.Now().Add(d))
	hb, err := r.r.ReadByte()
	if err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{ProtocolVersion: r.version}
	if err := pk.FixedHeader.Decode(hb); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r.r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		return pk, err
	}
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	return pk, err
}

// expect reads packets until one of type typ (skipping others).
func (r *raw) expect(typ byte) packets.Packet {
	r.t.Helper()
	for {
		pk, err := r.read(waitFor)
		if err != nil {
			r.t.Fatalf("waiting for packet type %d: %v", typ, err)
		}
		if pk.FixedHeader.Type == typ {
			return pk
		}
	}
}

// closed waits for the broker to close the connection, and returns the
// packets it sent before.
func (r *raw) closed(within time.Duration) []packets.Packet {
	r.t.Helper()
	var got []packets.Packet
	deadline := time.Now().Add(within)
	for {
		pk, err := r.read(time.Until(deadline))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatalf("connection still open after %v (received %d packets)", within, len(got))
		}
		if err != nil {
			return got
		}
		got = append(got, pk)
	}
}

func connectPacket(product, name, secret string, keepalive uint16) packets.Packet {
	now := time.Now()
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive,
			ClientIdentifier: wire.ClientID(product, name),
			UsernameFlag:     true, Username: []byte(wire.Username(product, name, now)),
			PasswordFlag: true, Password: []byte(wire.Sign(secret, product, name, now.UnixMilli())),
		},
	}
}

// connected dials, connects as product/name and checks the CONNACK.
func connected(t *testing.T, addr string, version byte, product, name, secret string, keepalive uint16) (*raw, packets.Packet) {
	t.Helper()
	r := rawDial(t, addr, version)
	r.send(connectPacket(product, name, secret, keepalive))
	ack := r.expect(packets.Connack)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK code %#x", ack.ReasonCode)
	}
	return r, ack
}

func subscribePacket(id uint16, filters ...string) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	return pk
}

func startBrokerWith(t *testing.T, f *deviceprototest.Fake, opts BrokerOptions) *Broker {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	b, err := NewBroker(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConnectTimeout(t *testing.T) {
	f := deviceprototest.New()
	b := startBrokerWith(t, f, BrokerOptions{connectTimeout: 300 * time.Millisecond})
	silent := rawDial(t, b.Addr().String(), 4)
	start := time.Now()
	silent.closed(waitFor)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("closed after %v, before the connect timeout", d)
	}
	eventually(t, "connection finished", func() bool { return b.open() == 0 })
}

func TestKeepAlive(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "idle", "s")
	f.AddDevice("p", "pinging", "s")
	b := startBroker(t, f)
	idle, _ := connected(t, b.Addr().String(), 4, "p", "idle", "s", 1)
	connectedAt := time.Now()
	idleClosed := make(chan time.Duration, 1)
	go func() {
		for {
			if _, err := idle.read(waitFor); err != nil {
				idleClosed <- time.Since(connectedAt)
				return
			}
		}
	}()
	pinging, _ := connected(t, b.Addr().String(), 4, "p", "pinging", "s", 1)
	for start := time.Now(); time.Since(start) < 2500*time.Millisecond; {
		pinging.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
		pinging.expect(packets.Pingresp)
		time.Sleep(400 * time.Millisecond)
	}
	// 1.5 × 1 s without a packet closes the idle one; the pinging one stays.
	if d := <-idleClosed; d < 1400*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("idle connection closed %v after CONNECT, want about 1.5 s", d)
	}
	pinging.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	pinging.expect(packets.Pingresp)
	eventually(t, "idle device offline", func() bool { on, _ := f.Online(ota.DeviceRef{ProductKey: "p", Name: "idle"}); return !on })
}

func TestSecondConnectClosesTheConnection(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	r, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	r.send(connectPacket("p", "d", "s", 60))
	r.closed(waitFor)
}

func TestFirstPacketMustBeConnect(t *testing.T) {
	f := deviceprototest.New()
	b := startBroker(t, f)
	r := rawDial(t, b.Addr().String(), 4)
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}})
	if got := r.closed(waitFor); len(got) != 0 {
		t.Fatalf("answered %d packets before CONNECT", len(got))
	}
}

// A PUBLISH whose whole packet is MaxPacketSize bytes is handled; one byte
// more closes the connection (MQTT 5: DISCONNECT 0x95 would need a CONNACK
// that accepted the oversize packet's connection first; MQTT 3 just closes).
func TestMaxPacketSize(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	const limit = 1024
	b := startBrokerWith(t, f, BrokerOptions{MaxPacketSize: limit})
	topic := wire.Topic("p", "d", wire.TopicVersion)
	r, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	sized := func(size int) []byte {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: topic, PacketID: 7}
		for pad := size - len(r.encode(pk)); pad > 0; pad-- {
			pk.Payload = []byte(`{"version":"1.0","x":"` + strings.Repeat("a", pad) + `"}`)
			if b := r.encode(pk); len(b) == size {
				return b
			}
		}
		t.Fatalf("cannot encode a %d-byte PUBLISH", size)
		return nil
	}
	r.c.Write(sized(limit))
	if ack := r.expect(packets.Puback); ack.PacketID != 7 {
		t.Fatalf("PUBACK for %d", ack.PacketID)
	}
	if v := f.Versions(); len(v) != 1 || v[0].Version != "1.0" {
		t.Fatalf("versions = %+v", v)
	}
	r.c.Write(sized(limit + 1))
	r.closed(waitFor)
	if v := f.Versions(); len(v) != 1 {
		t.Fatalf("the oversize report reached the service: %+v", v)
	}
}

// A device that does not acknowledge QoS 1 messages is disconnected once
// MaxInflight are outstanding; the broker holds no more for it.
func TestInflightBound(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBrokerWith(t, f, BrokerOptions{MaxInflight: 4})
	r, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	reply := wire.Topic("p", "d", wire.TopicCheckReply)
	r.send(subscribePacket(1, reply))
	r.expect(packets.Suback)
	for i := 0; i < 4; i++ {
		b.publish(reply, []byte(`{}`), 1)
	}
	ids := map[uint16]bool{}
	for i := 0; i < 4; i++ {
		ids[r.expect(packets.Publish).PacketID] = true
	}
	if len(ids) != 4 || ids[0] {
		t.Fatalf("packet ids %v, want 4 distinct non-zero", ids)
	}
	// Acknowledging one frees one: the fifth goes out too.
	for id := range ids {
		r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id})
		delete(ids, id)
		break
	}
	time.Sleep(100 * time.Millisecond) // the PUBACK is handled in order after nothing else
	b.publish(reply, []byte(`{}`), 1)
	r.expect(packets.Publish)
	// The sixth finds 4 unacknowledged: the device is disconnected.
	b.publish(reply, []byte(`{}`), 1)
	r.closed(waitFor)
	eventually(t, "device offline", func() bool { return b.Connected() == 0 })
}

// A device that does not read is disconnected once more than
// MaxPendingWrites × BufferSize bytes wait for its socket.
func TestPendingWritesBound(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBrokerWith(t, f, BrokerOptions{MaxPendingWrites: 4, BufferSize: 1024})
	r, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	reply := wire.Topic("p", "d", wire.TopicCheckReply)
	r.send(subscribePacket(1, reply))
	r.expect(packets.Suback)
	payload := bytes.Repeat([]byte("x"), 64<<10)
	// The socket buffers take some megabytes; past them the broker holds at
	// most 4 KiB more before it disconnects the device.
	for i := 0; i < 2048 && b.Connected() == 1; i++ {
		b.publish(reply, payload, 0)
	}
	eventually(t, "the device that does not read disconnected", func() bool { return b.Connected() == 0 })
	c := b.current(ota.DeviceRef{ProductKey: "p", Name: "d"})
	if c != nil {
		t.Fatal("the device is still the current connection")
	}
}

// A device that sends faster than its packets are handled is disconnected
// once 4 × MaxInflight wait.
func TestFloodingDeviceDisconnected(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	release := make(chan struct{})
	d := &blockingDialect{Native: NewNative(f, 0, nil), release: release}
	b := startBrokerWith(t, f, BrokerOptions{MaxInflight: 2, Dialects: []Dialect{d}})
	r, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	topic := wire.Topic("p", "d", wire.TopicVersion)
	var burst []byte
	for i := 0; i < 20; i++ {
		burst = append(burst, r.encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: fmt.Appendf(nil, `{"version":"1.%d"}`, i)})...)
	}
	r.c.Write(burst)
	r.closed(waitFor)
	close(release)
	eventually(t, "connection finished", func() bool { return b.open() == 0 })
	// What waited behind the report being handled is dropped with the
	// connection: the broker held no more than its bound for it.
	if v := f.Versions(); len(v) > 1 || len(v) == 1 && v[0].Version != "1.0" {
		t.Fatalf("reports handled: %+v, want at most the first", v)
	}
}

// blockingDialect is the native dialect whose Handle waits for release.
type blockingDialect struct {
	*Native
	release chan struct{}
}

func (d *blockingDialect) Handle(ctx context.Context, m Message, l Link) error {
	select {
	case <-d.release:
	case <-ctx.Done():
	}
	return d.Native.Handle(context.WithoutCancel(ctx), m, l)
}

func TestQoS2Refused(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	topic := wire.Topic("p", "d", wire.TopicVersion)
	qos2 := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, TopicName: topic, PacketID: 1, Payload: []byte(`{"version":"2.0"}`)}

	// MQTT 3.1.1 has no way to refuse it: the connection is closed.
	r3, _ := connected(t, b.Addr().String(), 4, "p", "d", "s", 60)
	r3.send(qos2)
	r3.closed(waitFor)

	// MQTT 5: the CONNACK said maximum QoS 1, and the device is told 0x9B.
	r5, ack := connected(t, b.Addr().String(), 5, "p", "d", "s", 60)
	if !ack.Properties.MaximumQosFlag || ack.Properties.MaximumQos != 1 {
		t.Fatalf("CONNACK maximum QoS %v/%d, want 1", ack.Properties.MaximumQosFlag, ack.Properties.MaximumQos)
	}
	r5.send(qos2)
	got := r5.closed(waitFor)
	if len(got) != 1 || got[0].FixedHeader.Type != packets.Disconnect || got[0].ReasonCode != packets.ErrQosNotSupported.Code {
		t.Fatalf("after a QoS 2 PUBLISH got %+v, want DISCONNECT 0x9B", got)
	}
	if v := f.Versions(); len(v) != 0 {
		t.Fatalf("QoS 2 reports reached the service: %+v", v)
	}
}

// MQTT 5: properties and reason codes through the same rules.
func TestMQTT5Device(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s")
	f.AddDevice("p", "other", "s")
	f.SetPending(notice("p", "d", 3, "2.0"))
	b := startBroker(t, f)
	r, ack := connected(t, b.Addr().String(), 5, "p", "d", "s", 60)
	if ack.SessionPresent || ack.Properties.TopicAliasMaximum != topicAliasMaximum || ack.Properties.ReceiveMaximum != 32 || ack.Properties.MaximumPacketSize != 256<<10 {
		t.Fatalf("CONNACK %+v", ack)
	}
	notices := wire.Topic("p", "d", wire.TopicNotice)
	r.send(subscribePacket(1, notices, wire.Topic("p", "other", wire.TopicNotice), "updraft/v1/p/+/notice", "a/#/b"))
	sub := r.expect(packets.Suback)
	if want := []byte{1, packets.ErrNotAuthorized.Code, packets.ErrNotAuthorized.Code, packets.ErrTopicFilterInvalid.Code}; !bytes.Equal(sub.ReasonCodes, want) {
		t.Fatalf("SUBACK codes % x, want % x", sub.ReasonCodes, want)
	}
	if pk := r.expect(packets.Publish); pk.TopicName != notices || pk.FixedHeader.Qos != 1 {
		t.Fatalf("pending notice %+v", pk)
	}

	// A topic alias set with one PUBLISH names the topic of the next.
	version := wire.Topic("p", "d", wire.TopicVersion)
	withAlias := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 2, TopicName: version,
		Properties: packets.Properties{TopicAlias: 1, TopicAliasFlag: true}, Payload: []byte(`{"version":"1.0"}`)}
	r.send(withAlias)
	r.expect(packets.Puback)
	aliasOnly := withAlias
	aliasOnly.TopicName, aliasOnly.PacketID, aliasOnly.Payload = "", 3, []byte(`{"version":"1.1"}`)
	r.send(aliasOnly)
	r.expect(packets.Puback)
	if v := f.Versions(); len(v) != 2 || v[1].Version != "1.1" {
		t.Fatalf("versions = %+v", v)
	}
	// Publishing to another device's topic is refused with 0x87, and the
	// connection stays.
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 4, TopicName: wire.Topic("p", "other", wire.TopicVersion), Payload: []byte(`{"version":"6.6"}`)})
	if pk := r.expect(packets.Puback); pk.ReasonCode != packets.ErrNotAuthorized.Code {
		t.Fatalf("PUBACK code %#x, want 0x87", pk.ReasonCode)
	}
	if v := f.Versions(); len(v) != 2 {
		t.Fatalf("forged report reached the service: %+v", v)
	}

	// A new connection with the same client id takes the session over: the
	// old one is told 0x8E, the device stays online.
	connected(t, b.Addr().String(), 5, "p", "d", "s", 60)
	got := r.closed(waitFor)
	if len(got) == 0 || got[len(got)-1].FixedHeader.Type != packets.Disconnect || got[len(got)-1].ReasonCode != packets.ErrSessionTakenOver.Code {
		t.Fatalf("the old connection got %+v, want DISCONNECT 0x8E", got)
	}
	eventually(t, "one connection", func() bool { return b.Connected() == 1 })
	// The new connection's presence is recorded after its CONNACK.
	eventually(t, "the take-over recorded as a second connect", func() bool { on, n := f.Online(ref); return on && n == 2 })
	if on, n := f.Online(ref); !on || n != 2 {
		t.Fatalf("online=%v connects=%d", on, n)
	}
}

// A refused MQTT 3.1.1 CONNECT gets return code 0x04 or 0x05, a refused
// MQTT 5 one the reason code, and an unsupported version 0x01.
func TestConnackRefusals(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	for _, tc := range []struct {
		version byte
		want    byte
	}{{4, 0x04}, {5, packets.ErrBadUsernameOrPassword.Code}} {
		r := rawDial(t, b.Addr().String(), tc.version)
		r.send(connectPacket("p", "d", "wrong", 60))
		got := r.closed(waitFor)
		if len(got) != 1 || got[0].FixedHeader.Type != packets.Connack || got[0].ReasonCode != tc.want {
			t.Errorf("MQTT %d, wrong secret: got %+v, want CONNACK %#x", tc.version, got, tc.want)
		}
	}
	r := rawDial(t, b.Addr().String(), 4)
	pk := connectPacket("p", "d", "s", 60)
	r.version = 6
	var buf bytes.Buffer
	pk.ProtocolVersion = 6
	pk.ConnectEncode(&buf)
	r.c.Write(buf.Bytes())
	r.version = 4
	if got := r.closed(waitFor); len(got) != 1 || got[0].ReasonCode != 0x01 {
		t.Errorf("MQTT version 6: got %+v, want CONNACK 0x01", got)
	}
}

// A device's last reports before it hangs up still reach the service.
func TestReportsBeforeDisconnectAreHandled(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	r := rawDial(t, b.Addr().String(), 4)
	topic := wire.Topic("p", "d", wire.TopicVersion)
	var burst []byte
	burst = append(burst, r.encode(connectPacket("p", "d", "s", 60))...)
	burst = append(burst, r.encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: []byte(`{"version":"4.2"}`)})...)
	burst = append(burst, r.encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})...)
	r.c.Write(burst)
	r.c.Close()
	eventually(t, "the report", func() bool { v := f.Versions(); return len(v) == 1 && v[0].Version == "4.2" })
	eventually(t, "connection finished", func() bool { return b.open() == 0 })
}

func TestRouter(t *testing.T) {
	r := newRouter()
	a, b2, c := &client{}, &client{}, &client{}
	r.add(a, "x/y/z", 1)
	r.add(b2, "x/+/z", 0)
	r.add(b2, "x/#", 1)
	r.add(c, "#", 1)
	r.add(c, "/ota/+/q", 1)
	names := map[*client]string{a: "a", b2: "b", c: "c"}
	got := func(topic string) string {
		var out []string
		for _, s := range r.match(topic) {
			out = append(out, fmt.Sprintf("%s%d", names[s.c], s.qos))
		}
		sort.Strings(out)
		return strings.Join(out, ",")
	}
	for topic, want := range map[string]string{
		"x/y/z":     "a1,b1,c1", // b's two subscriptions: once, at the higher QoS
		"x":         "b1,c1",    // "x/#" matches its parent level
		"x/q/z":     "b1,c1",
		"$sys/x":    "",
		"/ota/a/q":  "c1",
		"/ota/a/q/": "c1",
	} {
		if g := got(topic); g != want {
			t.Errorf("match(%q) = %q, want %q", topic, g, want)
		}
	}
	if !r.remove(b2, "x/#") || r.remove(b2, "x/#") {
		t.Fatal("remove reports wrongly")
	}
	if g := got("x"); g != "c1" {
		t.Errorf("after unsubscribe: %q", g)
	}
	r.remove(a, "x/y/z")
	r.remove(b2, "x/+/z")
	r.remove(c, "#")
	r.remove(c, "/ota/+/q")
	if len(r.exact) != 0 || len(r.wild) != 0 {
		t.Fatalf("entries left: %v %v", r.exact, r.wild)
	}
}

// A session is kept as its device and a shape shared by the devices whose
// sessions differ only by their names; rebuilt, it is the dialect's exactly.
func TestSessionShapes(t *testing.T) {
	n := NewNative(nil, 0, nil)
	var ss shapes
	same := func(a, b *Session) bool {
		return a.Device == b.Device && a.NoticeTopic == b.NoticeTopic && slices.Equal(a.Modules, b.Modules) && slices.Equal(a.Publish, b.Publish) &&
			slices.Equal(a.Subscribe, b.Subscribe) && slices.Equal(a.AutoSubscribe, b.AutoSubscribe)
	}
	var held []*shape
	for _, dev := range []ota.Device{
		{ProductKey: "prod", Name: "dev1"}, {ProductKey: "prod", Name: "dev2"}, {ProductKey: "other", Name: "dev1"},
		// names that overlap each other or the topics' literal parts
		{ProductKey: "p", Name: "p1"}, {ProductKey: "v1", Name: "updraft"}, {ProductKey: "a", Name: "a"}, {ProductKey: "x", Name: "/"},
	} {
		s := n.session(dev)
		s.AutoSubscribe = []string{"$oc/devices/" + dev.ProductKey + "_" + dev.Name + "/sys/events/down"}
		sh := ss.intern(s)
		held = append(held, sh)
		if got := sh.session(s.Device); !same(got, s) {
			t.Errorf("%+v: rebuilt %+v, want %+v", dev, got, s)
		}
	}
	if held[0] != held[1] || held[0] != held[2] {
		t.Error("devices whose sessions differ only by their names do not share a shape")
	}
	for _, sh := range held {
		ss.release(sh)
	}
	if len(ss.m) != 0 {
		t.Fatalf("%d shapes left after every connection released its own", len(ss.m))
	}
	if got := pack("prod", "dev1", "prod.dev1"); !slices.Equal(got, []string{"prod", "dev1", "prod.dev1"}) {
		t.Fatalf("pack = %q", got)
	}
}

// Packets split anywhere across reads (a slow link) are framed exactly
// once each, in order.
func TestFragmentedPackets(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f)
	r := rawDial(t, b.Addr().String(), 4)
	topic := wire.Topic("p", "d", wire.TopicVersion)
	stream := r.encode(connectPacket("p", "d", "s", 60))
	for i := range 5 {
		stream = append(stream, r.encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: uint16(i + 1), TopicName: topic,
			Payload: fmt.Appendf(nil, `{"version":"1.%d","pad":"%s"}`, i, strings.Repeat("x", 300*i))})...)
	}
	for len(stream) > 0 {
		n := min(len(stream), 7)
		r.c.Write(stream[:n])
		stream = stream[n:]
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		r.expect(packets.Puback)
	}
	v := f.Versions()
	if len(v) != 5 {
		t.Fatalf("%d reports, want 5: %+v", len(v), v)
	}
	for i, x := range v {
		if x.Version != fmt.Sprintf("1.%d", i) {
			t.Fatalf("report %d is %q", i, x.Version)
		}
	}
}

// nopTransport is a transport that discards what is written.
type nopTransport struct{}

func (nopTransport) write([]byte) error      { return nil }
func (nopTransport) close()                  {}
func (nopTransport) remote() string          { return "192.0.2.1:1" }
func (nopTransport) cert() *x509.Certificate { return nil }

// FuzzPacketStream: whatever bytes a connection sends, split however, the
// broker frames, decodes and handles them without panicking, and a closed
// connection is finished.
func FuzzPacketStream(f *testing.F) {
	fake := deviceprototest.New()
	fake.AddDevice("p", "d", "s")
	b, err := NewBroker(fake, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger(), MaxPacketSize: 4096})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	enc := &raw{t: f, version: 4}
	valid := enc.encode(connectPacket("p", "d", "s", 60))
	valid = append(valid, enc.encode(subscribePacket(1, wire.Topic("p", "d", wire.TopicNotice), "#"))...)
	valid = append(valid, enc.encode(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 2,
		TopicName: wire.Topic("p", "d", wire.TopicVersion), Payload: []byte(`{"version":"1"}`)})...)
	f.Add(valid, uint8(0))
	f.Add(valid, uint8(6))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, uint8(0))
	f.Add([]byte{0x30, 0x02, 0x00, 0x00}, uint8(1))
	f.Add(append(append([]byte{}, valid...), 0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		c := b.newClient(nopTransport{})
		step := int(split) + 1
		for len(data) > 0 {
			n := min(step, len(data))
			c.feed(data[:n])
			data = data[n:]
		}
		c.close(errClientGone, true)
		testenv.Within(t, waitFor, "the connection to be finished", func() {
			for {
				b.mu.Lock()
				_, open := b.conns[c]
				b.mu.Unlock()
				if !open {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	})
}
