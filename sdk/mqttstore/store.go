// Package mqttstore holds a paho.mqtt.golang Store that keeps every packet
// as bytes and hands out a fresh copy on each Get.
//
// paho's MemoryStore keeps the very packet a Publish sends. A Publish made
// while a reconnect resumes is then in the store and on its way out at once,
// and the resume marks it a duplicate (p.Dup = true) while the outgoing
// goroutine serializes it: a data race inside paho
// (eclipse-paho/paho.mqtt.golang#703, open). With copies, the resume marks
// its own copy.
package mqttstore

import (
	"bytes"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Copying is a paho.Store in memory that stores serialized packets.
type Copying struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ paho.Store = (*Copying)(nil)

// New returns an empty store.
func New() *Copying { return &Copying{m: map[string][]byte{}} }

// Open does nothing: the store is ready when made.
func (s *Copying) Open() {}

// Close does nothing; the packets stay until Reset or Del.
func (s *Copying) Close() {}

// Put keeps a serialized copy of message. Serializing writes the
// packet's length fields, which only its publisher holds at this point.
func (s *Copying) Put(key string, message packets.ControlPacket) {
	var b bytes.Buffer
	if err := message.Write(&b); err != nil {
		return // paho's own stores drop what they cannot keep, too
	}
	s.mu.Lock()
	s.m[key] = b.Bytes()
	s.mu.Unlock()
}

// Get returns a new packet parsed from the stored bytes, or nil.
func (s *Copying) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	b, ok := s.m[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	p, err := packets.ReadPacket(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	return p
}

// All lists the stored keys.
func (s *Copying) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys
}

// Del forgets a packet.
func (s *Copying) Del(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// Reset forgets every packet.
func (s *Copying) Reset() {
	s.mu.Lock()
	s.m = map[string][]byte{}
	s.mu.Unlock()
}
