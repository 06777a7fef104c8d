package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/deviceproto"
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
	// mochi's defaults (8192 pending writes, 8192 in flight, 2 KiB buffers)
	// are far more than they need: they cost 76 KB of heap per connection
	// (9.5 KB with these), and they let one slow device make the broker
	// hold thousands of packets. Idle RSS is about 42 KB per connection
	// either way (BenchmarkBrokerMemoryPerConnection): mostly the ~20 KB of
	// stack of mochi's two goroutines per client, which no option changes.
	MaxPendingWrites int    // default 32
	MaxInflight      int    // default 32
	BufferSize       int    // read and write buffer bytes, default 1024
	MaxPacketSize    uint32 // default 256 KiB
	// CallTimeout bounds each service call made for a device (default 30 s).
	CallTimeout time.Duration
	// Registerer receives the broker's metrics (nil: none).
	Registerer prometheus.Registerer
}

// Broker is the embedded MQTT broker (mochi-mqtt). It authenticates devices
// through its dialects, confines each device to its own topics, hands device
// messages to the dialects, tracks who is online, and implements
// service.Notifier by publishing notices to devices that listen.
type Broker struct {
	srv      *mochi.Server
	devices  deviceproto.Devices
	dialects []Dialect
	log      *slog.Logger
	opts     BrokerOptions
	addr     net.Addr

	ctx    context.Context
	cancel context.CancelFunc

	sessions sync.Map // *mochi.Client → *conn, from CONNECT to disconnect
	mu       sync.RWMutex
	byDevice map[ota.DeviceRef]*conn // the current connection of each device
	stripes  [64]sync.Mutex          // serialise online/offline per device

	ln      *brokerListener   // the first of lns (tests look at its connections)
	lns     []*brokerListener // own every accepted connection, so Close can end them itself
	closing atomic.Bool
	wg      sync.WaitGroup

	connected atomic.Int64
	listening atomic.Int64
	notified  atomic.Int64 // notices published
	m         *metrics
}

// conn is one authenticated device connection.
type conn struct {
	cl          *mochi.Client
	sess        *Session
	dialect     Dialect
	established atomic.Bool // the session reached OnSessionEstablished

	mu        sync.Mutex
	listening bool // subscribed to its notice topic and pending notices delivered
	// sentOnListen holds the (task, attempt) notices the listen-time lookup
	// already sent, so the engine's own Notify for the same dispatch is not
	// sent twice. Keyed by attempt too: a retry of the task is a new notice.
	sentOnListen map[noticeKey]time.Time
}

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
	if opts.BufferSize <= 0 {
		opts.BufferSize = 1024
	}
	if opts.MaxPacketSize == 0 {
		opts.MaxPacketSize = 256 << 10
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	ln := opts.Listener
	if ln == nil && (opts.Addr != "" || opts.TLSListener == nil) {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("embedded MQTT broker cannot listen on %q: %w (choose another address with --mqtt, or --mqtt off)", opts.Addr, err)
		}
	}
	var nls []net.Listener
	for _, l := range []net.Listener{ln, opts.TLSListener} {
		if l != nil {
			nls = append(nls, l)
		}
	}
	closeAll := func() {
		for _, l := range nls {
			l.Close()
		}
	}

	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = int32(opts.MaxPendingWrites)
	caps.MaximumInflight = uint16(opts.MaxInflight)
	caps.ReceiveMaximum = uint16(opts.MaxInflight)
	caps.MaximumPacketSize = opts.MaxPacketSize
	caps.TopicAliasMaximum = 16
	caps.MaximumSessionExpiryInterval = 3600 // a device's persistent session outlives it by an hour at most
	caps.RetainAvailable = 0                 // devices have nothing to retain
	caps.Compatibilities.ObscureNotAuthorized = false

	b := &Broker{
		devices:  devices,
		dialects: opts.Dialects,
		log:      opts.Logger.With("component", "mqtt"),
		opts:     opts,
		addr:     nls[0].Addr(),
		byDevice: make(map[ota.DeviceRef]*conn),
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
	b.srv = mochi.New(&mochi.Options{
		Capabilities:             caps,
		ClientNetReadBufferSize:  opts.BufferSize,
		ClientNetWriteBufferSize: opts.BufferSize,
		InlineClient:             true,
		SysTopicResendInterval:   3600,
		// mochi logs every refused or dropped client at Warn; ours are logged
		// by the hook with the reason.
		Logger: slog.New(levelFilter{opts.Logger.Handler(), slog.LevelError}),
	})
	if err := b.srv.AddHook(&hook{b: b}, nil); err != nil {
		closeAll()
		return nil, err
	}
	for _, l := range nls {
		id := "updraft"
		if l == opts.TLSListener {
			id = "updraft-tls"
		}
		bl := newBrokerListener(id, l)
		if err := b.srv.AddListener(bl); err != nil {
			closeAll()
			return nil, err
		}
		b.lns = append(b.lns, bl)
	}
	b.ln = b.lns[0]
	if err := b.srv.Serve(); err != nil {
		closeAll()
		return nil, err
	}
	if ln != nil {
		b.log.Info("embedded MQTT broker listening", "addr", ln.Addr().String())
	}
	if opts.TLSListener != nil {
		b.log.Info("embedded MQTT broker listening for MQTT over TLS", "addr", opts.TLSListener.Addr().String())
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

// Close disconnects every device and stops the broker within about
// 2×shutdownBound whatever the devices do. Devices connected at shutdown are
// not marked offline one by one (they reconnect to the next server within
// seconds and that marks them online again).
//
// mochi's own shutdown can deadlock, and Updraft does not use it to end
// connections: Server.Close asks each listener to disconnect its clients,
// and mochi's client listing takes the same read lock twice, so a client
// connecting or disconnecting in between (a waiting writer) blocks both
// forever (mochi-mqtt/server #488, unfixed in v2.7.9, the newest release).
// It then waits for connection goroutines whose WaitGroup.Add runs inside
// the goroutine itself, racing the Wait. brokerListener is Updraft's own
// listener instead: it counts each connection before starting it, and Close
// ends the connections by closing their sockets, waits for their goroutines,
// and only then calls Server.Close, for which nothing is left to disconnect
// (brokerListener.Close does not call mochi's client listing at all).
func (b *Broker) Close() error {
	if b.closing.Swap(true) {
		return nil
	}
	b.cancel() // device calls in flight (authentication, reports) return now
	var wg sync.WaitGroup
	var stuck atomic.Bool
	for _, l := range b.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !l.shutdown(shutdownBound) {
				stuck.Store(true)
			}
		}()
	}
	wg.Wait()
	if stuck.Load() {
		b.log.Error("embedded MQTT broker: device connections still running after their sockets were closed; stopping anyway", "waited", shutdownBound)
	}
	var err error
	if !waitBounded(func() { err = b.srv.Close() }, shutdownBound) {
		b.log.Error("embedded MQTT broker: mochi did not stop; stopping anyway", "waited", shutdownBound)
	}
	if !waitBounded(b.wg.Wait, shutdownBound) {
		b.log.Error("embedded MQTT broker: notice deliveries still running; stopping anyway", "waited", shutdownBound)
	}
	return err
}

// shutdownBound bounds each waiting step of Close.
const shutdownBound = 5 * time.Second

// connectTimeout is how long a new connection may take to send CONNECT
// (mochi then replaces the deadline by the session's keep-alive).
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

// brokerListener is the broker's mochi listener (listeners.Listener) on a
// net.Listener. Unlike mochi's listeners.Net it owns the connections it
// accepts: it registers each one before handing it to mochi, and shutdown
// closes them all and waits for mochi to finish with them.
type brokerListener struct {
	id     string
	ln     net.Listener
	served chan struct{} // closed when Serve's accept loop has returned

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per connection handed to mochi
}

func newBrokerListener(id string, ln net.Listener) *brokerListener {
	return &brokerListener{id: id, ln: ln, served: make(chan struct{}), conns: make(map[net.Conn]struct{})}
}

func (l *brokerListener) ID() string              { return l.id }
func (l *brokerListener) Address() string         { return l.ln.Addr().String() }
func (l *brokerListener) Protocol() string        { return l.ln.Addr().Network() }
func (l *brokerListener) Init(*slog.Logger) error { return nil }

// Serve accepts connections until the listener is closed.
func (l *brokerListener) Serve(establish listeners.EstablishFn) {
	defer close(l.served)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // transient (e.g. out of file descriptors): keep accepting
			}
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		// mochi sets no deadline until CONNECT arrives: without this a
		// socket that never sends one would be held open forever.
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		l.conns[c] = struct{}{}
		l.wg.Add(1) // before the goroutine starts, so shutdown's Wait counts it
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_ = establish(l.id, c) // refusals are logged by the hook with their reason
			c.Close()
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Close is mochi's request to stop the listener and disconnect its clients.
// shutdown has done both before Broker.Close calls Server.Close, so it only
// makes sure the socket is closed; it deliberately never calls closeClients
// (mochi's deadlock-prone client listing).
func (l *brokerListener) Close(listeners.CloseFn) {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.ln.Close()
}

// shutdown stops accepting, closes every connection and waits up to d for
// mochi to finish with them; it reports whether they all finished.
func (l *brokerListener) shutdown(d time.Duration) bool {
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	return waitBounded(func() {
		<-l.served // once the accept loop is gone no Add can follow the Wait
		l.wg.Wait()
	}, d)
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
		c.mu.Lock()
		if !c.listening {
			c.mu.Unlock()
			continue
		}
		if at, ok := c.sentOnListen[noticeKey{n.TaskID, n.Attempt}]; ok {
			delete(c.sentOnListen, noticeKey{n.TaskID, n.Attempt})
			if now.Sub(at) < duplicateWindow {
				c.mu.Unlock()
				continue
			}
		}
		err := b.publishNotice(c, n)
		c.mu.Unlock()
		if err != nil {
			b.log.Warn("notice not published", "device", n.ProductKey+"/"+n.DeviceName, "task", n.TaskID, "err", err)
		}
	}
	return nil
}

func (b *Broker) publishNotice(c *conn, n ota.Notice) error {
	topic, payload, err := c.dialect.Render(n)
	if err != nil {
		return err
	}
	if err := b.srv.Publish(topic, payload, false, 1); err != nil {
		return ota.Errorf(ota.CodeUnavailable, "publishing to %s: %v", topic, err)
	}
	b.notified.Add(1)
	return nil
}

func (b *Broker) current(ref ota.DeviceRef) *conn {
	b.mu.RLock()
	defer b.mu.RUnlock()
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
func (b *Broker) online(c *conn) {
	ref := c.sess.Device
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
func (b *Broker) offline(c *conn) {
	ref := c.sess.Device
	mu := b.stripe(ref)
	mu.Lock()
	defer mu.Unlock()
	b.connected.Add(-1)
	c.mu.Lock()
	if c.listening {
		b.listening.Add(-1)
	}
	c.mu.Unlock()
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
func (b *Broker) listen(c *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listening || c.cl.Closed() {
		return
	}
	ctx, cancel := b.callCtx()
	defer cancel()
	now := b.opts.Now()
	for _, m := range c.sess.Modules {
		n, err := b.devices.PushNotice(ctx, c.sess.Device, m)
		if err != nil {
			b.log.Warn("looking up pending notice", "device", c.sess.Device.ProductKey+"/"+c.sess.Device.Name, "module", m, "err", err)
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
	if err := l.b.srv.Publish(topic, payload, false, 1); err != nil {
		return ota.Errorf(ota.CodeUnavailable, "publishing to %s: %v", topic, err)
	}
	return nil
}

func (l embeddedLink) Tell(_ context.Context, topic string, payload []byte) error {
	if err := l.b.srv.Publish(topic, payload, false, 0); err != nil {
		return ota.Errorf(ota.CodeUnavailable, "publishing to %s: %v", topic, err)
	}
	return nil
}

// Online does nothing: the broker sees connections itself.
func (embeddedLink) Online(context.Context, ota.DeviceRef, bool) error { return nil }

// hook connects mochi's events to the broker.
type hook struct {
	mochi.HookBase
	b *Broker
}

func (*hook) ID() string { return "updraft" }

func (*hook) Provides(e byte) bool {
	switch e {
	case mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnSessionEstablished,
		mochi.OnDisconnect, mochi.OnSubscribed, mochi.OnPublish:
		return true
	}
	return false
}

func (h *hook) conn(cl *mochi.Client) *conn {
	if v, ok := h.b.sessions.Load(cl); ok {
		return v.(*conn)
	}
	return nil
}

func (h *hook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	b := h.b
	if b.closing.Load() {
		return false
	}
	c := Connect{
		ClientID: pk.Connect.ClientIdentifier,
		Username: string(pk.Connect.Username),
		Password: pk.Connect.Password,
		Remote:   cl.Net.Remote,
		Cert:     peerCert(cl.Net.Conn),
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
			return false
		}
		if other != "" {
			// The credentials parse in this scheme but the product speaks
			// another protocol: only that protocol may accept its devices.
			mismatch = other
			continue
		}
		b.sessions.Store(cl, &conn{cl: cl, sess: sess, dialect: d})
		return true
	}
	if mismatch != "" {
		b.log.Info("device connection refused: connect with the product's protocol", "client_id", c.ClientID, "remote", c.Remote, "err", mismatch)
		return false
	}
	b.log.Info("device connection refused: no dialect recognises its credentials", "client_id", c.ClientID, "username", c.Username, "remote", c.Remote)
	return false
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

func (h *hook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	c := h.conn(cl)
	if c == nil {
		return false
	}
	if write {
		return anyMatches(c.sess.Publish, topic)
	}
	return anyCovers(c.sess.Subscribe, topic)
}

func (h *hook) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	c := h.conn(cl)
	if c == nil {
		return
	}
	c.established.Store(true)
	h.b.online(c)
	listening := false
	for _, f := range c.sess.AutoSubscribe {
		// What mochi does for a SUBSCRIBE (server.go processSubscribe),
		// done by the platform on the device's behalf.
		sub := packets.Subscription{Filter: f, Qos: 1}
		h.b.srv.Topics.Subscribe(cl.ID, sub)
		cl.State.Subscriptions.Add(f, sub)
		if c.sess.NoticeTopic != "" && matches(f, c.sess.NoticeTopic) {
			listening = true
		}
	}
	hook, hasHook := c.dialect.(ConnectHook)
	if !listening && !hasHook {
		return
	}
	// After the CONNACK, not before it: act from another goroutine.
	h.b.wg.Add(1)
	go func() {
		defer h.b.wg.Done()
		if hasHook {
			ctx, cancel := h.b.callCtx()
			err := hook.Connected(ctx, c.sess, embeddedLink{h.b})
			cancel()
			if err != nil {
				h.b.log.Warn("device connect hook failed", "dialect", c.dialect.Name(), "device", c.sess.Device.ProductKey+"/"+c.sess.Device.Name, "err", err)
			}
		}
		if listening {
			h.b.listen(c)
		}
	}()
}

func (h *hook) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	v, ok := h.b.sessions.LoadAndDelete(cl)
	if !ok {
		return
	}
	if c := v.(*conn); c.established.Load() {
		h.b.offline(c)
	}
}

func (h *hook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	c := h.conn(cl)
	if c == nil || c.sess.NoticeTopic == "" {
		return
	}
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < packets.ErrUnspecifiedError.Code && matches(f.Filter, c.sess.NoticeTopic) {
			// After the SUBACK, not before it: deliver from another goroutine.
			h.b.wg.Add(1)
			go func() {
				defer h.b.wg.Done()
				h.b.listen(c)
			}()
			return
		}
	}
}

func (h *hook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the server's own publish
	}
	c := h.conn(cl)
	if c == nil {
		return pk, packets.ErrRejectPacket
	}
	ctx, cancel := h.b.callCtx()
	defer cancel()
	err := c.dialect.Handle(ctx, Message{Topic: pk.TopicName, Payload: pk.Payload, Session: c.sess}, embeddedLink{h.b})
	switch {
	case err == nil:
		h.b.m.messages.WithLabelValues(c.dialect.Name(), resultHandled).Inc()
	case deviceproto.Transient(err) || ctx.Err() != nil:
		// No PUBACK: the device sends it again.
		h.b.m.messages.WithLabelValues(c.dialect.Name(), resultRetry).Inc()
		h.b.log.Warn("device message not processed; the device will resend it", "device", c.sess.Device.ProductKey+"/"+c.sess.Device.Name, "topic", pk.TopicName, "err", err)
		return pk, packets.ErrRejectPacket
	default:
		h.b.m.messages.WithLabelValues(c.dialect.Name(), resultDropped).Inc()
		h.b.log.Info("device message dropped", "device", c.sess.Device.ProductKey+"/"+c.sess.Device.Name, "topic", pk.TopicName, "err", err)
	}
	// Acknowledged and consumed: device messages are for the server only.
	return pk, packets.CodeSuccessIgnore
}

// peerCert is the verified client certificate of a TLS connection, nil for
// plain connections and TLS ones without a certificate.
func peerCert(c net.Conn) *x509.Certificate {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil // not verified: never trusted, even if sent
	}
	return st.VerifiedChains[0][0]
}

// levelFilter passes only records at or above min to h.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(n), f.min}
}
