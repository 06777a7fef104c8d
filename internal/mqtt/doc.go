// Package mqtt is Updraft's MQTT front-end: devices report versions and
// progress and receive upgrade notices over MQTT. It runs in one of two
// modes.
//
// # Embedded broker (default)
//
// Broker (NewBroker) is an MQTT broker inside the server process (--mqtt
// ADDR, default :1883), written for devices alone. It accepts only devices:
//
//   - CONNECT is authenticated by the registered dialects in order. The
//     native dialect's scheme (sdk/device/wire): client id
//     "{product}.{device}", username "{product}&{device}|{unix ms}",
//     password hex(HMAC-SHA256(device secret, username)), timestamp within
//     ±5 minutes. The secret never travels. A refusal gets its CONNACK code
//     (MQTT 3.1.1: 0x04 bad credentials, 0x05 not authorized, e.g. the
//     product speaks another protocol, 0x03 the store is unavailable; MQTT 5:
//     the matching reason code) and is logged with its reason.
//   - Each device may publish only to the topics its session lists and
//     subscribe only to filters those cover (a wildcard that would reach
//     another device is refused, shared subscriptions are refused); every
//     delivery is checked again, so a device never reads another's notices.
//     A PUBLISH to a topic it may not use is dropped at QoS 0, refused with
//     PUBACK 0x87 on MQTT 5, and ends the connection on MQTT 3 (which has no
//     way to refuse it).
//   - Device messages are handled in the order the device sent them and
//     acknowledged after the service has taken them; if the service is
//     unavailable the PUBACK is withheld and the device resends. They are
//     never routed to other clients.
//   - Online/offline is recorded on connect and disconnect; a new connection
//     with a client id already connected takes over (the old one is closed,
//     the device stays online).
//   - When a device subscribes to its notice topic, the broker looks up its
//     pending notices (service PushNotice for each known module) and
//     publishes them; from then on Notify pushes new notices (QoS 1) at once.
//     Notices for devices that are offline or not yet listening are not
//     queued in memory: the store holds them, and they are delivered when
//     the device listens.
//
// # Connections: event-driven
//
// A broker holds thousands of devices that are idle almost all the time, so
// an idle connection must cost next to nothing. Plain TCP connections are
// served by internal/netpoll (epoll, a few poller goroutines for all
// connections, each waiting in Go's network poller rather than in
// epoll_wait): no goroutine and no buffer per idle connection. Where epoll
// is missing (not Linux), every connection is read like a TLS one below.
// The pollers only read, frame and decode packets (mochi's packets codec);
// handling them may block on the service for seconds, so
// each connection's packets are queued and handled in order by an executor
// on one of at most 32 goroutines that exist only while some connection has
// work (maxExecutors). MQTT over TLS is read by one goroutine per connection
// (crypto/tls needs a blocking connection; it verifies client certificates
// itself) feeding the same state machine, and its writes go through a
// goroutine that exists only while something is queued. Timeouts are
// deadlines checked by one sweep every 250 ms: 30 s to send CONNECT after
// accept (TLS handshake included), then 1.5 × the keep-alive the device asked
// for after each packet. Each device's session is kept as its two names and a
// shape shared by every device whose session differs only by them (session.go).
// A connected idle device costs about 3 KB of the server's RSS
// (bench/brokermem, 10 000 devices; Mosquitto 1.8 KB).
//
// Bounds, each disconnecting the device that exceeds it (it reconnects, and
// its pending notices are looked up again), see BrokerOptions: packets of at
// most MaxPacketSize bytes; at most MaxInflight QoS 1 messages sent and not
// acknowledged; at most MaxPendingWrites × BufferSize bytes waiting for a
// device's socket; at most 4 × MaxInflight received packets waiting to be
// handled. The broker offers QoS 0 and 1 (a QoS 2 PUBLISH is a protocol
// error: MQTT 5 DISCONNECT 0x9B, MQTT 3 close), no retained messages, MQTT 5
// topic aliases up to 16, and speaks MQTT 3.1, 3.1.1 and 5.
//
// A session outlives its connection only if the device asks (MQTT 3 clean
// session false, MQTT 5 a session expiry), for an hour at most, and keeps
// only its subscriptions: a device that reconnects within that time is
// subscribed as before and CONNACK says the session is present (Alibaba's
// Node SDK connects so and subscribes once). Nothing is queued for a
// disconnected device: its notices wait in the store and are looked up again
// when it listens. Wills are accepted
// and never published: presence is the connection itself, and devices have
// no one else to deliver to. Packets a device sent before it hung up are
// still handled; those queued when the broker closes a connection (take-over,
// timeout, bound, shutdown) are dropped.
//
// # External broker
//
// External (NewExternal, --mqtt-broker mqtt://host:port) consumes device
// topics from a broker such as Mosquitto through shared subscriptions
// "$share/updraft/{filter}" (several replicas split the traffic; each device
// message reaches one) and publishes notices as a privileged client. The
// broker authenticates devices: configure it so each device may publish to
// updraft/v1/{product}/{device}/{version,progress,check,status} and
// subscribe to updraft/v1/{product}/{device}/{notice,check/reply} only (for
// Mosquitto, a dynamic-security role per device or a pattern ACL
// "pattern write updraft/v1/%u/…" with username = "{product}/{device}"), and
// give the server's client ids access to everything. Devices publish
// {"online":true} to their status topic after subscribing and set
// {"online":false} as their will; that is how the server learns presence
// and when to send pending notices.
//
// The server's consumer sessions are persistent, named after a replica
// slot leased from the store ("updraft-s{slot}-c{i}", see
// ExternalOptions.Slots), so device messages published while a replica
// restarts wait in the broker, and a dead replica's sessions are resumed or
// drained by another instead of being orphaned. Size the broker's
// per-session queue: a message the broker drops never reaches any replica,
// and Mosquitto's default max_queued_messages 1000 (per session) drops what
// the server has not consumed yet when thousands of devices connect within
// seconds, or when a replica falls behind (its queue gauge and latency
// histogram show it; Mosquitto logs "Outgoing messages are being dropped").
// For an external broker that loses nothing set "max_queued_messages 0". Measured
// here with 10 000 devices connecting at up to 2 000/s on SQLite: 4 consumer
// sessions lost ~10 % of the version reports, 8 lost 66 of 10 000 in one
// run, the default 16 lost none in three runs on a stock Mosquitto; with
// "max_queued_messages 0" (unbounded) the consumer count does not matter. Devices also ask for pending updates on their own every 30 minutes
// (sdk/device MQTTConfig.CheckInterval), the safety net for a notice lost
// between the engine's claim and the publish.
//
// # Dialects: one device protocol per product
//
// A Dialect is one device protocol family: a CONNECT credential scheme, a
// set of topics, and the translation of its messages to service calls. Every
// product names its protocol when it is created (ota.Product.Protocol:
// native, huawei, alibaba, enos). A CONNECT is accepted only by the dialect
// whose Name is its product's protocol, and a notice is rendered and
// published only in its product's protocol (on the embedded broker by the
// connection's dialect, on an external broker by looking the product up), so
// schemes that look alike never take each other's devices or notices. Device
// ids a protocol derives (Huawei "{product}_{device}", ota.Protocol.DeviceID)
// are unique across the server: the store refuses a colliding device.
//
// # Implementing a device protocol
//
// A dialect translates; it owns no rules (the service decides). To add one:
//
//  1. Implement Dialect in your front-end package (internal/api/<vendor>):
//     Name returns your ota.Protocol ("alibaba", "enos").
//     Authenticate parses the CONNECT in your vendor's scheme (client id,
//     username, password), returns ErrNotMine for anything that is not, looks
//     the device up with deviceproto.Devices.DeviceForAuth, verifies the
//     password, and returns a Session: Device, Modules
//     (deviceproto.Modules(dev)), Publish/Subscribe (the device's own topics
//     only; the broker enforces them on every publish, subscribe and
//     delivery), NoticeTopic, and AutoSubscribe (topics your platform
//     subscribes devices to on connect, if it does; empty otherwise).
//     Filters lists your up topics with '+' for product and device;
//     DeviceKey maps one of those topics to "{product}/{device}" (ordering
//     key on an external broker). Handle decodes one message and calls the
//     service: ReportVersion, ReportProgress, NextNotice (a device asking),
//     CurrentTask (the device's one unfinished task on a module: never list
//     tasks yourself), Link.Publish for replies, Link.Online for presence a
//     message announces. Return *ota.Error: a transient one (store down)
//     withholds the acknowledgement, anything else acknowledges and drops.
//     Render turns an ota.Notice into your downlink topic and payload.
//  2. Optionally implement ConnectHook (Connected runs once the device is
//     connected and auto-subscribed, before its pending notices are pushed):
//     e.g. a version query when the device's version is unknown
//     (Huawei version_query). Send such requests with Link.Tell (QoS 0).
//     Optionally implement Identifier too, so that devices of products with auth
//     x509 can connect by client certificate: Identify parses the CONNECT as
//     Authenticate does but checks no password. The broker judges the proof
//     (ota.Product.CheckDeviceAuth: the certificate's CN must be the
//     device's ota.Protocol.CertName; secrets are refused for x509 products,
//     a certificate alone for secret products); never check certificates in
//     the dialect. Connect.Cert is the verified client certificate on the
//     MQTT over TLS listener.
//  3. Register it: internal/server/server.go appends your dialect to the
//     list given to BrokerOptions.Dialects and ExternalOptions.Dialects
//     (next to huaweiiotda.NewDevices). Products your dialect API creates
//     set Protocol to your protocol.
//
// The broker, not the dialect, records presence (service DeviceConnected on
// connect and disconnect, which admits waiting tasks), and pushes pending
// notices when the device listens (service PushNotice: only jobs that push;
// a pull-only job's notice waits for the device to ask). Device HTTP polls
// record presence through the same service call.
//
// Authenticate returns a Session naming the device, the topic filters it may
// publish and subscribe to, the modules to look for pending notices on, and
// its NoticeTopic. Handle gets the publisher's Session on the embedded broker
// (nil from an external broker) and a Link to publish replies and record
// presence. The native dialect (NewNative) speaks updraft/v1; vendor dialects
// (Huawei $oc/devices/{id}/sys/events/up|down, Alibaba /ota/device/…, EnOS
// /sys/{pk}/{dk}/ota/…) are registered next to it in BrokerOptions.Dialects
// and ExternalOptions.Dialects.
package mqtt
