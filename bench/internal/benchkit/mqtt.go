package benchkit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// MQTTConn is a bare MQTT 3.1.1 client connection: one socket, one reader
// goroutine, no queues. The bench programs hold 10 000 of them in one
// process, where a full client library would cost more than the broker
// being measured.
type MQTTConn struct {
	c   net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	pid uint16
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendLen(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func packet(typ byte, body []byte) []byte {
	out := appendLen([]byte{typ}, len(body))
	return append(out, body...)
}

// DialMQTT connects with a clean session (keepalive 0: idle connections are
// never pinged, so they cost the broker nothing but their state) and waits
// for the CONNACK.
func DialMQTT(addr, clientID, username, password string) (*MQTTConn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	flags := byte(0x02)
	body := appendString(nil, "MQTT")
	body = append(body, 4, 0, 0, 0) // level 4, flags (set below), keepalive 0
	var payload []byte
	payload = appendString(payload, clientID)
	if username != "" {
		flags |= 0x80
		payload = appendString(payload, username)
	}
	if password != "" {
		flags |= 0x40
		payload = appendString(payload, password)
	}
	body[7] = flags
	body = append(body, payload...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(packet(0x10, body)); err != nil {
		c.Close()
		return nil, err
	}
	m := &MQTTConn{c: c, br: bufio.NewReaderSize(c, 512)}
	typ, b, err := m.read()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading CONNACK: %w", err)
	}
	if typ>>4 != 2 || len(b) != 2 || b[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("connection refused: packet %#x %v", typ, b)
	}
	_ = c.SetDeadline(time.Time{})
	return m, nil
}

func (m *MQTTConn) read() (byte, []byte, error) {
	typ, err := m.br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		d, err := m.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("bad remaining length")
		}
	}
	b := make([]byte, n)
	_, err = io.ReadFull(m.br, b)
	return typ, b, err
}

func (m *MQTTConn) write(p []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, err := m.c.Write(p)
	return err
}

// Subscribe subscribes to topic and waits for the SUBACK.
func (m *MQTTConn) Subscribe(topic string, qos byte) error {
	m.pid++
	body := binary.BigEndian.AppendUint16(nil, m.pid)
	body = appendString(body, topic)
	body = append(body, qos)
	if err := m.write(packet(0x82, body)); err != nil {
		return err
	}
	_ = m.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer m.c.SetReadDeadline(time.Time{})
	for {
		typ, b, err := m.read()
		if err != nil {
			return fmt.Errorf("reading SUBACK: %w", err)
		}
		if typ>>4 == 9 {
			if len(b) < 3 || b[2] == 0x80 {
				return fmt.Errorf("subscription to %s refused", topic)
			}
			return nil
		}
		// A publish that raced the SUBACK (a pending notice): acknowledge it.
		if typ>>4 == 3 {
			m.ack(typ, b)
		}
	}
}

// Publish sends a message; with QoS 1 it does not wait for the PUBACK (the
// reader loop of Listen sees it).
func (m *MQTTConn) Publish(topic string, qos byte, payload []byte) error {
	body := appendString(nil, topic)
	if qos > 0 {
		m.pid++
		if m.pid == 0 {
			m.pid = 1
		}
		body = binary.BigEndian.AppendUint16(body, m.pid)
	}
	body = append(body, payload...)
	return m.write(packet(0x30|qos<<1, body))
}

func (m *MQTTConn) ack(typ byte, b []byte) {
	if (typ>>1)&3 == 0 || len(b) < 2 {
		return
	}
	tl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+tl+2 {
		return
	}
	_ = m.write(packet(0x40, b[2+tl:2+tl+2]))
}

// Listen reads until the connection ends, acknowledges QoS 1 messages and
// calls onPublish (topic, payload) for each message and onAck for each
// PUBACK. Run it in its own goroutine.
func (m *MQTTConn) Listen(onPublish func(topic string, payload []byte), onAck func()) error {
	for {
		typ, b, err := m.read()
		if err != nil {
			return err
		}
		switch typ >> 4 {
		case 3:
			m.ack(typ, b)
			if onPublish != nil && len(b) >= 2 {
				tl := int(binary.BigEndian.Uint16(b))
				if len(b) >= 2+tl {
					rest := b[2+tl:]
					if (typ>>1)&3 > 0 && len(rest) >= 2 {
						rest = rest[2:]
					}
					onPublish(string(b[2:2+tl]), rest)
				}
			}
		case 4:
			if onAck != nil {
				onAck()
			}
		}
	}
}

// Close closes the socket (no DISCONNECT: the broker sees a dropped client).
func (m *MQTTConn) Close() error { return m.c.Close() }
