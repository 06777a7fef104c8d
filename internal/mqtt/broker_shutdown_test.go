package mqtt

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/testenv"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// closeWithin closes b and fails the test if Close does not return within
// its bound, or returns having abandoned connections it could not end.
func closeWithin(t *testing.T, b *Broker) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case <-done:
	case <-time.After(4 * shutdownBound):
		t.Fatalf("timed out after %v waiting for Broker.Close to return", 4*shutdownBound)
	}
	if left := b.open(); left != 0 {
		t.Fatalf("Close returned with %d device connections still open", left)
	}
}

// A socket that never sends CONNECT (or only part of one) is closed by
// Close too (mochi's own shutdown, which the broker used before, waited for
// such a socket forever).
func TestCloseEndsConnectionsThatNeverSentConnect(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p1", "d1", "secret1")
	b, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	half, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte{0x10, 0x20, 0x00}); err != nil { // a CONNECT header, then nothing
		t.Fatal(err)
	}
	dial(t, b.Addr().String(), "p1", "d1", "secret1")
	eventually(t, "three connections accepted", func() bool { return b.open() == 3 })
	closeWithin(t, b)
	silent.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection is still open after Close")
	}
}

// Devices connecting and disconnecting while the broker closes (the
// interleaving that deadlocked mochi's shutdown, mochi-mqtt/server #488).
func TestCloseWhileDevicesConnectAndDisconnect(t *testing.T) {
	f := deviceprototest.New()
	const devices = 16
	for i := range devices {
		f.AddDevice("churn", fmt.Sprintf("d%d", i), "s")
	}
	b, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	var stop atomic.Bool
	var connects atomic.Int64
	var wg sync.WaitGroup
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("d%d", i)
			for !stop.Load() {
				now := time.Now()
				c, err := dialRaw(addr, wire.ClientID("churn", name), wire.Username("churn", name, now), wire.Sign("s", "churn", name, now.UnixMilli()))
				if err != nil {
					if stop.Load() {
						return
					}
					continue
				}
				connects.Add(1)
				c.Disconnect(0)
			}
		}()
	}
	eventually(t, "devices connecting and disconnecting", func() bool { return connects.Load() >= 2*devices })
	closeWithin(t, b)
	stop.Store(true)
	testenv.Within(t, time.Minute, "the churning devices to stop", wg.Wait)
}
