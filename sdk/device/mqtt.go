package device

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/sdk/device/wire"
	"github.com/updraft-ota/updraft/sdk/mqttstore"
)

// MQTTConfig configures a device on MQTT.
type MQTTConfig struct {
	Config
	// Broker is the server's MQTT address: "host:1883", "tcp://host:1883"
	// or "ssl://host:8883".
	Broker string
	// TLS configures ssl:// connections.
	TLS *tls.Config
	// KeepAlive is the MQTT keep-alive (default 60 s).
	KeepAlive time.Duration
	// AckTimeout bounds the wait for the broker to acknowledge a message or
	// answer a check (default 10 s); an unacknowledged report is sent again.
	AckTimeout time.Duration
	// Attempts is how many times a report is sent before giving up
	// (default 8; the pause between attempts doubles from 0.5 s up to
	// AckTimeout, ±50 %, so a report survives a reconnect of about a
	// minute).
	Attempts int
	// ConnectTimeout bounds each connection attempt (default 10 s).
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the back-off between reconnects (default 30 s).
	MaxReconnectInterval time.Duration
	// CheckInterval is how often the device asks for pending updates on its
	// own (default 30 minutes, spread at random; negative: never). Pushed
	// notices normally make this unnecessary; it is the safety net for one
	// lost on the way (an external broker, a server crash between deciding
	// and pushing).
	CheckInterval time.Duration
	// OnConnect and OnConnectionLost, if set, are told about the connection.
	OnConnect        func()
	OnConnectionLost func(error)
}

// MQTT is a device connected over MQTT: notices are pushed to it.
type MQTT struct {
	cfg  MQTTConfig
	c    paho.Client
	disp *dispatcher

	mu        sync.Mutex
	versions  map[string]string
	ready     chan struct{} // closed after the first connect's setup
	once      sync.Once
	checkOnce sync.Once

	checkMu sync.Mutex
	replies chan wire.CheckReply

	// since is the current connection's stamp (Unix ms, strictly
	// increasing), sent in its online status and in its will: the server
	// orders one device's presence by it, since an external broker may hand
	// the will of a dropped connection to the server after the online status
	// of the connection that replaced it.
	since atomic.Int64
}

// nextSince stamps a new connection: the clock in ms, or one more than the
// last stamp if the clock has not moved on.
func (d *MQTT) nextSince() int64 {
	s := max(d.cfg.Now().UnixMilli(), d.since.Load()+1)
	d.since.Store(s)
	return s
}

// NewMQTT prepares a device on MQTT; Start connects it.
func NewMQTT(cfg MQTTConfig) (*MQTT, error) {
	cfg.defaults()
	if cfg.Product == "" || cfg.Name == "" || cfg.Secret == "" {
		return nil, errors.New("device: Product, Name and Secret are required")
	}
	if cfg.Broker == "" {
		return nil, errors.New("device: Broker (host:port) is required")
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 60 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 8
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 30 * time.Second
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = 30 * time.Minute
	}
	d := &MQTT{cfg: cfg, disp: newDispatcher(), versions: map[string]string{}, ready: make(chan struct{}), replies: make(chan wire.CheckReply, 1)}
	for m, v := range cfg.Versions {
		d.versions[module(m)] = v
	}
	broker := cfg.Broker
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	p, n := cfg.Product, cfg.Name
	offline, _ := json.Marshal(wire.Status{Online: false, Since: d.nextSince()})
	o := paho.NewClientOptions().AddBroker(broker).
		SetClientID(wire.ClientID(p, n)).
		// A fresh signature on every (re)connect: the timestamp must be recent.
		SetCredentialsProvider(func() (string, string) {
			now := cfg.Now()
			return wire.Username(p, n, now), wire.Sign(cfg.Secret, p, n, now.UnixMilli())
		}).
		SetCleanSession(true).SetStore(mqttstore.New()). // copies: paho#703
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.AckTimeout).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.AckTimeout).
		SetBinaryWill(wire.Topic(p, n, wire.TopicStatus), offline, 1, false).
		// Every reconnect is a new connection with its own stamp, in the will
		// it leaves and in the online status it sends (onConnect).
		SetReconnectingHandler(func(_ paho.Client, o *paho.ClientOptions) {
			o.WillPayload, _ = json.Marshal(wire.Status{Online: false, Since: d.nextSince()})
		}).
		SetOnConnectHandler(d.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			cfg.Logger.Debug("device: connection lost; reconnecting", "device", p+"/"+n, "err", err)
			if cfg.OnConnectionLost != nil {
				cfg.OnConnectionLost(err)
			}
		})
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	d.c = paho.NewClient(o)
	return d, nil
}

// OnNotice sets the notice handler.
func (d *MQTT) OnNotice(h Handler) { d.disp.setHandler(h) }

// Start connects, subscribes to notices, announces the device online and
// reports its versions. Later connection losses are repaired in the
// background (with the same steps on every reconnect).
func (d *MQTT) Start(ctx context.Context) error {
	tok := d.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("device %s/%s: connecting to %s: %w", d.cfg.Product, d.cfg.Name, d.cfg.Broker, err)
	}
	select {
	case <-d.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if d.cfg.CheckInterval > 0 {
		d.checkOnce.Do(func() {
			d.disp.wg.Add(1)
			go d.recheck()
		})
	}
	return nil
}

// recheck asks for pending updates every CheckInterval (the first time at
// a random point of the first interval, so a fleet does not ask at once).
func (d *MQTT) recheck() {
	defer d.disp.wg.Done()
	wait := time.Duration(rand.Int64N(int64(d.cfg.CheckInterval)))
	for {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.disp.ctx.Done():
			t.Stop()
			return
		}
		wait = d.cfg.CheckInterval
		if !d.c.IsConnectionOpen() {
			continue // the reconnect announces the device, which delivers what waits
		}
		d.mu.Lock()
		mods := make([]string, 0, len(d.versions)+1)
		for m := range d.versions {
			mods = append(mods, m)
		}
		d.mu.Unlock()
		if len(mods) == 0 {
			mods = append(mods, DefaultModule)
		}
		for _, m := range mods {
			if d.disp.busy(m) {
				continue
			}
			n, err := d.Check(d.disp.ctx, m)
			if err != nil {
				d.cfg.Logger.Debug("device: periodic check failed", "device", d.cfg.Product+"/"+d.cfg.Name, "err", err)
				continue
			}
			if n != nil {
				n.Module = module(n.Module)
				d.disp.deliver(*n)
			}
		}
	}
}

// onConnect runs after every (re)connect: subscribe first, so that nothing
// the server sends in reply to the announcements is missed. It keeps trying
// to subscribe while this connection lasts; if the connection drops, the
// reconnect runs it again.
func (d *MQTT) onConnect(c paho.Client) {
	p, n := d.cfg.Product, d.cfg.Name
	filters := map[string]byte{
		wire.Topic(p, n, wire.TopicNotice):     1,
		wire.Topic(p, n, wire.TopicCheckReply): 1,
	}
	if _, err := backoff.Retry(d.disp.ctx, func() (struct{}, error) {
		err := d.wait(d.disp.ctx, c.SubscribeMultiple(filters, d.onMessage))
		if err != nil && !c.IsConnectionOpen() {
			return struct{}{}, backoff.Permanent(err) // the reconnect subscribes again
		}
		return struct{}{}, err
	}, backoff.WithBackOff(d.newBackOff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, _ time.Duration) {
			d.cfg.Logger.Warn("device: subscribing failed; retrying", "device", p+"/"+n, "err", err)
		})); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(d.disp.ctx, d.cfg.AckTimeout*time.Duration(d.cfg.Attempts))
	defer cancel()
	if err := d.publish(ctx, wire.Topic(p, n, wire.TopicStatus), wire.Status{Online: true, Since: d.since.Load()}); err != nil {
		d.cfg.Logger.Warn("device: announcing online failed", "device", p+"/"+n, "err", err)
	}
	d.mu.Lock()
	versions := make(map[string]string, len(d.versions))
	for m, v := range d.versions {
		versions[m] = v
	}
	d.mu.Unlock()
	for m, v := range versions {
		if err := d.publish(ctx, wire.Topic(p, n, wire.TopicVersion), wire.VersionReport{Module: m, Version: v}); err != nil {
			d.cfg.Logger.Warn("device: reporting version failed", "device", p+"/"+n, "module", m, "err", err)
		}
	}
	d.once.Do(func() { close(d.ready) })
	if d.cfg.OnConnect != nil {
		d.cfg.OnConnect()
	}
}

func (d *MQTT) onMessage(_ paho.Client, m paho.Message) {
	_, _, suffix, _ := wire.ParseTopic(m.Topic())
	switch suffix {
	case wire.TopicNotice:
		var n Notice
		if err := json.Unmarshal(m.Payload(), &n); err != nil {
			d.cfg.Logger.Warn("device: malformed notice ignored", "err", err)
			return
		}
		n.Module = module(n.Module)
		d.disp.deliver(n)
	case wire.TopicCheckReply:
		var r wire.CheckReply
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			d.cfg.Logger.Warn("device: malformed check reply ignored", "err", err)
			return
		}
		select {
		case d.replies <- r:
		default: // nobody is waiting (a late reply)
		}
	}
}

func (d *MQTT) wait(ctx context.Context, tok paho.Token) error {
	t := time.NewTimer(d.cfg.AckTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("no acknowledgement from the broker")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish sends v as JSON (QoS 1) and waits for the acknowledgement, sending
// again when none comes (the server withholds it when it could not take the
// message).
func (d *MQTT) publish(ctx context.Context, topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = backoff.Retry(ctx, func() (struct{}, error) {
		// Not connected fails at once: the wait gives the reconnect time.
		return struct{}{}, d.wait(ctx, d.c.Publish(topic, 1, false, b))
	}, backoff.WithBackOff(d.newBackOff()), backoff.WithMaxTries(uint(d.cfg.Attempts)), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("device %s/%s: publishing to %s: %w", d.cfg.Product, d.cfg.Name, topic, err)
}

// newBackOff is the pause between tries of a subscribe or publish: from
// 0.5 s, doubling up to AckTimeout, randomized by ±50 % so that a fleet
// refused together does not come back together.
func (d *MQTT) newBackOff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 500 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: d.cfg.AckTimeout}
}

// ReportVersion reports the version module runs now; it is also reported
// again on every reconnect.
func (d *MQTT) ReportVersion(ctx context.Context, mod, version string) error {
	mod = module(mod)
	d.mu.Lock()
	d.versions[mod] = version
	d.mu.Unlock()
	return d.publish(ctx, wire.Topic(d.cfg.Product, d.cfg.Name, wire.TopicVersion), wire.VersionReport{Module: mod, Version: version})
}

// ReportProgress reports progress on a task.
func (d *MQTT) ReportProgress(ctx context.Context, p Progress) error {
	p.Module = module(p.Module)
	return d.publish(ctx, wire.Topic(d.cfg.Product, d.cfg.Name, wire.TopicProgress), p)
}

// Check asks whether an update waits for module and returns it (nil if
// none). Checks are made one at a time.
func (d *MQTT) Check(ctx context.Context, mod string) (*Notice, error) {
	d.checkMu.Lock()
	defer d.checkMu.Unlock()
	select {
	case <-d.replies: // a stale reply from an earlier, timed-out check
	default:
	}
	if err := d.publish(ctx, wire.Topic(d.cfg.Product, d.cfg.Name, wire.TopicCheck), wire.CheckRequest{Module: module(mod)}); err != nil {
		return nil, err
	}
	t := time.NewTimer(d.cfg.AckTimeout)
	defer t.Stop()
	select {
	case r := <-d.replies:
		if r.Error != "" {
			return nil, fmt.Errorf("device: check refused: %s", r.Error)
		}
		return r.Notice, nil
	case <-t.C:
		return nil, errors.New("device: no answer to the check")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Connected reports whether the connection is up.
func (d *MQTT) Connected() bool { return d.c.IsConnectionOpen() }

// Close stops the notice handlers (their context ends), waits for them, and
// disconnects.
func (d *MQTT) Close() error {
	d.disp.close()
	d.c.Disconnect(250)
	return nil
}
