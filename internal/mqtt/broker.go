package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/netpoll"
	"github.com/updraft-ota/updraft/internal/ota"
)

// BrokerOptions configure the embedded broker. Zero values are the defaults.
type BrokerOptions struct {
	// Addr is the TCP listen address (":1883"; ":0" picks a free port).
	// Listener, when set, is used instead.
	Addr     string
	Listener net.Listener
	// TLSListener, when set, serves MQTT over TLS besides the plain
	// listener (a tls.NewListener; with Addr "" and no Listener it is the
	// only one). Devices may present client certificates on it: Connect.Cert.
	TLSListener net.Listener
	// Dialects are tried in order on each CONNECT. Default: the native
	// dialect alone (NewNative with Skew).
	Dialects []Dialect
	// Skew bounds native credential timestamps (default 5 minutes).
	Skew time.Duration
	// Now is the clock for credential checks (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger

	// Per-connection bounds. Devices receive a handful of messages, so
	// these are small; a device that exceeds one is disconnected (it
	// reconnects and its pending notices are looked up again), so that one
	// slow or flooding device never makes the broker hold more for it.
	// An idle plain-TCP connection holds no goroutine and no buffer
	// (BenchmarkBrokerMemoryPerConnection: about 2 KB of heap).
	//
	// MaxPendingWrites × BufferSize bytes may wait for a device's socket
	// (32 KiB by default; a device that does not read is disconnected past
	// it). MaxInflight bounds the QoS 1 messages sent to a device and not
	// yet acknowledged, and is the receive maximum announced to MQTT 5
	// devices; 4 × MaxInflight packets received from a device may wait to
	// be handled. BufferSize is also a TLS connection's read buffer.
	// MaxPacketSize bounds a packet, fixed header included.
	MaxPendingWrites int    // default 32
	MaxInflight      int    // default 32
	BufferSize       int    // default 1024
	MaxPacketSize    uint32 // default 256 KiB
	// CallTimeout bounds each service call made for a device (default 30 s).
	CallTimeout time.Duration
	// Registerer receives the broker's metrics (nil: none).
	Registerer prometheus.Registerer

	connectTimeout time.Duration // connectTimeout; tests shorten it
}

// Broker is the embedded MQTT broker. It authenticates devices through its
// dialects, confines each device to its own topics, hands device messages
// to the dialects, tracks who is online, and implements service.Notifier by
// publishing notices to devices that listen.
//
// It is event-driven (doc.go: "Connections"): plain TCP connections are
// served by a netpoll poller (epoll) with no goroutine per idle connection,
// MQTT over TLS by a reader goroutine per connection; each connection's
// packets are handled in order by an executor that exists only while it
// has work.
type Broker struct {
	devices  deviceproto.Devices
	dialects []Dialect
	log      *slog.Logger
	opts     BrokerOptions
	addr     net.Addr
	poller   *netpoll.Poller[*client] // nil where it is unsupported: every connection is a stream
	router   *router
	exec     executors
	shapes   shapes

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	conns    map[*client]struct{} // every open connection, from accept to finish
	byClient map[string]*client   // accepted connections by client id (session take-over)
	// kept holds the sessions of devices that asked for one to outlive the
	// connection (clean session false) and are not connected, by client id.
	kept     map[string]keptSession
	byDevice map[ota.DeviceRef]*client // the current connection of each device
	stripes  [64]sync.Mutex            // serialise online/offline per device

	lns     []*listener
	closing atomic.Bool
	wg      sync.WaitGroup // accept loops and TLS readers

	connected atomic.Int64
	listening atomic.Int64
	notified  atomic.Int64 // notices published
	m         *metrics
}

// listener is one of the broker's listeners.
type listener struct {
	net.Listener
	tls bool
}

// Address is the listener's address.
func (l *listener) Address() string { return l.Addr().String() }

// noticeKey names one dispatch of a task.
type noticeKey struct {
	task    int64
	attempt int
}

// duplicateWindow is how long a listen-time delivery suppresses the engine's
// Notify of the same task (which follows its claim at once).
const duplicateWindow = 30 * time.Second

// NewBroker starts the embedded broker on opts.Addr.
func NewBroker(devices deviceproto.Devices, opts BrokerOptions) (*Broker, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.Dialects) == 0 {
		opts.Dialects = []Dialect{NewNative(devices, opts.Skew, opts.Now)}
	}
	if opts.MaxPendingWrites <= 0 {
		opts.MaxPendingWrites = 32
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 32
	}
	if opts.MaxInflight > 65535 {
		opts.MaxInflight = 65535 // packet ids are 16 bits (and so is MQTT 5's receive maximum)
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 1024
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = 256 << 10
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.connectTimeout <= 0 {
		opts.connectTimeout = connectTimeout
	}
	ln := opts.Listener
	if ln == nil && (opts.Addr != "" || opts.TLSListener == nil) {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded MQTT broker cannot listen on %q: %w (choose another address with --mqtt, or --mqtt off)", opts.Addr, err)
		}
	}
	var lns []*listener
	if ln != nil {
		lns = append(lns, &listener{Listener: ln})
	}
	if opts.TLSListener != nil {
		lns = append(lns, &listener{Listener: opts.TLSListener, tls: true})
	}
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}

	b := &Broker{
		devices:  devices,
		dialects: opts.Dialects,
		log:      opts.Logger.With("component", "mqtt"),
		opts:     opts,
		addr:     lns[0].Addr(),
		router:   newRouter(),
		conns:    make(map[*client]struct{}),
		byClient: make(map[string]*client),
		kept:     make(map[string]keptSession),
		byDevice: make(map[ota.DeviceRef]*client),
		exec:     executors{wake: make(chan struct{}, maxExecutors)},
		lns:      lns,
	}
	var err error
	b.m, err = newMetrics(opts.Registerer, map[string]func() float64{
		"updraft_mqtt_connected_devices": func() float64 { return float64(b.connected.Load()) },
		"updraft_mqtt_listening_devices": func() float64 { return float64(b.listening.Load()) },
	}, map[string]func() float64{
		"updraft_mqtt_notices_published_total": func() float64 { return float64(b.notified.Load()) },
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.poller, err = netpoll.New(netpoll.Config{
		// Pollers read and frame; they never wait on the service.
		Pollers: min(runtime.NumCPU(), 4),
		// One buffer per poller, shared by its connections.
		ReadBufferSize: 64 << 10,
		MaxQueued:      b.pendingLimit(),
	}, netpoll.Handler[*client]{
		Data:   (*client).feed,
		Closed: func(c *client) { c.close(errClientGone, true) },
	})
	if errors.Is(err, errors.ErrUnsupported) {
		b.poller = nil // every plain connection gets a reader goroutine
	} else if err != nil {
		closeAll()
		return nil, fmt.Errorf("embedded MQTT broker: starting its network poller: %w", err)
	}
	b.wg.Add(1)
	go b.sweep()
	for _, l := range lns {
		b.wg.Add(1)
		go b.accept(l)
		if l.tls {
			b.log.Info("embedded MQTT broker listening for MQTT over TLS", "addr", l.Address())
		} else {
			b.log.Info("embedded MQTT broker listening", "addr", l.Address())
		}
	}
	return b, nil
}

// Addr is the address the broker listens on (the plain listener's; the TLS
// listener's when it has no plain one).
func (b *Broker) Addr() net.Addr { return b.addr }

// Connected is the number of authenticated device connections.
func (b *Broker) Connected() int { return int(b.connected.Load()) }

// Listening is the number of connected devices subscribed to their notices.
func (b *Broker) Listening() int { return int(b.listening.Load()) }

// Published is the number of notices published so far.
func (b *Broker) Published() int64 { return b.notified.Load() }

// open is the number of connections not yet finished.
func (b *Broker) open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// accept hands l's connections to the poller (plain TCP) or to a reader
// goroutine each (TLS, or a connection the poller cannot take).
func (b *Broker) accept(l *listener) {
	defer b.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // transient (e.g. out of file descriptors): keep accepting
			}
			return
		}
		if b.closing.Load() {
			conn.Close()
			continue
		}
		if l.tls || b.poller == nil {
			b.wg.Add(1)
			go b.serveStream(conn)
			continue
		}
		var attached *client
		err = b.poller.Add(conn, func(pc *netpoll.Conn[*client]) *client {
			attached = b.newClient(&pollTransport{conn: pc})
			return attached
		})
		switch {
		case errors.Is(err, errors.ErrUnsupported):
			// Not a socket the poller can watch (a wrapped net.Conn): serve
			// it like a TLS connection.
			b.wg.Add(1)
			go b.serveStream(conn)
		case errors.Is(err, net.ErrClosed):
			// The broker is shutting down (the client was closed as it
			// was attached, or the poller is closed).
			if attached != nil {
				attached.close(errShutdown, false)
			}
		case err != nil:
			if attached != nil {
				attached.close(err, false)
			}
			b.log.Warn("device connection dropped: the broker's poller cannot take it (raise the open-file limit)", "remote", conn.RemoteAddr().String(), "err", err)
		}
	}
}

// serveStream reads a connection on its own goroutine (MQTT over TLS).
func (b *Broker) serveStream(conn net.Conn) {
	defer b.wg.Done()
	t := &streamTransport{conn: conn, limit: b.pendingLimit()}
	c := b.newClient(t)
	t.onError = func(err error) { c.close(err, false) }
	if tc, ok := conn.(*tls.Conn); ok {
		// The sweep closes a connection that does not complete its
		// handshake and CONNECT within connectTimeout (its deadline).
		if err := tc.Handshake(); err != nil {
			b.log.Debug("MQTT over TLS handshake failed", "remote", t.remote(), "err", err)
			c.close(err, false)
			return
		}
		t.peer = peerCert(tc)
	}
	buf := make([]byte, b.opts.BufferSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			c.feed(buf[:n])
		}
		if err != nil {
			c.close(errClientGone, true)
			return
		}
	}
}

func (b *Broker) pendingLimit() int { return b.opts.MaxPendingWrites * b.opts.BufferSize }

// newClient registers a new connection and starts its connect timeout.
// Its fields are set under both its locks, and every path that reads them
// (feed, close, enqueue) starts by taking one of the two.
func (b *Broker) newClient(t transport) *client {
	c := &client{b: b, t: t}
	c.rmu.Lock()
	c.mu.Lock()
	c.sendMax = uint16(b.opts.MaxInflight)
	c.deadline.Store(time.Now().Add(b.opts.connectTimeout).UnixNano())
	c.mu.Unlock()
	c.rmu.Unlock()
	b.mu.Lock()
	closing := b.closing.Load()
	if !closing {
		b.conns[c] = struct{}{}
	}
	b.mu.Unlock()
	if closing {
		c.close(errShutdown, false)
	}
	return c
}

// finish forgets a closed connection once its executor has nothing left:
// its subscriptions, its client id, and (unless a newer connection of the
// device took over) the device's presence.
func (b *Broker) finish(c *client) {
	c.mu.Lock()
	subs := c.subs
	c.subs, c.inflight = nil, nil
	c.mu.Unlock()
	for _, f := range subs {
		b.router.remove(c, f)
	}
	b.mu.Lock()
	if c.id != "" && b.byClient[c.id] == c {
		delete(b.byClient, c.id)
		if c.established && c.keepFor > 0 {
			b.kept[c.id] = keptSession{dev: c.dev, subs: subs, expires: time.Now().Add(c.keepFor)}
		}
	}
	b.mu.Unlock()
	if c.established {
		b.offline(c)
	}
	if c.shape != nil {
		b.shapes.release(c.shape)
	}
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// keptSession is what a session that outlives its connection keeps: the
// device it belongs to and its subscriptions (notices in flight are not
// kept: the store holds them, and they are looked up again when the device
// listens).
type keptSession struct {
	dev     ota.DeviceRef
	subs    []string
	expires time.Time
}

// maxSessionKeep bounds how long a session outlives its connection.
const maxSessionKeep = time.Hour

// keptSweepTicks: expired kept sessions are dropped once a minute.
const keptSweepTicks = int(time.Minute / sweepInterval)

// sessionKeep is how long the session of a CONNECT outlives its connection:
// MQTT 5 says (session expiry interval), MQTT 3 keeps it unless the device
// asked for a clean session; both bounded by maxSessionKeep.
func sessionKeep(version byte, pk *packets.Packet) time.Duration {
	if version == 5 {
		return min(time.Duration(pk.Properties.SessionExpiryInterval)*time.Second, maxSessionKeep)
	}
	if pk.Connect.Clean {
		return 0
	}
	return maxSessionKeep
}

// sweepInterval is how often the broker looks for connections past their
// deadline (client.deadline): keep-alive expiry is that much late at most.
const sweepInterval = 250 * time.Millisecond

// sweep closes connections past their deadline until the broker closes.
func (b *Broker) sweep() {
	defer b.wg.Done()
	tick := time.NewTicker(sweepInterval)
	defer tick.Stop()
	var expired []*client
	for ticks := 1; ; ticks++ {
		select {
		case <-b.ctx.Done():
			return
		case now := <-tick.C:
			expired = expired[:0]
			b.mu.Lock()
			if ticks%keptSweepTicks == 0 {
				for id, k := range b.kept {
					if now.After(k.expires) {
						delete(b.kept, id)
					}
				}
			}
			for c := range b.conns {
				if d := c.deadline.Load(); d != 0 && d < now.UnixNano() {
					expired = append(expired, c)
				}
			}
			b.mu.Unlock()
			for _, c := range expired {
				c.close(errExpired, false)
			}
		}
	}
}

// Close disconnects every device and stops the broker within about
// 3×shutdownBound whatever the devices do. Devices connected at shutdown are
// not marked offline one by one (they reconnect to the next server within
// seconds and that marks them online again).
func (b *Broker) Close() error {
	if b.closing.Swap(true) {
		return nil
	}
	b.cancel() // device calls in flight (authentication, reports) return now
	for _, l := range b.lns {
		l.Close()
	}
	b.mu.Lock()
	cs := make([]*client, 0, len(b.conns))
	for c := range b.conns {
		cs = append(cs, c)
	}
	b.mu.Unlock()
	for _, c := range cs {
		c.close(errShutdown, false)
	}
	// Each connection is finished by its executor, which may be in a
	// device call; those return as soon as b.ctx is cancelled.
	deadline := time.Now().Add(shutdownBound)
	for b.open() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.open(); n > 0 {
		b.log.Error("embedded MQTT broker: device connections still being handled after their sockets were closed; stopping anyway", "connections", n, "waited", shutdownBound)
	}
	if !waitBounded(b.wg.Wait, shutdownBound) {
		b.log.Error("embedded MQTT broker: listeners or TLS readers still running; stopping anyway", "waited", shutdownBound)
	}
	if b.poller != nil && !waitBounded(b.poller.Close, shutdownBound) {
		b.log.Error("embedded MQTT broker: the network poller did not stop; stopping anyway", "waited", shutdownBound)
	}
	return nil
}

// shutdownBound bounds each waiting step of Close.
const shutdownBound = 5 * time.Second

// connectTimeout is how long a new connection may take to send CONNECT
// (TLS handshake included); then the device's keep-alive applies.
const connectTimeout = 30 * time.Second

// waitBounded runs wait and reports whether it returned within d. A wait
// that does not is left running: the caller goes on regardless.
func waitBounded(wait func(), d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Notify implements service.Notifier: each notice is published to its device
// if the device is connected and listening; otherwise it is left for the
// device to receive when it starts listening (pending notices are looked up
// then), so an offline device loses nothing.
func (b *Broker) Notify(ctx context.Context, notices []ota.Notice) error {
	now := b.opts.Now()
	for _, n := range notices {
		c := b.current(ota.DeviceRef{ProductKey: n.ProductKey, Name: n.DeviceName})
		if c == nil {
			continue
		}
		c.nmu.Lock()
		if !c.listening {
			c.nmu.Unlock()
			continue
		}
		if at, ok := c.sentOnListen[noticeKey{n.TaskID, n.Attempt}]; ok {
			delete(c.sentOnListen, noticeKey{n.TaskID, n.Attempt})
			if len(c.sentOnListen) == 0 {
				c.sentOnListen = nil
			}
			if now.Sub(at) < duplicateWindow {
				c.nmu.Unlock()
				continue
			}
		}
		err := b.publishNotice(c, n)
		c.nmu.Unlock()
		if err != nil {
			b.log.Warn("notice not published", "device", n.ProductKey+"/"+n.DeviceName, "task", n.TaskID, "err", err)
		}
	}
	return nil
}

func (b *Broker) publishNotice(c *client, n ota.Notice) error {
	topic, payload, err := c.dialect.Render(n)
	if err != nil {
		return err
	}
	b.publish(topic, payload, 1)
	b.notified.Add(1)
	return nil
}

// publish sends a server message to every client subscribed to topic. The
// device's subscribe ACL is checked again on every delivery.
func (b *Broker) publish(topic string, payload []byte, qos byte) {
	for _, s := range b.router.match(topic) {
		if anyCovers(s.c.session().Subscribe, topic) {
			s.c.deliver(topic, payload, min(qos, s.qos))
		}
	}
}

func (b *Broker) current(ref ota.DeviceRef) *client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byDevice[ref]
}

func (b *Broker) stripe(ref ota.DeviceRef) *sync.Mutex {
	var h uint32 = 2166136261
	for _, s := range [2]string{ref.ProductKey, ref.Name} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint32(s[i])) * 16777619
		}
	}
	return &b.stripes[h%uint32(len(b.stripes))]
}

func (b *Broker) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, b.opts.CallTimeout)
}

// online makes c its device's current connection and records it.
func (b *Broker) online(c *client) {
	ref := c.dev
	mu := b.stripe(ref)
	mu.Lock()
	defer mu.Unlock()
	b.mu.Lock()
	b.byDevice[ref] = c
	b.mu.Unlock()
	b.connected.Add(1)
	ctx, cancel := b.callCtx()
	defer cancel()
	if err := b.devices.DeviceConnected(ctx, ref, true); err != nil {
		b.log.Warn("recording device online", "device", ref.ProductKey+"/"+ref.Name, "err", err)
	}
}

// offline forgets c; the device is offline unless a newer connection of the
// same device has already replaced c (session take-over).
func (b *Broker) offline(c *client) {
	ref := c.dev
	mu := b.stripe(ref)
	mu.Lock()
	defer mu.Unlock()
	b.connected.Add(-1)
	c.nmu.Lock()
	if c.listening {
		b.listening.Add(-1)
	}
	c.nmu.Unlock()
	b.mu.Lock()
	replaced := b.byDevice[ref] != c
	if !replaced {
		delete(b.byDevice, ref)
	}
	b.mu.Unlock()
	if replaced || b.closing.Load() {
		return
	}
	ctx, cancel := b.callCtx()
	defer cancel()
	if err := b.devices.DeviceConnected(ctx, ref, false); err != nil {
		b.log.Warn("recording device offline", "device", ref.ProductKey+"/"+ref.Name, "err", err)
	}
}

// listen delivers the device's pending notices and marks it listening.
func (b *Broker) listen(c *client) {
	c.nmu.Lock()
	defer c.nmu.Unlock()
	if c.listening || c.isClosed() {
		return
	}
	ctx, cancel := b.callCtx()
	defer cancel()
	now := b.opts.Now()
	for _, m := range c.session().Modules {
		n, err := b.devices.PushNotice(ctx, c.dev, m)
		if err != nil {
			b.log.Warn("looking up pending notice", "device", c.dev.ProductKey+"/"+c.dev.Name, "module", m, "err", err)
			continue
		}
		if n == nil {
			continue
		}
		if err := b.publishNotice(c, *n); err != nil {
			b.log.Warn("pending notice not published", "device", n.ProductKey+"/"+n.DeviceName, "task", n.TaskID, "err", err)
			continue
		}
		if c.sentOnListen == nil {
			c.sentOnListen = make(map[noticeKey]time.Time)
		}
		c.sentOnListen[noticeKey{n.TaskID, n.Attempt}] = now
	}
	c.listening = true
	b.listening.Add(1)
}

// embeddedLink is the Link of messages received on the embedded broker.
type embeddedLink struct{ b *Broker }

func (l embeddedLink) Publish(_ context.Context, topic string, payload []byte) error {
	l.b.publish(topic, payload, 1)
	return nil
}

func (l embeddedLink) Tell(_ context.Context, topic string, payload []byte) error {
	l.b.publish(topic, payload, 0)
	return nil
}

// Online does nothing: the broker sees connections itself.
func (embeddedLink) Online(context.Context, ota.DeviceRef, bool) error { return nil }

// connect handles a CONNECT: the dialects authenticate it, and an accepted
// device gets its CONNACK, then (in this order, as the device's next
// packets wait behind them) its presence, its AutoSubscribe subscriptions,
// its dialect's ConnectHook and its pending notices.
//
// A device that asks for a session that outlives the connection (MQTT 3
// clean session false, MQTT 5 a session expiry) gets its subscriptions back
// when it reconnects within maxSessionKeep, and CONNACK says the session is
// present: vendor SDKs that connect so (Alibaba's Node SDK does by default)
// subscribe once and never again, and would hear no notice after a
// reconnect. Messages in flight are not kept: pending notices are looked up
// again when the device listens.
func (b *Broker) connect(c *client, pk *packets.Packet) {
	refuse := func(code packets.Code) {
		c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: connackCode(c.version, code)})
		c.close(fmt.Errorf("CONNECT refused: %s", code.Reason), false)
	}
	switch v := pk.ConnectValidate(); {
	case v == packets.ErrProtocolViolationProtocolName || v == packets.ErrProtocolViolationProtocolVersion:
		b.log.Info("device connection refused: unsupported MQTT version; connect with MQTT 3.1, 3.1.1 or 5", "remote", c.t.remote(), "protocol", string(pk.Connect.ProtocolName), "version", pk.ProtocolVersion)
		refuse(packets.ErrUnsupportedProtocolVersion)
		return
	case v != packets.CodeSuccess:
		b.log.Info("device connection refused: malformed CONNECT", "remote", c.t.remote(), "err", v.Reason)
		refuse(v)
		return
	}
	conn := Connect{
		ClientID: pk.Connect.ClientIdentifier,
		Username: string(pk.Connect.Username),
		Password: pk.Connect.Password,
		Remote:   c.t.remote(),
		Cert:     c.t.cert(),
	}
	sess, d, code := b.admit(conn)
	if sess == nil {
		refuse(code)
		return
	}
	names := pack(sess.Device.ProductKey, sess.Device.Name, conn.ClientID)
	c.mu.Lock()
	c.dev, c.id = ota.DeviceRef{ProductKey: names[0], Name: names[1]}, names[2]
	c.shape, c.dialect = b.shapes.intern(sess), d
	if rm := pk.Properties.ReceiveMaximum; rm > 0 && rm < c.sendMax {
		c.sendMax = rm
	}
	c.maxOut = pk.Properties.MaximumPacketSize
	c.keepFor = sessionKeep(c.version, pk)
	closed := c.closed
	c.mu.Unlock()
	if closed {
		// The device hung up while it was authenticated: what it sent
		// after CONNECT is still handled, but it takes no session over
		// and never counts as online.
		return
	}
	b.mu.Lock()
	var old *client
	var kept keptSession
	if c.id != "" {
		old = b.byClient[c.id]
		b.byClient[c.id] = c
		kept = b.kept[c.id]
		delete(b.kept, c.id)
	}
	b.mu.Unlock()
	// The session to resume: the connection taken over, else the one kept.
	var resume []string
	present := false
	if !pk.Connect.Clean {
		switch {
		case old != nil && old.dev == c.dev:
			old.mu.Lock()
			resume, present = slices.Clone(old.subs), true
			old.mu.Unlock()
		case kept.dev == c.dev && time.Now().Before(kept.expires):
			resume, present = kept.subs, true
		}
	}
	if old != nil {
		old.disconnect(packets.ErrSessionTakenOver, errTakenOver)
	}
	ack := &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, SessionPresent: present}
	if c.version == 5 {
		ack.Properties = packets.Properties{
			ReceiveMaximum:    uint16(b.opts.MaxInflight),
			TopicAliasMaximum: topicAliasMaximum,
			MaximumPacketSize: b.opts.MaxPacketSize,
			MaximumQos:        1, MaximumQosFlag: true,
			RetainAvailable: 0, RetainAvailableFlag: true, // devices have nothing to retain
			SharedSubAvailable: 0, SharedSubAvailableFlag: true,
			SubIDAvailable: 0, SubIDAvailableFlag: true,
			// The expiry granted, when shorter than the one asked for.
			SessionExpiryInterval:     uint32(c.keepFor / time.Second),
			SessionExpiryIntervalFlag: time.Duration(pk.Properties.SessionExpiryInterval)*time.Second > c.keepFor,
		}
	}
	c.send(ack)
	c.established = true
	b.online(c)
	listening := false
	for _, f := range sess.AutoSubscribe {
		// The platform subscribes the device, as the vendor's does.
		c.addSub(f, 1)
		if sess.NoticeTopic != "" && matches(f, sess.NoticeTopic) {
			listening = true
		}
	}
	for _, f := range resume {
		// Granted before, checked again: the device's topics are what its
		// session says now.
		if !anyCovers(sess.Subscribe, f) {
			continue
		}
		c.addSub(f, 1)
		if sess.NoticeTopic != "" && matches(f, sess.NoticeTopic) {
			listening = true
		}
	}
	if hook, ok := d.(ConnectHook); ok {
		ctx, cancel := b.callCtx()
		err := hook.Connected(ctx, sess, embeddedLink{b})
		cancel()
		if err != nil {
			b.log.Warn("device connect hook failed", "dialect", d.Name(), "device", sess.Device.ProductKey+"/"+sess.Device.Name, "err", err)
		}
	}
	if listening {
		b.listen(c)
	}
}

// admit runs the dialects on a CONNECT, in order: the session and dialect
// that accept it, or the reason code of the refusal (logged here).
func (b *Broker) admit(c Connect) (*Session, Dialect, packets.Code) {
	if b.closing.Load() {
		return nil, nil, packets.ErrServerShuttingDown
	}
	ctx, cancel := b.callCtx()
	defer cancel()
	var mismatch string
	for _, d := range b.dialects {
		sess, other, err := b.authenticate(ctx, d, c)
		if errors.Is(err, ErrNotMine) {
			continue
		}
		if err != nil {
			b.log.Info("device connection refused", "dialect", d.Name(), "client_id", c.ClientID, "remote", c.Remote, "certificate", c.Cert != nil, "err", err)
			switch ota.ErrorCode(err) {
			case ota.CodeUnavailable:
				return nil, nil, packets.ErrServerUnavailable // the device retries later
			case ota.CodeForbidden:
				return nil, nil, packets.ErrNotAuthorized
			}
			return nil, nil, packets.ErrBadUsernameOrPassword
		}
		if other != "" {
			// The credentials parse in this scheme but the product speaks
			// another protocol: only that protocol may accept its devices.
			mismatch = other
			continue
		}
		return sess, d, packets.CodeSuccess
	}
	if mismatch != "" {
		b.log.Info("device connection refused: connect with the product's protocol", "client_id", c.ClientID, "remote", c.Remote, "err", mismatch)
		return nil, nil, packets.ErrNotAuthorized
	}
	b.log.Info("device connection refused: no dialect recognises its credentials", "client_id", c.ClientID, "username", c.Username, "remote", c.Remote)
	return nil, nil, packets.ErrBadUsernameOrPassword
}

// connackCode is a refusal's CONNACK code: MQTT 5's reason code, or the
// MQTT 3 return code that says the same (3.1.1 §3.2.2.3).
func connackCode(version byte, code packets.Code) byte {
	if version == 5 {
		return code.Code
	}
	switch code {
	case packets.ErrUnsupportedProtocolVersion:
		return 0x01
	case packets.ErrClientIdentifierNotValid:
		return 0x02
	case packets.ErrServerUnavailable, packets.ErrServerShuttingDown:
		return 0x03
	case packets.ErrBadUsernameOrPassword:
		return 0x04
	}
	return 0x05 // not authorized
}

// authenticate runs one dialect on a CONNECT: the session it grants, or a
// non-empty mismatch when the device's product speaks another protocol, or
// the refusal (ErrNotMine: not this dialect's scheme). What the device
// proved (its secret through Authenticate, a verified client certificate
// through Identify) is judged by ota.Product.CheckDeviceAuth against the
// product's auth mode; the dialects only parse and check secrets.
func (b *Broker) authenticate(ctx context.Context, d Dialect, c Connect) (sess *Session, mismatch string, err error) {
	idf, canIdentify := d.(Identifier)
	var proof ota.DeviceProof
	if c.Cert != nil {
		proof.Cert, proof.CertCN = true, c.Cert.Subject.CommonName
	}
	if c.Cert != nil && canIdentify {
		sess, err = idf.Identify(ctx, c)
	} else {
		sess, err = d.Authenticate(ctx, c)
		if err != nil && canIdentify {
			// A wrong, missing or unparsable secret: say so plainly when
			// the product wants a certificate instead.
			if s, ierr := idf.Identify(ctx, c); ierr == nil {
				if prod, perr := b.devices.DeviceProduct(ctx, s.Device.ProductKey); perr == nil && string(prod.Protocol) == d.Name() && prod.Auth == ota.AuthX509 {
					return nil, "", prod.CheckDeviceAuth(s.Device.Name, proof)
				}
			}
		}
		proof.Secret = err == nil
	}
	if err != nil {
		return nil, "", err
	}
	prod, err := b.devices.DeviceProduct(ctx, sess.Device.ProductKey)
	if err != nil {
		return nil, "", err
	}
	if string(prod.Protocol) != d.Name() {
		return nil, fmt.Sprintf("product %q speaks the %s protocol, not %s", sess.Device.ProductKey, prod.Protocol, d.Name()), nil
	}
	if !proof.Secret && prod.Auth != ota.AuthX509 {
		// Identified by certificate, but the product takes secrets: the
		// secret decides, as for any device.
		name := sess.Device.Name
		s2, aerr := d.Authenticate(ctx, c)
		if aerr != nil {
			return nil, "", fmt.Errorf("%w (%v)", prod.CheckDeviceAuth(name, proof), aerr)
		}
		sess, proof.Secret = s2, true
	}
	if err := prod.CheckDeviceAuth(sess.Device.Name, proof); err != nil {
		return nil, "", err
	}
	return sess, "", nil
}

// devicePublish handles a PUBLISH from a device: its topic ACL, then its
// dialect. The PUBACK follows only a message the service took or dropped as
// invalid; on a transient error none is sent, so the device sends it again.
// Device messages are for the server only: they are never routed to other
// clients.
func (b *Broker) devicePublish(c *client, pk *packets.Packet) {
	sess, d := c.session(), c.dialect
	ack := func(code packets.Code) {
		if pk.FixedHeader.Qos > 0 {
			c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID, ReasonCode: code.Code})
		}
	}
	if !anyMatches(sess.Publish, pk.TopicName) {
		b.log.Info("device message refused: the device may not publish to this topic", "device", sess.Device.ProductKey+"/"+sess.Device.Name, "topic", pk.TopicName)
		switch {
		case pk.FixedHeader.Qos == 0:
			// Dropped: QoS 0 has no acknowledgement to refuse.
		case c.version == 5:
			ack(packets.ErrNotAuthorized)
		default:
			// MQTT 3 cannot refuse a QoS 1 message: the connection ends.
			c.close(errors.New("published to a topic it may not"), false)
		}
		return
	}
	ctx, cancel := b.callCtx()
	defer cancel()
	err := d.Handle(ctx, Message{Topic: pk.TopicName, Payload: pk.Payload, Session: sess}, embeddedLink{b})
	switch {
	case err == nil:
		b.m.messages.WithLabelValues(d.Name(), resultHandled).Inc()
	case deviceproto.Transient(err) || ctx.Err() != nil:
		// No PUBACK: the device sends it again.
		b.m.messages.WithLabelValues(d.Name(), resultRetry).Inc()
		b.log.Warn("device message not processed; the device will resend it", "device", sess.Device.ProductKey+"/"+sess.Device.Name, "topic", pk.TopicName, "err", err)
		return
	default:
		b.m.messages.WithLabelValues(d.Name(), resultDropped).Inc()
		b.log.Info("device message dropped", "device", sess.Device.ProductKey+"/"+sess.Device.Name, "topic", pk.TopicName, "err", err)
	}
	ack(packets.CodeSuccess)
}

// subscribe handles a SUBSCRIBE: each filter must be covered by the
// session's Subscribe filters (QoS granted: 1 at most). A granted filter
// covering the notice topic makes the device listening, after the SUBACK.
func (b *Broker) subscribe(c *client, pk *packets.Packet) {
	sess := c.session()
	codes := make([]byte, len(pk.Filters))
	listen := false
	for i, f := range pk.Filters {
		switch {
		case !validFilter(f.Filter):
			codes[i] = subackRefusal(c.version, packets.ErrTopicFilterInvalid)
		case !anyCovers(sess.Subscribe, f.Filter):
			codes[i] = subackRefusal(c.version, packets.ErrNotAuthorized)
		default:
			qos := min(f.Qos, 1)
			// Its own copy: the SUBSCRIBE packet it came in is not kept.
			c.addSub(strings.Clone(f.Filter), qos)
			codes[i] = qos
			if sess.NoticeTopic != "" && matches(f.Filter, sess.NoticeTopic) {
				listen = true
			}
		}
	}
	c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, PacketID: pk.PacketID, ReasonCodes: codes})
	if listen {
		b.listen(c)
	}
}

// subackRefusal is a refused filter's SUBACK code (MQTT 3 has one: 0x80).
func subackRefusal(version byte, code packets.Code) byte {
	if version == 5 {
		return code.Code
	}
	return packets.ErrUnspecifiedError.Code
}

func (b *Broker) unsubscribe(c *client, pk *packets.Packet) {
	codes := make([]byte, len(pk.Filters))
	for i, f := range pk.Filters {
		if !c.removeSub(f.Filter) {
			codes[i] = packets.CodeNoSubscriptionExisted.Code
		}
	}
	c.send(&packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsuback}, PacketID: pk.PacketID, ReasonCodes: codes})
}
