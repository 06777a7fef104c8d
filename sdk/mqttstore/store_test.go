package mqttstore

import (
	"sync"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestCopies: what Get returns is a copy of what was Put, so a resume that
// marks it a duplicate does not touch the packet its publisher is sending
// (run with -race: the writer and the marker share nothing).
func TestCopies(t *testing.T) {
	s := New()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = "a/b", 1, 7, []byte("v2.0")
	s.Put("o.7", pub)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the outgoing goroutine serializing the original
		defer wg.Done()
		for range 100 {
			var b bytesCounter
			_ = pub.Write(&b)
		}
	}()
	go func() { // a resume marking the stored one
		defer wg.Done()
		for range 100 {
			got := s.Get("o.7").(*packets.PublishPacket)
			got.Dup = true
		}
	}()
	wg.Wait()

	got := s.Get("o.7").(*packets.PublishPacket)
	if got == pub || got.TopicName != "a/b" || got.MessageID != 7 || string(got.Payload) != "v2.0" || got.Qos != 1 || got.Dup {
		t.Fatalf("Get = %+v, want an unmarked copy of %+v", got, pub)
	}
	if keys := s.All(); len(keys) != 1 || keys[0] != "o.7" {
		t.Fatalf("All = %v", keys)
	}
	s.Del("o.7")
	if s.Get("o.7") != nil {
		t.Fatal("Get after Del returned a packet")
	}
	s.Put("o.8", pub)
	s.Reset()
	if len(s.All()) != 0 {
		t.Fatal("Reset left packets")
	}
}

type bytesCounter struct{ n int }

func (b *bytesCounter) Write(p []byte) (int, error) { b.n += len(p); return len(p), nil }
