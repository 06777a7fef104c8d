//go:build !linux

package netpoll

import (
	"errors"
	"net"
)

// Poller is unavailable here: New always fails.
type Poller[S any] struct{}

// Conn is unavailable here.
type Conn[S any] struct{}

// New reports errors.ErrUnsupported: the poller needs Linux's epoll.
func New[S any](Config, Handler[S]) (*Poller[S], error) {
	return nil, errors.ErrUnsupported
}

func (p *Poller[S]) Add(net.Conn, func(*Conn[S]) S) error { return errors.ErrUnsupported }
func (p *Poller[S]) Close()                               {}
func (c *Conn[S]) RemoteAddr() net.Addr                   { return nil }
func (c *Conn[S]) Write([]byte) error                     { return net.ErrClosed }
func (c *Conn[S]) Queued() int                            { return 0 }
func (c *Conn[S]) Close() error                           { return nil }
