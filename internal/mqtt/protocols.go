package mqtt

import (
	"context"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
)

// protocolCacheTTL bounds how long a product's protocol is remembered. A
// product's protocol never changes, but a deleted product's key may be
// reused by a new product with another protocol.
const protocolCacheTTL = time.Minute

// protocols remembers which protocol each product speaks, so that rendering
// a batch of notices costs one lookup per product rather than per device.
type protocols struct {
	devices deviceproto.Devices
	now     func() time.Time
	mu      sync.Mutex
	cache   map[string]cachedProtocol
}

type cachedProtocol struct {
	p  ota.Protocol
	at time.Time
}

func newProtocols(d deviceproto.Devices) *protocols {
	return &protocols{devices: d, now: time.Now, cache: map[string]cachedProtocol{}}
}

func (ps *protocols) of(ctx context.Context, productKey string) (ota.Protocol, error) {
	now := ps.now()
	ps.mu.Lock()
	c, ok := ps.cache[productKey]
	ps.mu.Unlock()
	if ok && now.Sub(c.at) < protocolCacheTTL {
		return c.p, nil
	}
	p, err := ps.devices.ProductProtocol(ctx, productKey)
	if err != nil {
		return "", err
	}
	ps.mu.Lock()
	if len(ps.cache) > 100000 {
		ps.cache = map[string]cachedProtocol{} // bounded: products are few, but never grow without limit
	}
	ps.cache[productKey] = cachedProtocol{p, now}
	ps.mu.Unlock()
	return p, nil
}

// dialectFor is the dialect among ds that speaks the product's protocol, nil
// if this server has none for it.
func dialectFor(ds []Dialect, p ota.Protocol) Dialect {
	for _, d := range ds {
		if d.Name() == string(p) {
			return d
		}
	}
	return nil
}
