package mqtt

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/mqttstore"
)

// ExternalOptions configure the connection to an external broker.
type ExternalOptions struct {
	// URL of the broker: mqtt://[user:pass@]host:port (or tcp://), mqtts://
	// or ssl:// for TLS. A bare host:port means mqtt://. The query may set
	// the options below: ?client_id=…&group=…&consumers=N&max_replicas=N (so that one
	// --mqtt-broker flag configures a replica).
	URL string
	// ClientID is the base of the server's client ids. Without Slots:
	// "{ClientID}-c{i}" for consumers and "{ClientID}-pub" for the
	// publisher; give each replica a stable, distinct one (default
	// "updraft-{hostname}"): consumer sessions are persistent, so messages
	// published while a replica restarts wait for it in the broker. With
	// Slots (what the server does) see Slots.
	ClientID string
	// Slots, when set, gives this replica a numbered slot leased from the
	// store shared by all replicas (store.ReplicaSlots; the server passes
	// its service), and its consumers the client ids
	// "{ClientID}-s{slot}-c{i}" (ClientID default "updraft", the same on
	// every replica). The ids do not depend on host names, so a replica
	// restarted anywhere, under any name, takes a vacant slot and resumes
	// the persistent sessions of a replica that died (kill -9) or stopped,
	// with the messages queued in them. The lease lasts SlotTTL and is
	// renewed every third of it. On PostgreSQL the owner also holds the
	// slot's advisory lock on a session of its own, which PostgreSQL
	// releases when the process dies: a killed replica's slot is vacant at
	// once, not when its lease ends (store.ReplicaSlots). A slot whose lease
	// expired (or whose owner died) and that no
	// starting replica takes is claimed by a live replica, which drains its
	// sessions (handling what they hold), deletes them and frees the slot.
	// So no session outlives its replica by more than about SlotTTL plus a
	// drain, and at most MaxReplicas × Consumers sessions ever exist. A
	// replica that cannot renew its lease in time stops consuming (another
	// may take its slot) and leases again. A slot keeps the ClientID of the
	// replica that first leased it: whoever resumes or drains it uses the
	// slot's session names, whatever its own ClientID.
	Slots SlotLeaser
	// MaxReplicas bounds the slots (default 8; URL option max_replicas): a
	// replica started while MaxReplicas others hold live leases fails with
	// an error saying so.
	MaxReplicas int
	// SlotTTL is the slot lease's length (default 30 s): how long a dead
	// replica's sessions wait before another replica drains them.
	SlotTTL time.Duration
	// Group is the shared-subscription group all replicas join (default
	// "updraft"): each device message reaches exactly one replica.
	Group string
	// Consumers is how many consumer connections this replica opens in the
	// group (default 16); each has its own in-flight window and queue at the
	// broker (Mosquitto: max_inflight_messages 20, max_queued_messages 1000
	// by default; a queue overflow drops messages, so raise both on a busy
	// broker). The broker spreads one device's messages over all members of
	// the group, so with several consumers (or replicas) they may be handled
	// out of order, and by two replicas at once; the protocol tolerates
	// that (the service re-reads and re-applies a report whose task another
	// replica changed meanwhile, a progress report arriving after the task
	// completed is ignored, and devices repeat their version and status on
	// every connect). Within one consumer, one device's messages are handled
	// in order (DeviceKey).
	Consumers int
	// Workers is how many device messages are handled at once (default 32).
	// Messages one consumer receives from one device are handled in order.
	Workers int
	// Dialects handle the device topics (default: the native dialect).
	Dialects []Dialect
	Logger   *slog.Logger
	// CallTimeout bounds each service call made for a device (default 30 s).
	CallTimeout time.Duration
	// ConnectTimeout bounds the first connection (default 10 s).
	ConnectTimeout time.Duration
	// RedeliverAfter is how long after a device message was left
	// unacknowledged (its handling kept failing for a transient reason,
	// e.g. the store is down) its consumer reconnects so that the broker
	// delivers it again (default 30 s).
	RedeliverAfter time.Duration
	// RetryBackoff is the first pause between tries of a message whose
	// handling failed for a transient reason; it doubles after each of the
	// handleAttempts tries, randomized by ±50 % so that replicas refused
	// together do not retry together (default 200 ms: about 6 s in all).
	RetryBackoff time.Duration
	// Registerer receives the metrics (nil: none).
	Registerer prometheus.Registerer
}

// External is the server's side of an external broker (Mosquitto, EMQX, a
// cloud broker): it consumes device topics through shared subscriptions
// "$share/{group}/{filter}" so several replicas split the traffic, and
// publishes notices as a privileged client. The broker authenticates devices
// and confines them to their topics; Updraft cannot check that here, so
// configure the broker's ACL to the same rule as the embedded broker's
// (see the package documentation).
type External struct {
	devices   deviceproto.Devices
	dialects  []Dialect
	opts      ExternalOptions
	log       *slog.Logger
	server    string // paho's broker URL, and its credentials
	user      string
	pass      string
	cmu       sync.Mutex // guards consumers and stranded
	stopping  atomic.Bool
	consumers []paho.Client
	pub       paho.Client
	slot      slotLease
	shards    []chan inbound
	// stranded[i] is set while consumer i holds a message it gave up on
	// (transient failures), left unacknowledged: a reconnect is scheduled
	// so that the broker redelivers it (MQTT redelivers only then).
	stranded  []atomic.Bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	handled   atomic.Int64
	published atomic.Int64
	m         *metrics
	lag       *prometheus.HistogramVec
	protocols *protocols

	// notifying is held (read) by each Notify and taken by Close, so that a
	// shutdown waits for notices being published instead of dropping them.
	notifying sync.RWMutex
	closed    bool
	// unacked holds a token per notice handed to Notify and not yet
	// acknowledged by the broker; acking counts the goroutines that wait
	// for acknowledgements.
	unacked chan struct{}
	acking  sync.WaitGroup
	// outbox carries Notify's batches to publishNotices, which renders and
	// publishes them while the engine claims its next batch. Every queued
	// notice holds an unacked token, so it never holds more than
	// maxUnackedNotices batches and a send never blocks.
	outbox        chan []ota.Notice
	publisherDone chan struct{}
}

type inbound struct {
	msg      paho.Message
	dialect  Dialect
	consumer int       // index in External.consumers; -1 for a drained session
	received time.Time // when paho handed it over: the lag metric's start
}

// maxConsumers bounds ExternalOptions.Consumers.
const maxConsumers = 64

// applyQuery sets the options the URL's query names.
func (o *ExternalOptions) applyQuery(raw string) error {
	if !strings.Contains(raw, "://") {
		raw = "mqtt://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "client_id", "group", "consumers", "max_replicas":
		default:
			return fmt.Errorf("MQTT broker URL: unknown option %q (use client_id, group, consumers, max_replicas)", k)
		}
	}
	if v := q.Get("client_id"); v != "" {
		o.ClientID = v
	}
	if v := q.Get("group"); v != "" {
		o.Group = v
	}
	if v := q.Get("consumers"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxConsumers {
			return fmt.Errorf("MQTT broker URL: consumers=%q must be 1 to %d", v, maxConsumers)
		}
		o.Consumers = n
	}
	if v := q.Get("max_replicas"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("MQTT broker URL: max_replicas=%q must be 1 to 1000", v)
		}
		o.MaxReplicas = n
	}
	return nil
}

// brokerURL turns the configured URL into paho's form.
func brokerURL(raw string) (server, user, pass string, err error) {
	if !strings.Contains(raw, "://") {
		raw = "mqtt://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", "", fmt.Errorf("MQTT broker URL %q is not mqtt://host:port", raw)
	}
	scheme := map[string]string{"mqtt": "tcp", "tcp": "tcp", "mqtts": "ssl", "ssl": "ssl", "tls": "ssl", "ws": "ws", "wss": "wss"}[u.Scheme]
	if scheme == "" {
		return "", "", "", fmt.Errorf("MQTT broker URL %q: scheme must be mqtt, mqtts, tcp, ssl, ws or wss", raw)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	return scheme + "://" + u.Host, user, pass, nil
}

// NewExternal connects to the broker, joins the shared subscriptions and
// starts handling device messages.
func NewExternal(devices deviceproto.Devices, opts ExternalOptions) (*External, error) {
	server, user, pass, err := brokerURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if err := opts.applyQuery(opts.URL); err != nil {
		return nil, err
	}
	switch {
	case opts.ClientID != "":
	case opts.Slots != nil:
		opts.ClientID = "updraft"
	default:
		host, _ := os.Hostname()
		opts.ClientID = "updraft-" + host
	}
	if opts.MaxReplicas <= 0 {
		opts.MaxReplicas = 8
	}
	if opts.SlotTTL <= 0 {
		opts.SlotTTL = 30 * time.Second
	}
	if opts.Group == "" {
		opts.Group = "updraft"
	}
	if opts.Consumers <= 0 {
		opts.Consumers = 16
	}
	if opts.Consumers > maxConsumers {
		return nil, fmt.Errorf("MQTT consumers: %d is more than %d", opts.Consumers, maxConsumers)
	}
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.Dialects) == 0 {
		opts.Dialects = []Dialect{NewNative(devices, 0, nil)}
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 200 * time.Millisecond
	}
	if opts.RedeliverAfter <= 0 {
		opts.RedeliverAfter = 30 * time.Second
	}
	e := &External{unacked: make(chan struct{}, maxUnackedNotices), devices: devices, dialects: opts.Dialects, opts: opts, log: opts.Logger.With("component", "mqtt", "broker", server),
		protocols: newProtocols(devices), outbox: make(chan []ota.Notice, maxUnackedNotices), publisherDone: make(chan struct{})}
	go e.publishNotices()
	e.m, err = newMetrics(opts.Registerer, nil, map[string]func() float64{
		"updraft_mqtt_notices_published_total": func() float64 { return float64(e.published.Load()) },
	})
	if err != nil {
		return nil, err
	}
	e.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "updraft_mqtt_external_message_seconds",
		Help: "External broker: time from a device message's receipt to its acknowledgement (applied or dropped), by dialect. A replica that cannot keep up shows it here and in updraft_mqtt_external_queued_messages.",
		// 1 ms to ~2 min: queueing behind a slow store reaches minutes.
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
	}, []string{"dialect"})
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "updraft_mqtt_external_queued_messages",
		Help: "External broker: device messages received and waiting in this replica's per-device queues.",
	}, func() float64 {
		n := 0
		for _, ch := range e.shards {
			n += len(ch)
		}
		return float64(n)
	})
	if opts.Registerer != nil {
		// A second client in one process (tests) shares the first's series.
		var already prometheus.AlreadyRegisteredError
		if err := opts.Registerer.Register(e.lag); errors.As(err, &already) {
			e.lag = already.ExistingCollector.(*prometheus.HistogramVec)
		} else if err != nil {
			return nil, err
		}
	}
	if err := register(opts.Registerer, queued); err != nil {
		return nil, err
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for i := 0; i < opts.Workers; i++ {
		ch := make(chan inbound, 64)
		e.shards = append(e.shards, ch)
		e.wg.Add(1)
		go e.work(ch)
	}

	e.server, e.user, e.pass = server, user, pass
	e.slot = slotLease{owner: replicaOwner(), slot: -1}
	pubID := opts.ClientID + "-pub"
	if opts.Slots != nil {
		// Every replica has the same ClientID: the publisher's (clean)
		// session is this process's own.
		pubID = opts.ClientID + "-pub-" + e.slot.owner[strings.LastIndex(e.slot.owner, "/")+1:]
	}
	e.pub = paho.NewClient(e.clientOptions(pubID, true))
	if t := e.pub.Connect(); !t.WaitTimeout(opts.ConnectTimeout) || t.Error() != nil {
		e.Close()
		return nil, e.connectError(t)
	}
	prefix := opts.ClientID
	if opts.Slots != nil {
		if prefix, err = e.leaseSlot(); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.startConsumers(prefix); err != nil {
		e.Close()
		return nil, err
	}
	if opts.Slots != nil {
		e.wg.Add(1)
		go e.keepSlot()
	}
	e.log.Info("consuming device topics from external MQTT broker", "group", opts.Group, "consumers", opts.Consumers, "client_ids", prefix+"-c*")
	return e, nil
}

func (e *External) clientOptions(id string, clean bool) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(e.server).SetClientID(id).
		SetUsername(e.user).SetPassword(e.pass).
		SetCleanSession(clean).SetStore(mqttstore.New()).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(true)
}

func (e *External) connectError(t paho.Token) error {
	err := t.Error()
	if err == nil {
		err = errors.New("timed out")
	}
	return fmt.Errorf("connecting to MQTT broker %s (--mqtt-broker): %w", e.server, err)
}

// startConsumers connects the consumers "{prefix}-c{i}" (persistent
// sessions) and returns once the broker has granted their subscriptions.
func (e *External) startConsumers(prefix string) error {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	if e.stopping.Load() {
		return errors.New("the MQTT client is closing")
	}
	// subscribed[i] is closed once consumer i's first subscriptions are
	// acknowledged: paho runs the connect handler in its own goroutine, so
	// without waiting NewExternal would return before the broker routes
	// anything to a new session, and the first device messages would be lost.
	subscribed := make([]chan struct{}, e.opts.Consumers)
	e.stranded = make([]atomic.Bool, e.opts.Consumers)
	e.consumers = nil
	for i := 0; i < e.opts.Consumers; i++ {
		o := e.clientOptions(fmt.Sprintf("%s-c%d", prefix, i), false).SetAutoAckDisabled(true)
		o.SetMessageChannelDepth(256)
		// One handler routes every message by the dialects' filters, and it
		// exists before the first connect: a persistent session's queued and
		// in-flight messages arrive right after CONNACK, before the connect
		// handler has subscribed, and paho neither handles nor acknowledges
		// a message that has no route (issue 8, item 5). Subscriptions carry
		// no callback of their own, so this handler is the only route: a
		// message goes to exactly one dialect, the first whose filters
		// match, even where two dialects' filters overlap.
		consumer := i
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { e.dispatch(m, consumer) })
		ready, once := make(chan struct{}), new(sync.Once)
		subscribed[i] = ready
		o.SetOnConnectHandler(func(c paho.Client) {
			if e.subscribe(c) {
				once.Do(func() { close(ready) })
			}
		})
		o.SetConnectionLostHandler(func(_ paho.Client, err error) {
			e.log.Warn("connection to MQTT broker lost; reconnecting", "err", err)
		})
		e.consumers = append(e.consumers, paho.NewClient(o))
	}
	resumed := make([]bool, len(e.consumers))
	for i, c := range e.consumers {
		t := c.Connect()
		if !t.WaitTimeout(e.opts.ConnectTimeout) || t.Error() != nil {
			return e.connectError(t)
		}
		// A resumed session kept its subscriptions at the broker: it is
		// consuming already, whatever its (re)subscription's SUBACK waits
		// behind.
		resumed[i] = t.(*paho.ConnectToken).SessionPresent()
	}
	deadline := time.NewTimer(e.opts.ConnectTimeout) // one wait for all
	defer deadline.Stop()
	late := false
	for i, ready := range subscribed {
		if !late {
			select {
			case <-ready:
				continue
			case <-deadline.C:
				late = true
			}
		}
		select {
		case <-ready:
		default:
			if resumed[i] {
				e.log.Warn("a resumed consumer session has not confirmed its subscriptions yet; it keeps the ones it had", "consumer", i)
				continue
			}
			return fmt.Errorf("subscribing on MQTT broker %s (--mqtt-broker): no acknowledgement within %s; check that the broker allows this client shared subscriptions ($share/%s/…)", e.server, e.opts.ConnectTimeout, e.opts.Group)
		}
	}
	return nil
}

// stopConsumers disconnects the consumers. Messages they received and did
// not acknowledge stay in their sessions for whoever connects next.
func (e *External) stopConsumers() {
	e.cmu.Lock()
	defer e.cmu.Unlock()
	for _, c := range e.consumers {
		c.Disconnect(250)
	}
	e.consumers = nil
}

// testHookSubscribing runs as a consumer starts subscribing after a
// (re)connect; tests widen with it the window in which a resumed session's
// messages arrive before any subscription exists. Atomic: a consumer of
// a closed client may still be reconnecting when a test restores it.
var testHookSubscribing atomic.Pointer[func()]

// subscribe (re)joins the shared subscriptions on every (re)connect and
// reports whether the broker granted all of them.
func (e *External) subscribe(c paho.Client) bool {
	if hook := testHookSubscribing.Load(); hook != nil {
		(*hook)()
	}
	// One SUBSCRIBE for every filter, so one SUBACK to wait for: a resumed
	// session's backlog arrives first and, under load, a dozen round trips
	// one after the other did not finish within ConnectTimeout.
	filters := map[string]byte{}
	for _, d := range e.dialects {
		for _, f := range d.Filters() {
			filters["$share/"+e.opts.Group+"/"+f] = 1
		}
	}
	t := c.SubscribeMultiple(filters, nil) // routed by the default handler
	if !t.WaitTimeout(e.opts.ConnectTimeout) || t.Error() != nil {
		e.log.Error("subscribing on the MQTT broker failed", "filters", len(filters), "err", t.Error())
		return false
	}
	ok := true
	for filter, code := range t.(*paho.SubscribeToken).Result() {
		if code >= 0x80 { // SUBACK failure: the broker's ACL refused it
			e.log.Error("the MQTT broker refused a subscription; allow this client shared subscriptions to the device topics", "filter", filter, "code", code)
			ok = false
		}
	}
	return ok
}

// dispatch routes a message from consumer to the first dialect whose
// filters match its topic. A topic no dialect handles cannot come from this
// server's subscriptions; it is acknowledged and logged, since keeping it
// would hold one of the session's in-flight slots forever.
func (e *External) dispatch(m paho.Message, consumer int) {
	d := e.dialectOf(m)
	if d == nil {
		return
	}
	e.enqueue(inbound{msg: m, dialect: d, consumer: consumer, received: time.Now()})
}

// dialectOf is the first dialect whose filters match m's topic; nil (and m
// acknowledged and logged) when there is none.
func (e *External) dialectOf(m paho.Message) Dialect {
	for _, d := range e.dialects {
		if anyMatches(d.Filters(), m.Topic()) {
			return d
		}
	}
	e.log.Warn("message on a topic no device protocol handles; acknowledged and dropped", "topic", m.Topic())
	m.Ack()
	return nil
}

// shardOf is the worker queue of a topic's device: the dialect names the
// device a topic belongs to (DeviceKey), so every topic of one device (its
// version, progress, status…) lands in one queue, whatever their depth.
func (e *External) shardOf(d Dialect, topic string) int {
	h := fnv.New32a()
	h.Write([]byte(d.Name() + "\x00" + d.DeviceKey(topic)))
	return int(h.Sum32() % uint32(len(e.shards)))
}

// enqueue hands a message to the worker of its device, so one device's
// messages are handled in the order this consumer received them.
func (e *External) enqueue(in inbound) {
	select {
	case e.shards[e.shardOf(in.dialect, in.msg.Topic())] <- in:
	case <-e.ctx.Done():
	}
}

func (e *External) work(ch chan inbound) {
	defer e.wg.Done()
	for {
		select {
		case in := <-ch:
			e.handle(in)
		case <-e.ctx.Done():
			return
		}
	}
}

// handleAttempts bounds how often handle tries a message whose handling
// fails for a transient reason (see ExternalOptions.RetryBackoff).
const handleAttempts = 6

// handle processes one device message and acknowledges it once it is
// applied, or once the service refused it for good (a bad message is
// dropped and logged). A message that still fails for a transient reason
// after handleAttempts tries, or whose handling a shutdown cut short, is
// never acknowledged: the broker keeps it in the consumer's persistent
// session and redelivers it when the consumer reconnects (see strand).
// Conflicts between replicas are the service's to resolve: it re-reads and
// re-applies a report whose task changed meanwhile.
func (e *External) handle(in inbound) (acked bool) {
	link := externalLink{e: e, dialect: in.dialect}
	dropped := false
	_, err := backoff.Retry(e.ctx, func() (struct{}, error) {
		ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
		err := in.dialect.Handle(ctx, Message{Topic: in.msg.Topic(), Payload: in.msg.Payload()}, link)
		cancel()
		ctx0 := e.ctx
		if e.ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(e.ctx.Err())
		}
		if err != nil && !deviceproto.Transient(err) {
			dropped = true
			e.m.messages.WithLabelValues(in.dialect.Name(), resultDropped).Inc()
			// A message dropped shows at the usual log level (issue 8:
			// losses "with nothing logged" were Info lines), except a
			// conflict: a report on a task that has moved on (a progress
			// report after the version report completed it) is expected
			// with at-least-once delivery across consumers.
			lvl := slog.LevelWarn
			if ota.ErrorCode(err) == ota.CodeConflict {
				lvl = slog.LevelInfo
			}
			e.log.Log(ctx0, lvl, "device message refused for good; acknowledged and dropped", "topic", in.msg.Topic(), "err", err)
			return struct{}{}, nil // refused for good: acknowledged, never redelivered
		}
		return struct{}{}, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: e.opts.RetryBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 5 * time.Second}),
		backoff.WithMaxTries(handleAttempts), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(error, time.Duration) { e.m.messages.WithLabelValues(in.dialect.Name(), resultRetry).Inc() }))
	if e.ctx.Err() != nil {
		return false // closing: unacknowledged, so redelivered to this session's next consumer
	}
	if err != nil {
		e.m.messages.WithLabelValues(in.dialect.Name(), resultUnacked).Inc()
		e.log.Error("device message not applied after retries; left unacknowledged for the broker to redeliver",
			"topic", in.msg.Topic(), "attempts", handleAttempts, "err", err)
		if in.consumer >= 0 {
			e.strand(in.consumer)
		}
		return false
	}
	if !dropped {
		e.m.messages.WithLabelValues(in.dialect.Name(), resultHandled).Inc()
	}
	in.msg.Ack()
	e.lag.WithLabelValues(in.dialect.Name()).Observe(time.Since(in.received).Seconds())
	e.handled.Add(1)
	return true
}

// strand schedules a reconnect of consumer i, which holds a message left
// unacknowledged: MQTT 3.1.1 brokers redeliver unacknowledged messages only
// when the session reconnects. One reconnect serves every message stranded
// until it happens. If the service is still failing then, the messages are
// stranded again and the next reconnect follows RedeliverAfter later.
func (e *External) strand(i int) {
	e.cmu.Lock()
	stranded := e.stranded
	first := i < len(stranded) && stranded[i].CompareAndSwap(false, true)
	e.cmu.Unlock()
	if !first {
		return
	}
	go func() {
		select {
		case <-time.After(e.opts.RedeliverAfter):
		case <-e.ctx.Done():
			return
		}
		stranded[i].Store(false)
		e.notifying.RLock()
		defer e.notifying.RUnlock()
		if e.closed {
			return
		}
		e.cmu.Lock()
		defer e.cmu.Unlock()
		if i >= len(e.consumers) {
			return // the consumers were replaced (slot lost), and their sessions with them
		}
		c := e.consumers[i]
		c.Disconnect(250)
		if t := c.Connect(); !t.WaitTimeout(e.opts.ConnectTimeout) || t.Error() != nil {
			// paho keeps retrying in the background (ConnectRetry).
			e.log.Warn("reconnecting to the MQTT broker for redelivery", "err", t.Error())
		}
		e.log.Info("reconnected a consumer so the broker redelivers its unacknowledged messages", "consumer", i)
	}()
}

// maxUnackedNotices bounds the notices handed to Notify and not yet
// acknowledged by the broker; past it Notify waits (the engine's claims slow
// down to the broker's pace).
const maxUnackedNotices = 4096

// Notify implements service.Notifier: every dialect renders the notice for
// its topic and it is published (QoS 1). The broker delivers it if the device
// is subscribed; an offline device gets it when it reports itself online.
//
// Notify returns once the notices are queued for publishing, not once they
// are published or acknowledged: the engine claims its next batch while
// publishNotices renders and publishes this one and a goroutine per batch
// counts the broker's acknowledgements and logs failures. Handing each batch
// to the MQTT client in Notify itself cost as long as the claim, and the two
// took turns. Close publishes what is queued and waits for the
// acknowledgements.
func (e *External) Notify(ctx context.Context, notices []ota.Notice) error {
	e.notifying.RLock()
	defer e.notifying.RUnlock()
	if e.closed {
		return ota.Errorf(ota.CodeUnavailable, "the MQTT client is closed; devices get these notices when they next report online or check")
	}
	// The tasks are already claimed: queue them even if the caller is being
	// canceled (a shutdown), within a bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.CallTimeout)
	defer cancel()
admit:
	for i := range notices {
		select {
		case e.unacked <- struct{}{}:
		case <-ctx.Done():
			// The tasks stay notified; devices get the notice when they next
			// report online, so this is not fatal for the engine.
			e.log.Warn("notices not published: the broker acknowledges too slowly", "unsent", len(notices)-i, "of", len(notices), "err", ctx.Err())
			notices = notices[:i]
			break admit
		}
	}
	if len(notices) > 0 {
		e.outbox <- notices
	}
	return nil
}

// publishNotices publishes the batches Notify queues, in order, until Close
// closes the outbox.
func (e *External) publishNotices() {
	defer close(e.publisherDone)
	for notices := range e.outbox {
		ctx, cancel := context.WithTimeout(context.Background(), e.opts.CallTimeout)
		tokens := make([]paho.Token, 0, len(notices))
		for _, n := range notices {
			topic, payload, err := e.render(ctx, n)
			if err != nil {
				<-e.unacked
				e.log.Warn("notice not rendered", "device", n.ProductKey+"/"+n.DeviceName, "task", n.TaskID, "err", err)
				continue
			}
			tokens = append(tokens, e.pub.Publish(topic, 1, false, payload))
		}
		e.acking.Add(1)
		go func() {
			defer e.acking.Done()
			defer cancel()
			failed := 0
			var last error
			for _, t := range tokens {
				err := waitToken(ctx, t)
				<-e.unacked
				if err != nil {
					failed++
					last = err
					continue
				}
				e.published.Add(1)
			}
			if failed > 0 {
				// The tasks stay notified; devices get the notice when they
				// next report online, so this is not fatal for the engine.
				e.log.Warn("notices not published", "failed", failed, "of", len(tokens), "err", last)
			}
		}()
	}
}

// render renders a notice in its product's protocol alone: a notice
// published in another protocol's topic could reach another tenant's device
// whose id reads the same (Huawei "{product}_{device}").
func (e *External) render(ctx context.Context, n ota.Notice) (string, []byte, error) {
	p, err := e.protocols.of(ctx, n.ProductKey)
	if err != nil {
		return "", nil, err
	}
	d := dialectFor(e.dialects, p)
	if d == nil {
		return "", nil, ota.Errorf(ota.CodeUnsupported, "product %q speaks the %s protocol, which this server does not serve on MQTT", n.ProductKey, p)
	}
	return d.Render(n)
}

func waitToken(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handled is the number of device messages processed so far.
func (e *External) Handled() int64 { return e.handled.Load() }

// Close disconnects from the broker after the messages being handled are
// done. Messages not yet acknowledged are redelivered by the broker to the
// next consumer of this client id.
func (e *External) Close() error { return e.close(true) }

// close shuts down; release false leaves the replica slot leased until its
// lease expires, as a replica killed would (tests).
func (e *External) close(release bool) error {
	e.notifying.Lock()
	if e.closed {
		e.notifying.Unlock()
		return nil
	}
	e.closed = true
	e.notifying.Unlock()
	close(e.outbox) // no Notify is running (closed was set under the lock)
	<-e.publisherDone
	e.acking.Wait() // notices in flight are acknowledged (or time out) first
	e.stopping.Store(true)
	e.stopConsumers()
	e.cancel()
	e.wg.Wait()
	if e.pub != nil {
		e.pub.Disconnect(250)
	}
	if release {
		e.releaseSlot()
	}
	return nil
}

// externalLink is the Link of messages consumed from an external broker.
type externalLink struct {
	e       *External
	dialect Dialect
}

func (l externalLink) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := waitToken(ctx, l.e.pub.Publish(topic, 1, false, payload)); err != nil {
		return ota.Errorf(ota.CodeUnavailable, "publishing to %s: %v", topic, err)
	}
	return nil
}

func (l externalLink) Tell(ctx context.Context, topic string, payload []byte) error {
	if err := waitToken(ctx, l.e.pub.Publish(topic, 0, false, payload)); err != nil {
		return ota.Errorf(ota.CodeUnavailable, "publishing to %s: %v", topic, err)
	}
	return nil
}

// Online records the device's state and, when it comes online, publishes its
// pending notices.
func (l externalLink) Online(ctx context.Context, dev ota.DeviceRef, online bool) error {
	return l.OnlineSince(ctx, dev, online, 0)
}

// OnlineSince is Online for a status stamped with its connection: one older
// than the device's last applied status (a will handled after the online
// status of the connection that replaced it) is counted and ignored.
func (l externalLink) OnlineSince(ctx context.Context, dev ota.DeviceRef, online bool, since int64) error {
	applied, err := l.e.devices.DevicePresence(ctx, dev, online, since)
	if err != nil {
		return err
	}
	if !applied {
		l.e.m.messages.WithLabelValues(l.dialect.Name(), resultStale).Inc()
		l.e.log.Info("device status older than the one applied; ignored", "device", dev.ProductKey+"/"+dev.Name, "online", online, "since", since)
		return nil
	}
	if !online {
		return nil
	}
	d, err := l.e.devices.DeviceForAuth(ctx, dev)
	if err != nil {
		return err
	}
	for _, m := range deviceproto.Modules(d) {
		n, err := l.e.devices.PushNotice(ctx, dev, m)
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		topic, payload, err := l.e.render(ctx, *n)
		if err != nil {
			return err
		}
		if err := l.Publish(ctx, topic, payload); err != nil {
			return err
		}
		l.e.published.Add(1)
	}
	return nil
}
