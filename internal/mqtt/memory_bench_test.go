package mqtt

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// rawDevice connects a device with hand-encoded packets (no client library,
// so the measurement is the broker's alone) and subscribes to its notices.
func rawDevice(addr, product, name, secret string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var buf bytes.Buffer
	connect := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 120,
			ClientIdentifier: wire.ClientID(product, name),
			UsernameFlag:     true, Username: []byte(wire.Username(product, name, now)),
			PasswordFlag: true, Password: []byte(wire.Sign(secret, product, name, now.UnixMilli())),
		},
	}
	if err := connect.ConnectEncode(&buf); err != nil {
		return nil, err
	}
	sub := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: wire.Topic(product, name, wire.TopicNotice), Qos: 1}},
	}
	if err := sub.SubscribeEncode(&buf); err != nil {
		return nil, err
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	// CONNACK (4 bytes) and SUBACK (5 bytes).
	r := bufio.NewReader(c)
	ack := make([]byte, 9)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(r, ack); err != nil {
		return nil, fmt.Errorf("reading CONNACK/SUBACK: %w", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] != 1 {
		return nil, fmt.Errorf("unexpected acknowledgements % x", ack)
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

// BenchmarkBrokerMemoryPerConnection reports what one connected, listening
// device costs the embedded broker: Go heap and goroutine stacks.
//
//	go test -run '^$' -bench BrokerMemory -benchtime 8000x ./internal/mqtt/
func BenchmarkBrokerMemoryPerConnection(b *testing.B) {
	f := deviceprototest.New()
	for i := 0; i < b.N; i++ {
		f.AddDevice("p", fmt.Sprintf("d%d", i), "s")
	}
	br, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rssBytes()
	conns := make([]net.Conn, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := rawDevice(br.Addr().String(), "p", fmt.Sprintf("d%d", i), "s")
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	for br.Listening() < b.N {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 4; i++ { // each GC halves stacks that use under a quarter
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	n := float64(b.N)
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/conn")
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/conn")
	b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/conn")
	b.ReportMetric(float64(rssBytes()-rss0)/n, "rss-B/conn")
	for _, c := range conns {
		c.Close()
	}
}

// rssBytes is this process's resident set (Linux; 0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
