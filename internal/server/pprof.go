package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
)

// Profiling (--pprof ADDR) lives on its own listener, never on --http: the
// profiles reveal internals and cost CPU, so they must not be reachable
// where devices and API clients are, and an operator binds them to
// loopback or a private network.

// listenPprof binds --pprof in New (so a busy port fails the start like
// the other listeners) when it is set.
func (s *Server) listenPprof() error {
	if s.cfg.PprofAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.PprofAddr)
	if err != nil {
		return config.ListenError("pprof", s.cfg.PprofAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.pprofLn = ln
	s.pprofServe = func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("pprof listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}
	// A profile in progress (profile?seconds=30) must not hold up shutdown.
	s.onShutdown(func(context.Context) error { _ = srv.Close(); _ = ln.Close(); return nil })
	return nil
}

// PprofAddr is the address --pprof listens on ("" when off).
func (s *Server) PprofAddr() string {
	if s.pprofLn == nil {
		return ""
	}
	return s.pprofLn.Addr().String()
}
