package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Native is the updraft/v1 dialect (sdk/device/wire documents it).
type Native struct {
	devices deviceproto.Devices
	skew    time.Duration
	now     func() time.Time
}

// NewNative returns the native dialect. skew bounds a credential's
// timestamp (0 = deviceproto.DefaultSkew); now is the clock (nil = time.Now).
func NewNative(d deviceproto.Devices, skew time.Duration, now func() time.Time) *Native {
	if now == nil {
		now = time.Now
	}
	return &Native{devices: d, skew: skew, now: now}
}

// Name is "native".
func (*Native) Name() string { return "native" }

// Authenticate accepts client id "{product}.{device}", username
// "{product}&{device}|{ts}" and password = the HMAC sign.
func (n *Native) Authenticate(ctx context.Context, c Connect) (*Session, error) {
	cred, err := wire.ParseUsername(c.Username)
	if err != nil {
		return nil, ErrNotMine
	}
	if want := wire.ClientID(cred.Product, cred.Device); c.ClientID != want {
		return nil, fmt.Errorf("client id %q does not match the username: use %q", c.ClientID, want)
	}
	cred.Sign = string(c.Password)
	dev, err := deviceproto.Authenticate(ctx, n.devices, cred, n.now(), n.skew)
	if err != nil {
		return nil, err
	}
	return n.session(dev), nil
}

var _ Identifier = (*Native)(nil)

// Identify names the device of a CONNECT with client id "{product}.{device}"
// and username "{product}&{device}" (a "|{ts}" suffix is allowed and
// ignored), without a password: how a device of a product with auth x509
// connects over TLS with its certificate.
func (n *Native) Identify(ctx context.Context, c Connect) (*Session, error) {
	product, device, ok := strings.Cut(c.Username, "&")
	if !ok || product == "" {
		return nil, ErrNotMine
	}
	if i := strings.LastIndexByte(device, '|'); i >= 0 {
		device = device[:i]
	}
	if device == "" {
		return nil, ErrNotMine
	}
	if want := wire.ClientID(product, device); c.ClientID != want {
		return nil, fmt.Errorf("client id %q does not match the username: use %q", c.ClientID, want)
	}
	dev, err := n.devices.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: product, Name: device})
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device", Err: err}
		}
		return nil, err
	}
	return n.session(dev), nil
}

func (n *Native) session(dev ota.Device) *Session {
	p, d := dev.ProductKey, dev.Name
	return &Session{
		Device:  ota.DeviceRef{ProductKey: p, Name: d},
		Modules: deviceproto.Modules(dev),
		Publish: []string{
			wire.Topic(p, d, wire.TopicVersion),
			wire.Topic(p, d, wire.TopicProgress),
			wire.Topic(p, d, wire.TopicCheck),
			wire.Topic(p, d, wire.TopicStatus),
		},
		Subscribe: []string{
			wire.Topic(p, d, wire.TopicNotice),
			wire.Topic(p, d, wire.TopicCheckReply),
		},
		NoticeTopic: wire.Topic(p, d, wire.TopicNotice),
	}
}

// Filters are the native up topics of every device.
func (*Native) Filters() []string {
	return []string{
		wire.Topic("+", "+", wire.TopicVersion),
		wire.Topic("+", "+", wire.TopicProgress),
		wire.Topic("+", "+", wire.TopicCheck),
		wire.Topic("+", "+", wire.TopicStatus),
	}
}

// DeviceKey is "{product}/{device}" of an updraft/v1 topic.
func (*Native) DeviceKey(topic string) string {
	if p, d, _, ok := wire.ParseTopic(topic); ok {
		return p + "/" + d
	}
	return topic
}

// Handle processes version, progress, check and status messages.
func (n *Native) Handle(ctx context.Context, m Message, link Link) error {
	p, d, suffix, ok := wire.ParseTopic(m.Topic)
	if !ok {
		return ota.Invalid("topic", "topic %q is not updraft/v1/{product}/{device}/{kind}", m.Topic)
	}
	dev := ota.DeviceRef{ProductKey: p, Name: d}
	if m.Session != nil && m.Session.Device != dev {
		// The broker's ACL prevents this; refuse rather than trust the topic.
		return ota.Errorf(ota.CodeForbidden, "device %s/%s may not publish as %s/%s", m.Session.Device.ProductKey, m.Session.Device.Name, p, d)
	}
	switch suffix {
	case wire.TopicVersion:
		return deviceproto.HandleVersion(ctx, n.devices, dev, m.Payload)
	case wire.TopicProgress:
		return deviceproto.HandleProgress(ctx, n.devices, dev, m.Payload)
	case wire.TopicCheck:
		reply, err := deviceproto.HandleCheck(ctx, n.devices, dev, m.Payload)
		if err != nil {
			return err
		}
		b, err := json.Marshal(reply)
		if err != nil {
			return ota.Internal(err, "encoding a check reply")
		}
		return link.Publish(ctx, wire.Topic(p, d, wire.TopicCheckReply), b)
	case wire.TopicStatus:
		var s wire.Status
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			return ota.Invalid("", "the status message is not valid JSON: %v", err)
		}
		if sl, ok := link.(stampedLink); ok && s.Since != 0 {
			return sl.OnlineSince(ctx, dev, s.Online, s.Since)
		}
		return link.Online(ctx, dev, s.Online)
	}
	return ota.Invalid("topic", "topic %q: unknown kind %q", m.Topic, suffix)
}

// Render publishes the notice as wire.Notice on the device's notice topic.
func (*Native) Render(nt ota.Notice) (string, []byte, error) {
	b, err := json.Marshal(deviceproto.NoticeToWire(nt))
	if err != nil {
		return "", nil, ota.Internal(err, "encoding a notice")
	}
	return wire.Topic(nt.ProductKey, nt.DeviceName, wire.TopicNotice), b, nil
}
