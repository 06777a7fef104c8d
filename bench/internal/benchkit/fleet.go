package benchkit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Fleet names a registered simulated fleet (internal/sim's naming and
// secrets), so later server starts on the same data directory know it.
type Fleet struct {
	Product string
	Count   int
	Seed    string
}

// SimConfig is the sim configuration of the fleet.
func (f Fleet) SimConfig(server string) sim.Config {
	return sim.Config{Server: server, KeyID: BenchKeyID, KeySecret: BenchSecret, SecretSeed: f.Seed, Product: f.Product,
		Count: f.Count, Prefix: "sim-", Version: "1.0", Transport: "http",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Register creates the product and devices through the management API.
func (f Fleet) Register(ctx context.Context, server string) error {
	s, err := sim.New(f.SimConfig(server))
	if err != nil {
		return err
	}
	return s.Create(ctx)
}

// Name is device i's name.
func (f Fleet) Name(i int) string { return fmt.Sprintf("sim-%06d", i) }

// Secret is device i's secret.
func (f Fleet) Secret(i int) string { return sim.Secret(f.Seed, f.Product, f.Name(i)) }

// ConnectOptions say what each bare MQTT device does after CONNECT.
type ConnectOptions struct {
	Anonymous bool // no credentials (a plain broker)
	// Version, when set, is published (QoS 0) as the device's version
	// report after it subscribed.
	Version string
	// OnNotice is called for each message on a device's notice topic.
	OnNotice func(i int)
	// Parallel dials (default 100).
	Parallel int
	// ReportOnline publishes the device's online status (wire.Status, QoS 1)
	// after it subscribed, as a native device must on an external broker:
	// there the server does not see connections, and a device that never
	// says it is online has its tasks wait for it.
	ReportOnline bool
}

// ConnectAll connects every device of the fleet to addr with bare MQTT
// clients, each subscribed (QoS 1) to its notice topic, and returns them.
func (f Fleet) ConnectAll(addr string, o ConnectOptions) ([]*MQTTConn, error) {
	if o.Parallel <= 0 {
		o.Parallel = 100
	}
	conns := make([]*MQTTConn, f.Count)
	work := make(chan int)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < o.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := f.connect(addr, i, o)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("device %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < f.Count; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		CloseAll(conns)
		return nil, firstErr
	}
	return conns, nil
}

func (f Fleet) connect(addr string, i int, o ConnectOptions) (*MQTTConn, error) {
	name := f.Name(i)
	user, pass := "", ""
	if !o.Anonymous {
		now := time.Now()
		user = wire.Username(f.Product, name, now)
		pass = wire.Sign(f.Secret(i), f.Product, name, now.UnixMilli())
	}
	c, err := backoff.Retry(context.Background(), func() (*MQTTConn, error) {
		return DialMQTT(addr, wire.ClientID(f.Product, name), user, pass)
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 2 * time.Second}),
		backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(wire.Topic(f.Product, name, wire.TopicNotice), 1); err != nil {
		c.Close()
		return nil, err
	}
	if o.ReportOnline {
		if err := c.Publish(wire.Topic(f.Product, name, wire.TopicStatus), 1, []byte(`{"online":true}`)); err != nil {
			c.Close()
			return nil, err
		}
	}
	if o.Version != "" {
		if err := c.Publish(wire.Topic(f.Product, name, wire.TopicVersion), 0, []byte(`{"module":"default","version":"`+o.Version+`"}`)); err != nil {
			c.Close()
			return nil, err
		}
	}
	go func() {
		_ = c.Listen(func(string, []byte) {
			if o.OnNotice != nil {
				o.OnNotice(i)
			}
		}, nil)
	}()
	return c, nil
}

// CloseAll closes every connection.
func CloseAll(conns []*MQTTConn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
