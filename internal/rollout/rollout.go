// Package rollout runs the rollout engine: a loop in every replica that calls
// the service's Tick on an interval. Every rule (when to dispatch, retry,
// time out, abort, complete) is in service (engine.go) and ota; this package
// only keeps time, logs ticks that did work, and counts them for /metrics.
package rollout

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/updraft-ota/updraft/internal/service"
)

// DefaultInterval is how often the engine ticks.
const DefaultInterval = time.Second

// Advancer is what the engine drives: *service.Service.
type Advancer interface {
	Advance(ctx context.Context) (service.TickReport, error)
}

// Options configure an Engine.
type Options struct {
	Interval time.Duration // 0 = DefaultInterval
	Log      *slog.Logger  // nil = slog.Default()
	// Registerer receives the engine's metrics (nil = none), e.g.
	// prometheus.DefaultRegisterer for the /metrics endpoint.
	Registerer prometheus.Registerer
}

// Engine ticks an Advancer until stopped.
type Engine struct {
	svc      Advancer
	interval time.Duration
	log      *slog.Logger
	m        *metrics

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{} // Wake: tick now (capacity 1: wakes coalesce)
}

// New builds an Engine. It fails only when its metrics cannot be registered
// (registered twice on the same registry).
func New(svc Advancer, opts Options) (*Engine, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{svc: svc, interval: opts.Interval, log: opts.Log, m: m, wake: make(chan struct{}, 1)}, nil
}

// Start runs the loop in a goroutine until ctx ends or Stop is called. It
// ticks once at once, then every interval; a tick longer than the interval
// delays the next one (ticks never overlap).
func (e *Engine) Start(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done != nil {
		return
	}
	ctx, e.cancel = context.WithCancel(ctx)
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		e.loop(ctx)
	}()
}

// Wake makes the engine tick as soon as it is not ticking (a job was just
// created: its first notices should not wait for the interval). It never
// blocks; wakes that arrive during a tick make one more tick.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Stop ends the loop and waits for the tick in progress to finish.
func (e *Engine) Stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
}

// Run ticks svc every interval until ctx ends; it returns ctx's error.
func Run(ctx context.Context, svc Advancer, interval time.Duration) error {
	e, err := New(svc, Options{Interval: interval})
	if err != nil {
		return err
	}
	e.loop(ctx)
	return ctx.Err()
}

func (e *Engine) loop(ctx context.Context) {
	e.log.Info("rollout engine started", "interval", e.interval)
	defer e.log.Info("rollout engine stopped")
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		if e.tick(ctx) {
			continue // a per-tick budget left work: no reason to wait
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// tick advances every job once and reports whether it should run again at
// once (TickReport.More, and no error: a failing store is not retried in a
// tight loop).
func (e *Engine) tick(ctx context.Context) bool {
	start := time.Now()
	rep, err := e.svc.Advance(ctx)
	took := time.Since(start)
	e.m.observe(rep, err, took)
	if ctx.Err() != nil {
		return false // stopping: the error is the cancellation
	}
	if err != nil {
		e.log.Error("rollout tick failed", "err", err, "took", took)
	}
	if rep.DidWork() {
		e.log.Info("rollout tick", "jobs", rep.Jobs, "started", rep.Started, "ended", rep.Ended,
			"materialized", rep.Materialized, "notified", rep.Notified, "requeued", rep.Requeued,
			"timed_out", rep.TimedOut, "took", took)
	}
	return err == nil && rep.More
}

// metrics are the engine's Prometheus series; a nil *metrics records nothing.
type metrics struct {
	ticks, tickErrors                         prometheus.Counter
	duration                                  prometheus.Histogram
	notified, materialized, requeued, timeout prometheus.Counter
	started, ended                            prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "updraft", Subsystem: "rollout", Name: name, Help: help})
	}
	m := &metrics{
		ticks:      counter("ticks_total", "Engine ticks run."),
		tickErrors: counter("tick_errors_total", "Engine ticks in which a job step failed."),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "updraft", Subsystem: "rollout",
			Name: "tick_duration_seconds", Help: "Time one engine tick took.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		notified:     counter("tasks_notified_total", "Tasks claimed and handed to the notifier."),
		materialized: counter("tasks_materialized_total", "Tasks created by materialization."),
		requeued:     counter("tasks_requeued_total", "Tasks moved from retry_wait back to queued."),
		timeout:      counter("tasks_timed_out_total", "Tasks failed by their timeout."),
		started:      counter("jobs_started_total", "Planned jobs that started."),
		ended:        counter("jobs_ended_total", "Jobs completed or canceled by the engine."),
	}
	for _, c := range []prometheus.Collector{m.ticks, m.tickErrors, m.duration, m.notified, m.materialized,
		m.requeued, m.timeout, m.started, m.ended} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(rep service.TickReport, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.ticks.Inc()
	if err != nil {
		m.tickErrors.Inc()
	}
	m.duration.Observe(took.Seconds())
	m.notified.Add(float64(rep.Notified))
	m.materialized.Add(float64(rep.Materialized))
	m.requeued.Add(float64(rep.Requeued))
	m.timeout.Add(float64(rep.TimedOut))
	m.started.Add(float64(rep.Started))
	m.ended.Add(float64(rep.Ended))
}
