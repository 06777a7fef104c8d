// Package netpoll serves many mostly idle TCP connections without a
// goroutine or a buffer each: a few pollers watch every connection through
// epoll, read what arrives into one buffer per poller and hand it to the
// caller, and writes go straight to the socket from the writer's goroutine,
// queued only for what the socket cannot take at once.
//
// What sets it apart from an event loop that blocks in epoll_wait: a poller
// waits for its epoll descriptor in Go's own network poller, so a quiet
// poller holds no thread and no P. A poller blocked in epoll_wait holds its
// P in a system call that Go's sysmon thread has to watch and take back,
// polling every 20 µs while that keeps happening; on a busy broker that
// watching cost 15–19 % of the server's CPU (docs/architecture.md §7).
//
// It runs on Linux; elsewhere New reports errors.ErrUnsupported and the
// caller serves connections with a goroutine each.
package netpoll

import (
	"errors"
)

// Handler receives a poller's events. Both are called on the connection's
// poller goroutine, one at a time per connection and in order, so they must
// not block: they hand work to other goroutines.
type Handler[S any] struct {
	// Data is bytes read from the connection. data is the poller's buffer,
	// valid only until Data returns.
	Data func(session S, data []byte)
	// Closed is called once when the peer closed the connection or it
	// failed; it is not called for the caller's own Conn.Close.
	Closed func(session S)
}

// Config sizes a Poller.
type Config struct {
	// Pollers is how many epoll loops share the connections (at least 1).
	Pollers int
	// ReadBufferSize is each poller's read buffer; one read takes at most
	// this much from a connection before the poller moves on.
	ReadBufferSize int
	// MaxQueued bounds what one connection may have waiting for its
	// socket: a write that would take the queue past it, while something
	// is already waiting, is refused with ErrBacklog (one write larger than
	// the bound is still taken when nothing waits).
	MaxQueued int
}

// ErrBacklog refuses a write to a connection whose peer does not read what
// it is sent: its socket is full and its queue at the Config.MaxQueued bound.
var ErrBacklog = errors.New("netpoll: the peer does not read (its socket is full and the connection's write queue is at its bound)")
