//go:build linux

package netpoll

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller watches connections through epoll.
type Poller[S any] struct {
	cfg    Config
	h      Handler[S]
	loops  []*loop[S]
	next   atomic.Uint32
	closed atomic.Bool
	wg     sync.WaitGroup
}

// loop is one epoll set and the goroutine that waits on it.
type loop[S any] struct {
	p    *Poller[S]
	epfd int
	// ep is epfd as a non-blocking file, so that waiting for it to become
	// readable (an event is ready in the set) parks the goroutine in Go's
	// network poller instead of blocking a thread in epoll_wait.
	ep  *os.File
	raw syscall.RawConn
	buf []byte

	mu    sync.Mutex
	conns map[int32]*Conn[S] // by descriptor: what an epoll event names
}

// Conn is one connection served by a Poller.
type Conn[S any] struct {
	l       *loop[S]
	fd      int32
	remote  net.Addr
	session S

	mu     sync.Mutex
	closed bool
	queue  [][]byte // what the socket did not take yet, in order
	queued int      // bytes in queue
}

// New starts cfg.Pollers pollers.
func New[S any](cfg Config, h Handler[S]) (*Poller[S], error) {
	if cfg.Pollers < 1 || cfg.ReadBufferSize < 1 || cfg.MaxQueued < 1 {
		return nil, fmt.Errorf("netpoll: Pollers, ReadBufferSize and MaxQueued must be positive (got %d, %d, %d)", cfg.Pollers, cfg.ReadBufferSize, cfg.MaxQueued)
	}
	p := &Poller[S]{cfg: cfg, h: h}
	for range cfg.Pollers {
		l, err := newLoop(p)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.loops = append(p.loops, l)
		p.wg.Add(1)
		go l.run()
	}
	return p, nil
}

func newLoop[S any](p *Poller[S]) (*loop[S], error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: creating an epoll set: %w (raise the open-file limit)", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("netpoll: %w", err)
	}
	return &loop[S]{
		p: p, epfd: epfd, ep: ep, raw: raw,
		buf:   make([]byte, p.cfg.ReadBufferSize),
		conns: make(map[int32]*Conn[S]),
	}, nil
}

// Add takes over nc, which must be a socket (a *net.TCPConn): its
// descriptor is duplicated into the poller and nc itself is closed. attach
// gives the connection's session before any event for it is delivered. An
// error means nc was not taken (it is still open) when errors.Is(err,
// errors.ErrUnsupported); otherwise nc is closed, and so is the Conn attach
// was given, if it was (closing it again is harmless).
func (p *Poller[S]) Add(nc net.Conn, attach func(*Conn[S]) S) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("netpoll: %T is not a socket: %w", nc, errors.ErrUnsupported)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("netpoll: %v: %w", err, errors.ErrUnsupported)
	}
	fd := -1
	cerr := raw.Control(func(s uintptr) {
		// The duplicate shares the socket's open file description, so it
		// is non-blocking like the original.
		fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	})
	remote := nc.RemoteAddr()
	nc.Close()
	if cerr != nil || err != nil {
		return fmt.Errorf("netpoll: taking over a connection: %w (raise the open-file limit)", errors.Join(cerr, err))
	}
	if fd > 1<<31-1 {
		unix.Close(fd)
		return fmt.Errorf("netpoll: descriptor %d out of range", fd)
	}
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	c := &Conn[S]{l: l, fd: int32(fd), remote: remote}
	c.session = attach(c)
	// c.mu is held until the descriptor is in the epoll set, so a Close
	// racing with Add (the poller's, or the caller's from attach's session)
	// never closes a descriptor the set is about to take.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		// Closed from attach (the caller refused the connection): the
		// descriptor is closed already, and its number may be reused.
		return net.ErrClosed
	}
	l.mu.Lock()
	if p.closed.Load() {
		l.mu.Unlock()
		c.closed = true
		unix.Close(fd)
		return net.ErrClosed
	}
	l.conns[c.fd] = c
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.fd}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.forget(c)
		c.closed = true
		unix.Close(fd)
		return fmt.Errorf("netpoll: watching a connection: %w", err)
	}
	return nil
}

// Close closes every connection (without Handler.Closed) and stops the
// pollers.
func (p *Poller[S]) Close() {
	if p.closed.Swap(true) {
		return
	}
	for _, l := range p.loops {
		l.mu.Lock()
		cs := make([]*Conn[S], 0, len(l.conns))
		for _, c := range l.conns {
			cs = append(cs, c)
		}
		l.mu.Unlock()
		for _, c := range cs {
			c.close()
		}
		// Closing the file wakes the loop's wait with an error; the
		// descriptor is closed once the loop is out of it.
		l.ep.Close()
	}
	p.wg.Wait()
}

func (l *loop[S]) run() {
	defer l.p.wg.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := l.raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			switch {
			case werr == unix.EINTR:
				n, werr = 0, nil
				return true // ask again rather than park on an edge already taken
			case werr != nil:
				return true
			}
			return n > 0 // nothing ready: park until the set becomes readable
		})
		if err != nil || werr != nil {
			return // the poller is closing (or its set is unusable)
		}
		for i := range n {
			l.handle(events[i])
		}
	}
}

func (l *loop[S]) handle(ev unix.EpollEvent) {
	l.mu.Lock()
	c := l.conns[ev.Fd]
	l.mu.Unlock()
	if c == nil {
		return // closed since the event was queued
	}
	if ev.Events&unix.EPOLLOUT != 0 {
		if err := c.flush(); err != nil {
			l.lost(c)
			return
		}
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	// One read per event: the set is level-triggered, so what is left is
	// reported again, after the other connections' turn.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	n, err := unix.Read(int(c.fd), l.buf)
	c.mu.Unlock()
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
	case err == nil && n > 0:
		l.p.h.Data(c.session, l.buf[:n])
	default: // 0 bytes: the peer closed its side; or the read failed
		l.lost(c)
	}
}

// lost closes a connection the peer closed or that failed, and says so.
func (l *loop[S]) lost(c *Conn[S]) {
	if c.close() {
		l.p.h.Closed(c.session)
	}
}

// forget removes c from the loop's index, if it is still there.
func (l *loop[S]) forget(c *Conn[S]) {
	l.mu.Lock()
	if l.conns[c.fd] == c {
		delete(l.conns, c.fd)
	}
	l.mu.Unlock()
}

// RemoteAddr is the peer's address.
func (c *Conn[S]) RemoteAddr() net.Addr { return c.remote }

// Write sends b, or what the socket does not take at once later, in order
// with the connection's other writes. It never blocks. b is kept, not
// copied, when it cannot all be sent now: the caller must not change it.
func (c *Conn[S]) Write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	if c.queued > 0 {
		if c.queued+len(b) > c.l.p.cfg.MaxQueued {
			return ErrBacklog
		}
		c.queue = append(c.queue, b)
		c.queued += len(b)
		return nil
	}
	for len(b) > 0 {
		n, err := unix.Write(int(c.fd), b)
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			c.queue = append(c.queue, b)
			c.queued = len(b)
			return c.watch(unix.EPOLLOUT)
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		default:
			b = b[n:]
		}
	}
	return nil
}

// Queued is how many bytes wait for the socket.
func (c *Conn[S]) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// flush writes what is queued, as far as the socket takes it, on the
// poller when the socket has room.
func (c *Conn[S]) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	for len(c.queue) > 0 {
		b := c.queue[0]
		n, err := unix.Write(int(c.fd), b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		c.queued -= n
		if n < len(b) {
			c.queue[0] = b[n:]
			continue
		}
		c.queue[0] = nil
		c.queue = c.queue[1:]
	}
	c.queue = nil
	return c.watch(0)
}

// watch sets what the poller waits for on c beyond readable: EPOLLOUT
// while something is queued. Under c.mu.
func (c *Conn[S]) watch(extra uint32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | extra, Fd: c.fd}
	return unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev)
}

// Close closes the connection; what is still queued is dropped.
func (c *Conn[S]) Close() error {
	c.close()
	return nil
}

// close closes c once and reports whether this call did.
func (c *Conn[S]) close() bool {
	// Out of the index before the descriptor is closed, so the number,
	// once reused by a new connection, never finds this one.
	c.l.forget(c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	c.queue, c.queued = nil, 0
	// Removed from the set explicitly: a copy of the descriptor in a
	// child being forked would keep it there after the close.
	_ = unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	unix.Close(int(c.fd))
	return true
}
