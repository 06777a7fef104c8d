// Package service holds Updraft's use cases. Every front-end (native REST API,
// vendor dialects, MQTT, device HTTP, console, CLI through the API) calls these
// methods and nothing below them, so each rule lives once: here or in ota.
package service

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/updraft-ota/updraft/internal/blob"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/store"
)

// Clock tells the time; tests inject a fake one to drive schedules, rates,
// timeouts and retries without sleeping.
type Clock interface{ Now() time.Time }

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Notifier delivers upgrade notices to devices (MQTT publish, or a queue a
// polling device reads). It is called after tasks have been claimed as
// notified; a notice that cannot be delivered now (device offline) is sent
// again when the device connects or polls (NextNotice).
type Notifier interface {
	Notify(ctx context.Context, notices []ota.Notice) error
}

// NopNotifier drops notices; devices then learn of updates by polling.
type NopNotifier struct{}

// Notify does nothing.
func (NopNotifier) Notify(context.Context, []ota.Notice) error { return nil }

// Principal is the caller of a management API: a tenant, through one key
// with one role. Internal callers (device protocols, the engine) build
// Principal{TenantID: …} without a role: they never pass through Allow.
type Principal struct {
	TenantID    string
	AccessKeyID string
	Role        ota.Role
}

// Key is the access key a call is made with (rate limits count by it).
func (p Principal) Key() string { return p.AccessKeyID }

// Tenant is the principal's tenant id (httpx charges rate limits to it).
func (p Principal) Tenant() string { return p.TenantID }

// Options configure a Service.
type Options struct {
	// DefaultBucket holds packages uploaded through the APIs.
	DefaultBucket string
	// DownloadURLTTL is how long a notice's signed URL stays valid.
	DownloadURLTTL time.Duration
	// MaterializeBatch is how many tasks a job creates per store call.
	MaterializeBatch int
	// ClaimBatch is how many tasks the engine claims per store call.
	ClaimBatch int
	// MaxPackageSize is the largest package file or object an upload may
	// store, in bytes: ota.MaxPackageSize (1 GB, Huawei's object limit)
	// unless an operator (or a test of the limit) sets it lower.
	MaxPackageSize int64
	// TasksFinished, when set, hears of every n tasks that ended succeeded
	// or failed (with the failure's reason), in this replica: the server
	// counts them in its metrics. Called after the store has the change;
	// it must not block.
	TasksFinished func(state ota.TaskState, reason ota.Reason, n int64)
	// MaxUploads bounds the uploads (package files, objects) this replica
	// receives at once, MaxUploadsPerTenant those of one tenant (see
	// uploadslots.go). 0 takes the defaults, a negative value is no limit.
	MaxUploads          int
	MaxUploadsPerTenant int
	// ProgressFlushInterval is how long a progress report that only moves
	// an in-progress task's percentage may wait in memory to be written
	// with others (progress.go): DefaultProgressFlushInterval when 0; a
	// negative value writes every report at once. MaxProgressTasks bounds
	// the tasks tracked for it (DefaultMaxProgressTasks when 0); reaching
	// it forgets them all.
	ProgressFlushInterval time.Duration
	MaxProgressTasks      int
}

func (o *Options) defaults() {
	if o.MaxUploads == 0 {
		o.MaxUploads = DefaultMaxUploads
	}
	if o.MaxUploadsPerTenant == 0 {
		o.MaxUploadsPerTenant = DefaultMaxUploadsPerTenant
	}
	if o.DefaultBucket == "" {
		o.DefaultBucket = "updraft"
	}
	if o.DownloadURLTTL == 0 {
		o.DownloadURLTTL = 24 * time.Hour
	}
	if o.MaterializeBatch == 0 {
		o.MaterializeBatch = 5000
	}
	if o.ClaimBatch == 0 {
		o.ClaimBatch = 500
	}
	if o.MaxPackageSize <= 0 || o.MaxPackageSize > ota.MaxPackageSize {
		o.MaxPackageSize = ota.MaxPackageSize
	}
	if o.ProgressFlushInterval == 0 {
		o.ProgressFlushInterval = DefaultProgressFlushInterval
	}
	if o.MaxProgressTasks <= 0 {
		o.MaxProgressTasks = DefaultMaxProgressTasks
	}
	if o.TasksFinished == nil {
		o.TasksFinished = func(ota.TaskState, ota.Reason, int64) {}
	}
}

// Service is the set of use cases over one store and one blob store.
type Service struct {
	store    store.Store
	blobs    blob.Store
	clock    Clock
	notifier Notifier
	log      *slog.Logger
	opts     Options
	engine   engineState            // the rollout engine's per-replica hints (engine.go)
	wake     atomic.Pointer[func()] // wakes this replica's engine (wake.go)
	// nonceSweep is when this replica last removed expired nonces (unix ns).
	nonceSweep atomic.Int64
	// uploadSweep is when this replica last removed unclaimed uploads.
	uploadSweep atomic.Int64
	// uploads are the concurrent-upload slots (uploadslots.go).
	uploads *uploadSlots
	// progress holds percentages waiting to be written (progress.go).
	progress *progressBuffer
}

// New builds a Service. notifier may be nil (NopNotifier) and set later with
// SetNotifier, because the MQTT front-end that implements it needs the
// Service first.
func New(st store.Store, blobs blob.Store, clock Clock, notifier Notifier, log *slog.Logger, opts Options) *Service {
	opts.defaults()
	if clock == nil {
		clock = SystemClock{}
	}
	if notifier == nil {
		notifier = NopNotifier{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: st, blobs: blobs, clock: clock, notifier: notifier, log: log, opts: opts,
		uploads:  &uploadSlots{max: opts.MaxUploads, perTenant: opts.MaxUploadsPerTenant},
		progress: newProgressBuffer(opts.ProgressFlushInterval, opts.MaxProgressTasks)}
}

// SetNotifier replaces the notifier; call it before the engine starts.
func (s *Service) SetNotifier(n Notifier) { s.notifier = n }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.clock.Now() }
