package mqtt

import (
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// A device of a product on another protocol cannot connect with native
// credentials, even with its right secret: CONNECT goes to the product's
// protocol alone.
func TestConnectOnlyInTheProductsProtocol(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("nat", "d1", "secret-nat-1")
	f.AddDevice("hw", "d1", "secret-hw-1")
	f.SetProtocol("hw", ota.ProtocolHuawei)
	b := startBroker(t, f)
	now := time.Now()
	c, err := dialRaw(b.Addr().String(), wire.ClientID("nat", "d1"), wire.Username("nat", "d1", now), wire.Sign("secret-nat-1", "nat", "d1", now.UnixMilli()))
	if err != nil {
		t.Fatalf("native device of a native product: %v", err)
	}
	c.Disconnect(0)
	_, err = dialRaw(b.Addr().String(), wire.ClientID("hw", "d1"), wire.Username("hw", "d1", now), wire.Sign("secret-hw-1", "hw", "d1", now.UnixMilli()))
	if err == nil || !strings.Contains(err.Error(), "not Authorized") && !strings.Contains(err.Error(), "bad user name or password") {
		t.Fatalf("native credentials of a Huawei product's device: err = %v, want refused", err)
	}
	if _, n := f.Online(ota.DeviceRef{ProductKey: "hw", Name: "d1"}); n != 0 {
		t.Fatalf("refused device was recorded online %d times", n)
	}
}

// DeviceKey groups one device's messages whatever the topic's depth.
func TestNativeDeviceKey(t *testing.T) {
	n := NewNative(nil, 0, nil)
	a := n.DeviceKey(wire.Topic("p", "d", wire.TopicVersion))
	b := n.DeviceKey(wire.Topic("p", "d", wire.TopicCheck))
	if a != "p/d" || b != "p/d" {
		t.Fatalf("DeviceKey = %q, %q; want p/d for both", a, b)
	}
}
