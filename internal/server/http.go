package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/updraft-ota/updraft/internal/api/httpx"
)

// httpMetrics are the request counters every route shares.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// newRegistry builds a registry per server (not the global one), so several
// servers in one test process do not collide.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return r
}

func (s *Server) newHTTPMetrics() *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "updraft_http_requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "updraft_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "updraft_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
	}
	s.metrics.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{Registry: s.metrics})
}

// healthz answers 200 when the store answers, 503 otherwise.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: store unreachable", "err", err)
		// /healthz needs no credentials: the cause (which may name hosts and
		// users) goes to the log, not to whoever asks.
		httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "unreachable (see the server log)"})
		return
	}
	// mqtt is where this server's devices connect (as credentials.json
	// records it): `updraft sim` and operators compare it with the broker
	// they point devices at.
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "mqtt": s.deviceMQTT})
}

// middleware gives every request an id, then counts, times and logs it.
func (s *Server) middleware(next http.Handler) http.Handler {
	m := s.newHTTPMetrics()
	observed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := httpx.RequestIDFrom(r.Context())
		// Front-ends that run httpx.RequestID themselves then reuse this id
		// instead of minting another, so logs and error bodies agree.
		r.Header.Set(httpx.RequestIDHeader, id)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		r, slot := httpx.WithRouteSlot(r)
		next.ServeHTTP(sw, r)
		elapsed := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		// A front-end records the route it dispatched to (httpx.RecordRoute);
		// else the mux's pattern on this very request (the mount point).
		// Unmatched requests share one label so that scanners cannot blow
		// up the cardinality.
		route := *slot
		if route == "" {
			route = r.Pattern
		}
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(r.Method, route).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if route == "GET /healthz" || route == "GET /metrics" {
			level = slog.LevelDebug
		}
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", id),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", elapsed),
			slog.String("remote", r.RemoteAddr),
		)
	})
	return httpx.RequestID(observed)
}

// statusWriter records the status and body size. It passes Flush and
// ReadFrom through (sendfile for downloads) and unwraps for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack passes connection takeover (WebSocket upgrades) through.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the underlying ResponseWriter cannot be hijacked")
	}
	w.status = http.StatusSwitchingProtocols
	return h.Hijack()
}
