package mqtt

import (
	"context"
	"crypto/x509"
	"errors"

	"github.com/updraft-ota/updraft/internal/ota"
)

// ErrNotMine is what Dialect.Authenticate returns for a CONNECT that is not
// in its credential scheme, so the broker tries the next dialect.
var ErrNotMine = errors.New("mqtt: not this dialect's credentials")

// Connect is what a device sent in its CONNECT packet.
type Connect struct {
	ClientID string
	Username string
	Password []byte
	Remote   string // peer address, for logs
	// Cert is the device's client certificate on the MQTT over TLS listener,
	// already verified against the CAs the server trusts for devices (a
	// certificate that does not chain to them fails the handshake); nil
	// without one. The broker, not the dialect, decides what it proves.
	Cert *x509.Certificate
}

// Session is an authenticated device connection as a dialect grants it.
type Session struct {
	// Device is who authenticated.
	Device ota.DeviceRef
	// Modules are where the broker looks for pending notices when the device
	// starts listening (ota.DefaultModule and every module it has reported).
	Modules []string
	// Publish are the topic filters the device may publish to; Subscribe the
	// filters it may subscribe to (a requested filter must be covered by one
	// of them: no wider wildcard). The broker enforces both, and checks
	// Subscribe again on every delivery.
	Publish   []string
	Subscribe []string
	// NoticeTopic is where this dialect delivers notices to the device. Once
	// the device holds a subscription matching it, it counts as listening:
	// the broker delivers pending notices then, and pushes new ones.
	NoticeTopic string
	// AutoSubscribe are topics the platform subscribes the device to when it
	// connects, as the vendor's own platform does (Huawei IoTDA: the device's
	// $oc/…/sys/events/down; its SDKs never SUBSCRIBE to it). The embedded
	// broker adds these subscriptions itself on connect (QoS 1); one that
	// matches NoticeTopic makes the device listening at once.
	AutoSubscribe []string
}

// Message is one publish from a device.
type Message struct {
	Topic   string
	Payload []byte
	// Session is the publisher's session on the embedded broker (the broker
	// has checked the topic against Session.Publish). It is nil for messages
	// consumed from an external broker, whose ACL vouches that the device
	// named in the topic sent it.
	Session *Session
}

// Link is what a dialect may do while handling a message.
type Link interface {
	// Publish sends a message to a device (QoS 1), e.g. a reply.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Tell sends a message at QoS 0: a request the device may miss (it is
	// asked again on its next connect). Use it for messages sent on
	// connect, which need no acknowledgement to wait for (and some brokers
	// confuse a device's first SUBSCRIBE packet id with their own QoS 1
	// ids in flight: mochi-mqtt, which Updraft used to embed, refused it
	// with 0x91).
	Tell(ctx context.Context, topic string, payload []byte) error
	// Online records that a device connected or disconnected as the dialect
	// learned from a message (a status topic or a will). On the embedded
	// broker connections are tracked by the broker itself and this does
	// nothing; on an external broker going online also delivers the
	// device's pending notices.
	Online(ctx context.Context, dev ota.DeviceRef, online bool) error
}

// stampedLink is a Link that orders a device's statuses by the connection
// they name (wire.Status.Since): the external broker's, where a dropped
// connection's will may be handled after its successor's online status.
// The embedded broker sees connections itself and needs no stamps.
type stampedLink interface {
	OnlineSince(ctx context.Context, dev ota.DeviceRef, online bool, since int64) error
}

// Dialect is one device protocol family on MQTT: its CONNECT credential
// scheme, its topics and its messages. Every product names one protocol
// (ota.Product.Protocol); the dialect whose Name is that protocol is the only
// one that may accept its devices' CONNECTs and the only one that renders
// their notices. The native dialect (NewNative) speaks updraft/v1; vendor
// dialects (Huawei IoTDA, Alibaba, EnOS) plug in the same way. A dialect
// owns no rules: it translates and calls the service (deviceproto.Devices)
// through its own reference to it; the broker only routes.
//
// Errors from Handle decide what happens to the device's message: nil or an
// *ota.Error that is not transient (see deviceproto.Transient) acknowledges
// it (a bad message is dropped and logged); a transient error (the store is
// down) withholds the acknowledgement: the embedded broker's device sends it
// again, and the external broker's consumer retries it a few times and then
// leaves it unacknowledged for the broker to redeliver. Conflicts between
// replicas are not the dialect's to handle: the service re-applies a report
// whose task changed meanwhile.
type Dialect interface {
	// Name is the ota.Protocol this dialect speaks ("native", "huawei",
	// "alibaba", "enos").
	Name() string
	// Authenticate checks a CONNECT on the embedded broker. It returns
	// ErrNotMine when the credentials are not in its scheme, any other error
	// to refuse the connection, or the device's session. The broker then
	// accepts the session only if the device's product speaks this
	// dialect's protocol (otherwise it tries the next dialect), so schemes
	// that look alike never take each other's devices.
	Authenticate(ctx context.Context, c Connect) (*Session, error)
	// Filters are the topic filters (no $share prefix) whose messages this
	// dialect handles when the server consumes an external broker.
	Filters() []string
	// DeviceKey names the device a topic (one of Filters) belongs to, e.g.
	// "{product}/{device}": the external broker handles one device's
	// messages in order by this key, and different devices in parallel.
	DeviceKey(topic string) string
	// Handle processes one message a device published.
	Handle(ctx context.Context, m Message, link Link) error
	// Render turns a notice into this dialect's downlink message.
	Render(n ota.Notice) (topic string, payload []byte, err error)
}

// Identifier is implemented by dialects whose devices may authenticate with a
// client certificate (products with auth x509, over TLS). Identify names the
// device a CONNECT claims to be from its client id and username alone, checks
// no secret, and returns the session Authenticate would grant it (ErrNotMine
// when the CONNECT is not in its scheme). The broker then decides with
// ota.Product.CheckDeviceAuth: the certificate's CN must be the device's
// ota.Protocol.CertName; a dialect holds no rule about certificates.
type Identifier interface {
	Identify(ctx context.Context, c Connect) (*Session, error)
}

// ConnectHook is implemented by dialects that act when one of their devices
// has connected (after its AutoSubscribe subscriptions exist and before its
// pending notices are pushed), e.g. Huawei's version_query to a device whose
// version is unknown. Errors are logged; the connection stays.
type ConnectHook interface {
	Connected(ctx context.Context, s *Session, link Link) error
}
