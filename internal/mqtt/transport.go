package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/netpoll"
)

// transport is how a client's packets reach its socket. write never
// blocks: it queues the packet, and refuses it (errSlowDevice) when the
// device already leaves more than its bound unread, so one device that does
// not read cannot make the broker hold an unbounded amount for it.
type transport interface {
	write(p []byte) error
	// close closes the socket; bytes already queued are sent first where
	// the transport can (TLS), so a refusal's CONNACK reaches the device.
	close()
	remote() string
	// cert is the verified TLS client certificate, if any.
	cert() *x509.Certificate
}

var errSlowDevice = errors.New("the device does not read what the broker sends it (its socket has been full past the pending-write bound); it is disconnected and may reconnect")

// pollTransport is a plain TCP connection served by the broker's netpoll
// poller: no goroutine while idle. A write goes to the socket at once; what
// the socket does not take waits in the connection's queue, bounded by
// pendingLimit (netpoll.Config.MaxQueued).
type pollTransport struct {
	conn *netpoll.Conn[*client]
}

func (t *pollTransport) write(p []byte) error {
	err := t.conn.Write(p)
	if errors.Is(err, netpoll.ErrBacklog) {
		return errSlowDevice
	}
	return err
}

func (t *pollTransport) close()                  { t.conn.Close() }
func (t *pollTransport) cert() *x509.Certificate { return nil }
func (t *pollTransport) remote() string {
	if a := t.conn.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// streamTransport is a connection read by its own goroutine: MQTT over TLS
// (crypto/tls needs a blocking net.Conn), or a connection the poller cannot take.
// Writes are queued and written by a goroutine that exists only while the
// queue is not empty.
type streamTransport struct {
	conn    net.Conn
	limit   int
	onError func(error)       // the client's close, for a failed write
	peer    *x509.Certificate // set after the handshake, before any packet is read

	mu      sync.Mutex
	queue   [][]byte
	queued  int
	writing bool
	closed  bool
}

// streamWriteTimeout bounds one write to a TLS device; a device that takes
// longer is not reading and is disconnected.
const streamWriteTimeout = 10 * time.Second

// streamCloseTimeout bounds what is still written to a TLS device once its
// connection is being closed (a refusal's CONNACK, a DISCONNECT).
const streamCloseTimeout = time.Second

func (t *streamTransport) write(p []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	if t.queued > 0 && t.queued+len(p) > t.limit {
		return errSlowDevice
	}
	t.queue = append(t.queue, p)
	t.queued += len(p)
	if !t.writing {
		t.writing = true
		go t.flush()
	}
	return nil
}

func (t *streamTransport) flush() {
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			t.queue, t.writing = nil, false
			closed := t.closed
			t.mu.Unlock()
			if closed {
				t.conn.Close() // close waited for this flush
			}
			return
		}
		p := t.queue[0]
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.queued -= len(p)
		timeout := streamWriteTimeout
		if t.closed {
			timeout = streamCloseTimeout
		}
		t.mu.Unlock()
		_ = t.conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := t.conn.Write(p); err != nil {
			t.mu.Lock()
			t.queue, t.queued, t.writing, t.closed = nil, 0, false, true
			t.mu.Unlock()
			t.conn.Close()
			t.onError(err)
			return
		}
	}
}

func (t *streamTransport) close() {
	t.mu.Lock()
	already := t.closed
	t.closed = true
	flushing := t.writing
	t.mu.Unlock()
	switch {
	case already:
	case flushing:
		// The flush ends with the close; bound the write it may be in.
		_ = t.conn.SetWriteDeadline(time.Now().Add(streamCloseTimeout))
	default:
		t.conn.Close()
	}
}

func (t *streamTransport) remote() string          { return t.conn.RemoteAddr().String() }
func (t *streamTransport) cert() *x509.Certificate { return t.peer }

// peerCert is the verified client certificate of a TLS connection, nil for
// plain connections and TLS ones without a certificate.
func peerCert(c net.Conn) *x509.Certificate {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil // not verified: never trusted, even if sent
	}
	return st.VerifiedChains[0][0]
}
