//go:build linux

package netpoll_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/netpoll"
)

// server is a poller behind a loopback listener; each accepted connection's
// session records what the poller delivers for it.
type server struct {
	t      *testing.T
	ln     net.Listener
	p      *netpoll.Poller[*session]
	accept chan *session
}

type session struct {
	conn   *netpoll.Conn[*session]
	echo   bool
	mu     sync.Mutex
	got    bytes.Buffer
	closed atomic.Int32 // Handler.Closed calls
	gone   chan struct{}
}

func (s *session) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.got.Bytes())
}

func newServer(t *testing.T, cfg netpoll.Config, echo bool) *server {
	t.Helper()
	p, err := netpoll.New(cfg, netpoll.Handler[*session]{
		Data: func(s *session, data []byte) {
			s.mu.Lock()
			s.got.Write(data)
			s.mu.Unlock()
			if echo {
				// data is the poller's buffer: Write may keep what it
				// cannot send, so it gets a copy.
				if err := s.conn.Write(bytes.Clone(data)); err != nil {
					t.Errorf("echo: %v", err)
				}
			}
		},
		Closed: func(s *session) {
			if s.closed.Add(1) == 1 {
				close(s.gone)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, ln: ln, p: p, accept: make(chan *session, 128)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var sess *session
			err = p.Add(nc, func(c *netpoll.Conn[*session]) *session {
				sess = &session{conn: c, echo: echo, gone: make(chan struct{})}
				return sess
			})
			if err != nil {
				t.Errorf("Add: %v", err)
				return
			}
			s.accept <- sess
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.Close()
	})
	return s
}

// dial connects to the server and returns both ends.
func (s *server) dial() (net.Conn, *session) {
	s.t.Helper()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	select {
	case sess := <-s.accept:
		return c, sess
	case <-time.After(5 * time.Second):
		s.t.Fatal("connection not accepted")
		return nil, nil
	}
}

// tcpPair is a loopback connection: the dialling end and the accepted one.
func tcpPair(t *testing.T, ln net.Listener) (peer, accepted net.Conn) {
	t.Helper()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if accepted, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	return peer, accepted
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var small = netpoll.Config{Pollers: 2, ReadBufferSize: 4 << 10, MaxQueued: 64 << 10}

// Many connections, each sending 1 MiB in uneven pieces through a read
// buffer of 4 KiB and reading back the echo, get their own bytes back in
// order: reads are not lost or interleaved, and echoes larger than what a
// socket takes at once are queued and flushed in order.
func TestEchoesManyConnectionsInOrder(t *testing.T) {
	s := newServer(t, netpoll.Config{Pollers: 2, ReadBufferSize: 4 << 10, MaxQueued: 8 << 20}, true)
	const conns, size = 16, 1 << 20
	var wg sync.WaitGroup
	for i := range conns {
		c, _ := s.dial()
		want := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range want {
			want[j] = byte(r.IntN(256))
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for rest := want; len(rest) > 0; {
				n := min(len(rest), 1+r.IntN(50_000))
				if _, err := c.Write(rest[:n]); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				rest = rest[n:]
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, size)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Errorf("reading the echo: %v", err)
				return
			}
			if !bytes.Equal(got, want) {
				t.Errorf("connection %d: the echo differs from what was sent", i)
			}
		}()
	}
	wg.Wait()
}

// A peer that does not read: writes are queued up to MaxQueued, the next
// one is refused with ErrBacklog, and once the peer reads it gets every
// accepted byte in order and the queue empties.
func TestQueueBoundAndFlushToSlowPeer(t *testing.T) {
	const bound = 64 << 10
	s := newServer(t, netpoll.Config{Pollers: 1, ReadBufferSize: 4 << 10, MaxQueued: bound}, false)
	c, sess := s.dial()
	var sent bytes.Buffer
	chunk := make([]byte, 1000)
	var seq byte
	// Fill the socket until something is queued.
	for sess.conn.Queued() == 0 {
		for i := range chunk {
			chunk[i] = seq
			seq++
		}
		if err := sess.conn.Write(bytes.Clone(chunk)); err != nil {
			t.Fatalf("write before the queue: %v", err)
		}
		sent.Write(chunk)
		if sent.Len() > 64<<20 {
			t.Fatal("64 MiB written and nothing queued: the peer's socket never filled")
		}
	}
	// Just inside the bound: exactly up to it is accepted.
	fill := make([]byte, bound-sess.conn.Queued())
	for i := range fill {
		fill[i] = seq
		seq++
	}
	if err := sess.conn.Write(fill); err != nil {
		t.Fatalf("a write up to the bound was refused: %v", err)
	}
	sent.Write(fill)
	if q := sess.conn.Queued(); q != bound {
		t.Fatalf("queued %d bytes, want %d (the bound)", q, bound)
	}
	// Just outside: one more byte is refused, and changes nothing.
	if err := sess.conn.Write([]byte{seq}); !errors.Is(err, netpoll.ErrBacklog) {
		t.Fatalf("a write past the bound: err %v, want ErrBacklog", err)
	}
	if q := sess.conn.Queued(); q != bound {
		t.Fatalf("a refused write changed the queue: %d bytes, want %d", q, bound)
	}
	got := make([]byte, sent.Len())
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading what was accepted: %v", err)
	}
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatal("the peer got the accepted bytes out of order or changed")
	}
	waitFor(t, "the queue to empty", func() bool { return sess.conn.Queued() == 0 })
	// Nothing extra arrives (the refused byte was not sent).
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := c.Read(make([]byte, 1)); n != 0 {
		t.Fatal("the refused write reached the peer")
	}
}

// One write larger than the bound is taken while nothing waits: the bound
// is for a backlog, not for one message.
func TestOneLargeWriteTakenWhenNothingWaits(t *testing.T) {
	s := newServer(t, netpoll.Config{Pollers: 1, ReadBufferSize: 4 << 10, MaxQueued: 1 << 10}, false)
	c, sess := s.dial()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: more than a socket takes
	if err := sess.conn.Write(big); err != nil {
		t.Fatalf("a large write with nothing waiting: %v", err)
	}
	if q := sess.conn.Queued(); q == 0 || q > len(big) {
		t.Fatalf("queued %d bytes after a 16 MiB write, want some of it", q)
	}
	if err := sess.conn.Write([]byte("x")); !errors.Is(err, netpoll.ErrBacklog) {
		t.Fatalf("a write behind a queue past the bound: err %v, want ErrBacklog", err)
	}
	got := make([]byte, len(big))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the peer did not get the large write whole (err %v)", err)
	}
}

// The peer's last bytes arrive before Closed, which is called once.
func TestPeerCloseDeliversDataThenClosedOnce(t *testing.T) {
	s := newServer(t, small, false)
	c, sess := s.dial()
	msg := bytes.Repeat([]byte("last words "), 3000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-sess.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("Closed not called after the peer closed")
	}
	if got := sess.received(); !bytes.Equal(got, msg) {
		t.Fatalf("got %d bytes before Closed, want %d", len(got), len(msg))
	}
	expectEnded(t, sess, 1)
}

// expectEnded checks a closed connection a moment later: Closed was called
// wantClosed times in all, and a write is refused.
func expectEnded(t *testing.T, sess *session, wantClosed int32) {
	t.Helper()
	time.Sleep(50 * time.Millisecond)
	if n := sess.closed.Load(); n != wantClosed {
		t.Fatalf("Closed called %d times, want %d", n, wantClosed)
	}
	if err := sess.conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after the close: err %v, want net.ErrClosed", err)
	}
}

// The caller's Close reaches the peer as end of file and is not reported
// back through Closed.
func TestCloseEndsPeerWithoutClosed(t *testing.T) {
	s := newServer(t, small, false)
	c, sess := s.dial()
	if err := sess.conn.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	sess.conn.Close()
	sess.conn.Close() // twice is harmless
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("peer read %q, %v; want \"bye\" then end of file", got, err)
	}
	expectEnded(t, sess, 0)
}

// A connection whose descriptor number is reused after a close gets only
// its own bytes: the closed one's index entry is gone before its number is.
func TestReusedDescriptorGetsOnlyItsOwnData(t *testing.T) {
	s := newServer(t, small, false)
	for i := range 200 {
		c, sess := s.dial()
		msg := []byte{byte(i), 'x', byte(i)}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the message", func() bool { return len(sess.received()) >= len(msg) })
		if got := sess.received(); !bytes.Equal(got, msg) {
			t.Fatalf("connection %d got %q, want %q", i, got, msg)
		}
		if i%2 == 0 {
			sess.conn.Close()
		} else {
			c.Close()
			<-sess.gone
		}
	}
}

// Closing the poller ends every connection and every poller goroutine; a
// later Add is refused and closes what it was given.
func TestPollerCloseEndsEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	p, err := netpoll.New(netpoll.Config{Pollers: 3, ReadBufferSize: 1024, MaxQueued: 1024}, netpoll.Handler[int]{
		Data: func(int, []byte) {}, Closed: func(int) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	var peers []net.Conn
	for i := range 10 {
		c, nc := tcpPair(t, ln)
		peers = append(peers, c)
		if err := p.Add(nc, func(*netpoll.Conn[int]) int { return i }); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	for i, c := range peers {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("peer %d after the poller closed: read %d, %v; want end of file", i, n, err)
		}
	}
	waitFor(t, "the poller goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	c, nc := tcpPair(t, ln)
	if err := p.Add(nc, func(*netpoll.Conn[int]) int { return 0 }); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Add after Close: err %v, want net.ErrClosed", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("a connection refused by a closed poller: read %d, %v; want end of file", n, err)
	}
}

// A connection the caller closes while attaching it (a broker shutting
// down) is refused, ends at the peer, and is not watched: its descriptor,
// closed already, may belong to someone else by then.
func TestCloseDuringAttachRefusesTheConnection(t *testing.T) {
	var closed atomic.Int32
	p, err := netpoll.New(small, netpoll.Handler[int]{Data: func(int, []byte) {}, Closed: func(int) { closed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, nc := tcpPair(t, listen(t))
	var conn *netpoll.Conn[int]
	err = p.Add(nc, func(pc *netpoll.Conn[int]) int {
		conn = pc
		pc.Close()
		return 1
	})
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Add of a connection closed in attach: err %v, want net.ErrClosed", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer of a refused connection: read %d, %v; want end of file", n, err)
	}
	if err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a refused connection: err %v, want net.ErrClosed", err)
	}
	if n := closed.Load(); n != 0 {
		t.Fatalf("Closed called %d times for a connection the caller closed", n)
	}
}

// What is not a socket is refused as unsupported and left open for the
// caller to serve another way.
func TestAddRefusesWhatIsNotASocket(t *testing.T) {
	p, err := netpoll.New(small, netpoll.Handler[int]{Data: func(int, []byte) {}, Closed: func(int) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, b := net.Pipe()
	defer b.Close()
	if err := p.Add(a, func(*netpoll.Conn[int]) int { return 0 }); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Add(net.Pipe): err %v, want errors.ErrUnsupported", err)
	}
	go a.Write([]byte("still open"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatalf("the refused connection was closed: %v", err)
	}
	a.Close()
}

// A quiet poller waits in Go's network poller ("IO wait"), holding no
// thread in epoll_wait: the point of the package.
func TestIdlePollerWaitsInGoNetpoller(t *testing.T) {
	s := newServer(t, small, false)
	c, _ := s.dial()
	_ = c
	time.Sleep(20 * time.Millisecond)
	buf := make([]byte, 1<<20)
	dump := string(buf[:runtime.Stack(buf, true)])
	loops := 0
	for _, g := range strings.Split(dump, "\n\n") {
		if !strings.Contains(g, "netpoll.(*loop[...]).run") {
			continue
		}
		loops++
		if header, _, _ := strings.Cut(g, "\n"); !strings.Contains(header, "[IO wait") {
			t.Errorf("an idle poller goroutine is not parked in the network poller: %s", header)
		}
	}
	if loops != small.Pollers {
		t.Fatalf("found %d poller goroutines, want %d", loops, small.Pollers)
	}
}

// New refuses a configuration it cannot run.
func TestNewRefusesNonPositiveSizes(t *testing.T) {
	for _, cfg := range []netpoll.Config{
		{Pollers: 0, ReadBufferSize: 1, MaxQueued: 1},
		{Pollers: 1, ReadBufferSize: 0, MaxQueued: 1},
		{Pollers: 1, ReadBufferSize: 1, MaxQueued: 0},
	} {
		if p, err := netpoll.New(cfg, netpoll.Handler[int]{}); err == nil {
			p.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	p, err := netpoll.New(netpoll.Config{Pollers: 1, ReadBufferSize: 1, MaxQueued: 1}, netpoll.Handler[int]{})
	if err != nil {
		t.Fatalf("New with the smallest sizes: %v", err)
	}
	p.Close()
}
