package mqtt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/updraft-ota/updraft/internal/ota"
)

// client is one connection to the embedded broker, from accept to close.
//
// Its bytes arrive on one goroutine at a time (its netpoll poller, or its TLS
// reader), which frames and decodes packets and queues them. Handling them
// may block on the service for seconds (authentication, reports), which a
// poller must never do, so the connection's executor (run) handles its
// queue in order on one of the broker's executor goroutines (executors),
// which exist only while some connection has work. An idle connection
// holds no goroutine at all.
type client struct {
	b *Broker
	t transport

	// Read side: used only by the goroutine feeding the connection's bytes
	// (under rmu, which orders the poller's reads after the accepting
	// goroutine's writes whatever the poller's own synchronisation).
	rmu       sync.Mutex
	in        []byte            // the start of a packet not fully received
	aliases   map[uint16]string // MQTT 5 topic aliases the device set
	keepAlive uint16            // seconds, from CONNECT; 0: none
	version   byte              // protocol version from CONNECT; 0 before it
	ended     bool              // DISCONNECT or a protocol error: read nothing more

	// deadline (unix nanoseconds, 0: none) is when the broker's sweep
	// closes the connection: connectTimeout after accept, then 1.5 ×
	// keep-alive after each packet. One sweep for all connections costs
	// less memory than a timer each.
	deadline atomic.Int64

	mu       sync.Mutex
	jobs     []*packets.Packet // received, waiting for the executor
	subs     []string          // granted subscription filters (for UNSUBSCRIBE and cleanup)
	inflight []uint16          // QoS 1 packet ids sent and not yet acknowledged
	maxOut   uint32            // the device's maximum packet size (MQTT 5); 0: none
	nextID   uint16
	sendMax  uint16 // bound of inflight: MaxInflight, or the device's receive maximum if lower
	running  bool   // the executor goroutine exists
	closed   bool
	drain    bool // closed by the device: what it sent before still counts
	finished bool // finish has run

	// established: CONNACK sent and online recorded, so finish records
	// offline (executor only). listening: subscribed to its notice topic
	// and pending notices delivered (under nmu). Here rather than with
	// their kin: the struct is held for every device, and this packs it.
	established bool
	// keepFor is how long the session outlives the connection (0: not at
	// all), from CONNECT: clean session, MQTT 5 session expiry.
	keepFor   time.Duration
	listening bool

	// Set by the executor when the CONNECT is accepted, before the client
	// is visible to other goroutines (router, byDevice); shape is nil
	// until then. The device's session is its shape with dev's names.
	id      string
	dev     ota.DeviceRef
	shape   *shape
	dialect Dialect

	nmu sync.Mutex // guards listening and sentOnListen (notice delivery)
	// sentOnListen holds the (task, attempt) notices the listen-time lookup
	// already sent, so the engine's own Notify for the same dispatch is not
	// sent twice. Keyed by attempt too: a retry of the task is a new notice.
	sentOnListen map[noticeKey]time.Time
}

// Errors a connection is closed with (logged at debug level).
var (
	errExpired         = errors.New("nothing received in time: no CONNECT within the connect timeout, or no packet within 1.5 × the keep-alive the device asked for")
	errTakenOver       = errors.New("session taken over by a new connection with the same client id")
	errShutdown        = errors.New("broker shutting down")
	errClientGone      = errors.New("connection closed by the device")
	errFlooding        = errors.New("the device sends faster than its messages are processed (more packets waiting than the bound); it is disconnected")
	errNotAcknowledged = errors.New("the device does not acknowledge QoS 1 messages (more unacknowledged than its in-flight bound); it is disconnected")
)

// protocolError is a packet that breaks MQTT: the connection is closed (an
// MQTT 5 device is told the reason first).
type protocolError struct {
	code packets.Code
	what string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("protocol error: %s (%s)", e.what, e.code.Reason)
}

func violation(code packets.Code, format string, args ...any) *protocolError {
	return &protocolError{code: code, what: fmt.Sprintf(format, args...)}
}

// feed takes bytes read from the connection: complete packets are decoded
// and queued, the rest kept until more arrive.
func (c *client) feed(data []byte) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.ended {
		return
	}
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	max := int(c.b.opts.MaxPacketSize)
	for len(data) > 0 {
		rem, n, ok, err := remainingLength(data[1:])
		if err != nil {
			c.fail(violation(packets.ErrMalformedPacket, "%v", err))
			return
		}
		if !ok {
			break
		}
		size := 1 + n + rem
		if size > max {
			c.fail(violation(packets.ErrPacketTooLarge, "a %d-byte packet; the broker takes at most %d bytes", size, max))
			return
		}
		if len(data) < size {
			// Keep the packet's start in a buffer that holds all of it,
			// unless data is that buffer already (nothing consumed).
			if len(data) != len(c.in) || cap(c.in) < size {
				in := make([]byte, len(data), size)
				copy(in, data)
				c.in = in
			}
			return
		}
		if err := c.receive(data[0], bytes.Clone(data[1+n:size])); err != nil {
			c.fail(err)
			return
		}
		data = data[size:]
		if c.ended {
			return
		}
	}
	c.in = nil // the buffer of a large packet is not kept while idle
	if len(data) > 0 {
		c.in = bytes.Clone(data)
	}
}

// remainingLength decodes the variable byte integer of a fixed header: its
// value, its length in bytes, whether it is complete.
func remainingLength(b []byte) (value, n int, ok bool, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, false, nil
		}
		value += int(b[i]&127) * mult
		if b[i]&128 == 0 {
			return value, i + 1, true, nil
		}
		mult *= 128
	}
	return 0, 0, false, packets.ErrMalformedVariableByteInteger
}

// receive decodes one packet (body is its own copy) and queues it.
func (c *client) receive(header byte, body []byte) (err error) {
	pk := &packets.Packet{ProtocolVersion: c.version}
	if err := pk.FixedHeader.Decode(header); err != nil {
		return violation(packets.ErrMalformedPacket, "fixed header: %v", err)
	}
	pk.FixedHeader.Remaining = len(body)
	if c.version == 0 && pk.FixedHeader.Type != packets.Connect {
		return violation(packets.ErrProtocolViolationRequireFirstConnect, "packet type %d before CONNECT", pk.FixedHeader.Type)
	}
	defer func() {
		// The codec indexes some fields without checking lengths: a
		// malformed packet must close its connection, never the server.
		if r := recover(); r != nil {
			err = violation(packets.ErrMalformedPacket, "undecodable packet type %d", pk.FixedHeader.Type)
		}
	}()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		if c.version != 0 {
			return violation(packets.ErrProtocolViolationSecondConnect, "a second CONNECT on one connection")
		}
		if err := pk.ConnectDecode(body); err != nil {
			return violation(packets.ErrMalformedPacket, "CONNECT: %v", err)
		}
		c.version = pk.ProtocolVersion
		if c.version != 3 && c.version != 4 && c.version != 5 {
			c.version = 4 // to encode the refusal
		}
		c.keepAlive = pk.Connect.Keepalive
		c.received()
		// The executor refuses everything after a CONNECT it refuses.
		return c.enqueue(pk)
	case packets.Publish:
		if pk.FixedHeader.Qos == 2 {
			// The broker offers QoS 1 at most (CONNACK's maximum QoS).
			return violation(packets.ErrQosNotSupported, "QoS 2 PUBLISH; publish at QoS 0 or 1")
		}
		if err := pk.PublishDecode(body); err != nil {
			return violation(packets.ErrMalformedPacket, "PUBLISH: %v", err)
		}
		if code := pk.PublishValidate(topicAliasMaximum); code != packets.CodeSuccess {
			return violation(code, "PUBLISH to %q", pk.TopicName)
		}
		if err := c.resolveAlias(pk); err != nil {
			return err
		}
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Subscribe:
		if err = pk.SubscribeDecode(body); err == nil {
			if code := pk.SubscribeValidate(); code != packets.CodeSuccess {
				return violation(code, "SUBSCRIBE")
			}
		}
	case packets.Unsubscribe:
		if err = pk.UnsubscribeDecode(body); err == nil {
			if code := pk.UnsubscribeValidate(); code != packets.CodeSuccess {
				return violation(code, "UNSUBSCRIBE")
			}
		}
	case packets.Pingreq:
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
		c.ended = true // nothing follows a DISCONNECT
	default:
		// PUBREC/PUBREL/PUBCOMP (QoS 2 is not offered), AUTH (no enhanced
		// authentication) and server-to-client packets.
		return violation(packets.ErrProtocolViolation, "unexpected packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		return violation(packets.ErrMalformedPacket, "packet type %d: %v", pk.FixedHeader.Type, err)
	}
	c.received()
	return c.enqueue(pk)
}

// received moves the deadline after a packet: 1.5 × the keep-alive (MQTT
// 3.1.1 §3.1.2.10), none if the device asked for none.
func (c *client) received() {
	var d int64
	if c.keepAlive > 0 {
		d = time.Now().Add(time.Duration(c.keepAlive) * 1500 * time.Millisecond).UnixNano()
	}
	c.deadline.Store(d)
}

// topicAliasMaximum is the number of MQTT 5 topic aliases a device may set
// (announced in CONNACK); each costs the connection a map entry.
const topicAliasMaximum = 16

// resolveAlias applies an MQTT 5 topic alias: a PUBLISH with a topic and an
// alias sets it, one with an alias alone uses it.
func (c *client) resolveAlias(pk *packets.Packet) error {
	a := pk.Properties.TopicAlias
	if !pk.Properties.TopicAliasFlag || a == 0 {
		return nil
	}
	if pk.TopicName != "" {
		if c.aliases == nil {
			c.aliases = make(map[uint16]string)
		}
		c.aliases[a] = strings.Clone(pk.TopicName)
		return nil
	}
	topic, ok := c.aliases[a]
	if !ok {
		return violation(packets.ErrTopicAliasInvalid, "PUBLISH with topic alias %d, which the device never set", a)
	}
	pk.TopicName = topic
	return nil
}

// maxQueued bounds the packets waiting for a connection's executor (a
// multiple of the in-flight window, so a device may pipeline its QoS 1
// messages); past it the device is flooding and is disconnected.
func (c *client) maxQueued() int { return 4 * c.b.opts.MaxInflight }

// enqueue hands pk to the executor, starting it if it is idle.
func (c *client) enqueue(pk *packets.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if len(c.jobs) >= c.maxQueued() {
		return errFlooding
	}
	c.jobs = append(c.jobs, pk)
	c.startLocked()
	return nil
}

func (c *client) startLocked() {
	if !c.running {
		c.running = true
		c.b.exec.submit(c)
	}
}

// run is the connection's executor, on one of the broker's executor
// goroutines: it handles queued packets in order, then, once the
// connection is closed and nothing is left, finishes it.
func (c *client) run() {
	for {
		c.mu.Lock()
		if len(c.jobs) == 0 {
			c.jobs = nil
			if !c.closed || c.finished {
				c.running = false
				c.mu.Unlock()
				return
			}
			c.finished = true
			c.mu.Unlock()
			c.b.finish(c)
			continue
		}
		pk := c.jobs[0]
		c.jobs[0] = nil
		c.jobs = c.jobs[1:]
		skip := c.closed && !c.drain
		c.mu.Unlock()
		if !skip {
			c.handle(pk)
		}
	}
}

// fail closes the connection for what its reader found (called under rmu):
// nothing more is read, and an MQTT 5 device is told the reason.
func (c *client) fail(err error) {
	c.ended = true
	c.b.log.Info("device connection closed", "remote", c.t.remote(), "client_id", c.clientID(), "err", err)
	var pe *protocolError
	if !errors.As(err, &pe) {
		c.close(err, false)
		return
	}
	c.disconnect(pe.code, err)
}

// disconnect closes the connection, telling an MQTT 5 device whose CONNECT
// was accepted why (DISCONNECT with a reason code); MQTT 3 has no way to.
func (c *client) disconnect(code packets.Code, why error) {
	c.mu.Lock()
	accepted := c.shape != nil && !c.closed
	c.mu.Unlock()
	if accepted && c.version == 5 {
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code.Code})
	}
	c.close(why, false)
}

// session rebuilds the device's session (its CONNECT was accepted).
func (c *client) session() *Session { return c.shape.session(c.dev) }

func (c *client) clientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// close closes the connection (once). drain: the device closed it, and the
// packets it sent before are still handled (a report published just before
// a disconnect reaches the service, as it did when each connection read its
// packets in order); otherwise queued packets are dropped.
func (c *client) close(why error, drain bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.drain = true, drain
	c.startLocked() // the executor finishes the connection after its queue
	accepted, dev, id := c.shape != nil, c.dev, c.id
	c.mu.Unlock()
	c.t.close()
	if accepted {
		c.b.log.Debug("device disconnected", "device", dev.ProductKey+"/"+dev.Name, "client_id", id, "reason", why)
	}
}

func (c *client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// send encodes pk and queues it on the socket; a device that does not read
// is disconnected.
func (c *client) send(pk *packets.Packet) {
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Suback:
		err = pk.SubackEncode(&buf)
	case packets.Unsuback:
		err = pk.UnsubackEncode(&buf)
	case packets.Pingresp:
		err = pk.PingrespEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	}
	if err != nil {
		c.b.log.Error("encoding an MQTT packet", "type", pk.FixedHeader.Type, "err", err)
		return
	}
	if err := c.t.write(buf.Bytes()); errors.Is(err, errSlowDevice) {
		c.close(err, false)
	} else if err != nil {
		// The socket is gone (its close may not be reported yet): the
		// device hung up, and what it sent before still counts.
		c.close(errClientGone, true)
	}
}

// handle runs one packet on the executor.
func (c *client) handle(pk *packets.Packet) {
	b := c.b
	if pk.FixedHeader.Type == packets.Connect {
		b.connect(c, pk)
		return
	}
	c.mu.Lock()
	accepted := c.shape != nil
	c.mu.Unlock()
	if !accepted {
		return // after a refused CONNECT: the connection is closing
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		b.devicePublish(c, pk)
	case packets.Puback:
		c.acknowledged(pk.PacketID)
	case packets.Subscribe:
		b.subscribe(c, pk)
	case packets.Unsubscribe:
		b.unsubscribe(c, pk)
	case packets.Pingreq:
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingresp}})
	case packets.Disconnect:
		// A will is never published: devices have no one to deliver it to
		// (presence is the connection itself), so DISCONNECT with or
		// without one just ends the connection.
		c.close(errClientGone, true)
	}
}

// deliver sends a server message to the client at qos (QoS 1 takes a packet
// id from its in-flight window).
func (c *client) deliver(topic string, payload []byte, qos byte) {
	pk := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.maxOut > 0 && publishSize(c.version, topic, payload, qos) > c.maxOut {
		// MQTT 5: a message larger than the device takes is not sent.
		c.mu.Unlock()
		c.b.log.Warn("message not sent: larger than the device's maximum packet size", "client_id", c.id, "topic", topic, "bytes", len(payload), "max", c.maxOut)
		return
	}
	if qos > 0 {
		if len(c.inflight) >= int(c.sendMax) {
			c.mu.Unlock()
			c.close(errNotAcknowledged, false)
			return
		}
		pk.PacketID = c.packetIDLocked()
		c.inflight = append(c.inflight, pk.PacketID)
	}
	c.mu.Unlock()
	c.send(pk)
}

// publishSize is the encoded size of a PUBLISH the broker sends (MQTT 5:
// with an empty property list).
func publishSize(version byte, topic string, payload []byte, qos byte) uint32 {
	rem := 2 + len(topic) + len(payload)
	if qos > 0 {
		rem += 2
	}
	if version == 5 {
		rem++
	}
	n := 1
	for v := rem; v >= 128; v /= 128 {
		n++
	}
	return uint32(1 + n + rem)
}

func (c *client) packetIDLocked() uint16 {
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		free := true
		for _, id := range c.inflight {
			if id == c.nextID {
				free = false
				break
			}
		}
		if free {
			return c.nextID
		}
	}
}

// acknowledged frees a packet id the device acknowledged (an unknown one is
// ignored: it may be a duplicate).
func (c *client) acknowledged(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.inflight {
		if x == id {
			c.inflight = append(c.inflight[:i], c.inflight[i+1:]...)
			break
		}
	}
	if len(c.inflight) == 0 {
		c.inflight = nil // nothing kept for an idle device
	}
}

// addSub records a granted subscription and routes matching messages to c.
func (c *client) addSub(filter string, qos byte) {
	c.mu.Lock()
	if !slices.Contains(c.subs, filter) {
		c.subs = append(c.subs, filter)
	}
	c.mu.Unlock()
	c.b.router.add(c, filter, qos)
}

func (c *client) removeSub(filter string) bool {
	c.mu.Lock()
	if i := slices.Index(c.subs, filter); i >= 0 {
		c.subs = slices.Delete(c.subs, i, i+1)
	}
	c.mu.Unlock()
	return c.b.router.remove(c, filter)
}

// maxExecutors bounds the goroutines handling connections' packets, and so
// the device calls made at once. The store serves a handful of calls at a
// time (its connection pool), so more would only wait there, each with a
// stack that the store's calls grow to tens of kilobytes: 10 000 devices
// connecting at once must not make 10 000 of them.
const maxExecutors = 32

// executorIdle is how long an executor goroutine with no work waits for
// more before it exits. A rollout's reports come in bursts a few
// milliseconds apart; a goroutine started for each burst grew its stack
// again through the store's calls (copying it each time it doubled) and
// that was a twentieth of the server's CPU. A second keeps the goroutines
// of a busy broker; an idle one still ends up with none.
const executorIdle = time.Second

// executors runs connections that have queued packets, each on one
// goroutine at a time (so its packets stay in order), on at most
// maxExecutors goroutines that exit after executorIdle without work.
type executors struct {
	mu      sync.Mutex
	ready   []*client     // connections waiting for a goroutine
	running int           // goroutines, working or waiting
	idle    int           // waiting goroutines no wake-up is meant for
	wake    chan struct{} // one per waiting goroutine woken; never more than maxExecutors
}

func (e *executors) submit(c *client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ready = append(e.ready, c)
	switch {
	case e.idle > 0:
		e.idle--
		// Sent under the lock, so a goroutine whose wait ends at the same
		// moment finds it (below). The buffer holds one per waiting
		// goroutine at most: this never blocks.
		e.wake <- struct{}{}
	case e.running < maxExecutors:
		e.running++
		go e.work()
	}
}

func (e *executors) work() {
	idle := time.NewTimer(executorIdle)
	defer idle.Stop()
	for {
		e.mu.Lock()
		if len(e.ready) == 0 {
			e.ready = nil // no backing array kept while idle
			e.idle++
			e.mu.Unlock()
			idle.Reset(executorIdle)
			select {
			case <-e.wake:
				continue
			case <-idle.C:
			}
			e.mu.Lock()
			select {
			case <-e.wake: // woken as the wait ended: take the work
				e.mu.Unlock()
				continue
			default:
			}
			e.idle--
			e.running--
			e.mu.Unlock()
			return
		}
		c := e.ready[0]
		e.ready[0] = nil
		e.ready = e.ready[1:]
		e.mu.Unlock()
		c.run()
	}
}
