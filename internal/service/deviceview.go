package service

// DeviceView: what a polling device asks most, answered from memory.
//
// A device polling over HTTP with nothing pending used to cost two queries
// per poll (its credentials, its active task). A fleet polls all the time
// and almost always has nothing pending, so each replica remembers, per
// device, its credentials and "no active task on module M", and forgets
// all of it when the store's DeviceViewVersion moves. That version moves
// on every change that could make either wrong (a task inserted or
// reopened, a device deleted or its secret changed: the store contract).
// Reading it is one tiny query, shared: a reading made less than MaxStale
// ago serves every check-in that arrives meanwhile, so an idle check-in
// costs no query of its own, and what a replica serves is at most MaxStale
// older than the store. Anything not remembered, and every device that has
// an active task, goes to the service as before.
//
// A poll also records the device's sighting (DeviceSeen), a conditional
// write that costs a write transaction even when it changes nothing. The
// view remembers when it last asked the store, per device, and skips the
// store for half of seenResolution after that; the store's sighting stays
// within seenResolution of the last poll, as without the view. This memory
// outlives version moves (a sighting is not something a write can make
// wrong); a device deleted and made again under its old name gets its
// first sighting recorded at most half of seenResolution late.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
)

// DeviceViewOptions configure a DeviceView. Zero values are the defaults.
type DeviceViewOptions struct {
	// MaxStale bounds how old the version reading behind an answer may be
	// (default 100 ms): the longest a change takes to reach a check-in.
	MaxStale time.Duration
	// MaxEntries bounds each of the three memories (default 1 << 20, about
	// 200 MB for a million devices); past it, more devices go to the store.
	MaxEntries int
}

// DeviceView is the device-facing service of one replica with that memory.
// It has every method of *Service; DeviceForAuth and NextNotice answer
// from memory when they can.
type DeviceView struct {
	*Service
	opts DeviceViewOptions

	mu        sync.Mutex
	version   int64
	readAt    time.Time     // when version was read; zero: never
	reading   chan struct{} // closed when the reading in flight ends
	auth      map[ota.DeviceRef]ota.Device
	nothing   map[moduleOf]struct{}
	seen      map[ota.DeviceRef]time.Time // when DeviceSeen last went to the store
	hits      atomic.Int64
	lookups   atomic.Int64
	readings  atomic.Int64
	seenSkips atomic.Int64
}

type moduleOf struct {
	dev    ota.DeviceRef
	module string
}

// NewDeviceView returns a DeviceView over s. Make one per replica (server).
func NewDeviceView(s *Service, opts DeviceViewOptions) *DeviceView {
	if opts.MaxStale <= 0 {
		opts.MaxStale = 100 * time.Millisecond
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 1 << 20
	}
	return &DeviceView{Service: s, opts: opts, auth: map[ota.DeviceRef]ota.Device{}, nothing: map[moduleOf]struct{}{}, seen: map[ota.DeviceRef]time.Time{}}
}

// current returns a version reading at most MaxStale old, reading the store
// only when there is none; concurrent callers share one reading. A new
// version empties the memories.
func (v *DeviceView) current(ctx context.Context) (int64, error) {
	v.mu.Lock()
	for {
		if !v.readAt.IsZero() && time.Since(v.readAt) < v.opts.MaxStale {
			ver := v.version
			v.mu.Unlock()
			return ver, nil
		}
		if v.reading == nil {
			break
		}
		ch := v.reading
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		v.mu.Lock()
	}
	ch := make(chan struct{})
	v.reading = ch
	v.mu.Unlock()

	started := time.Now()
	ver, err := v.store.DeviceViewVersion(ctx)
	v.readings.Add(1)

	v.mu.Lock()
	defer v.mu.Unlock()
	v.reading = nil
	close(ch)
	if err != nil {
		return 0, err
	}
	if ver != v.version || v.readAt.IsZero() {
		clear(v.auth)
		clear(v.nothing)
		v.version = ver
	}
	// Age from when the reading started: it holds at least from then.
	v.readAt = started
	return ver, nil
}

// DeviceForAuth returns the device's identity and secret (only those: its
// versions, groups and online state are left out, as they change without
// moving the version).
func (v *DeviceView) DeviceForAuth(ctx context.Context, ref ota.DeviceRef) (ota.Device, error) {
	v.lookups.Add(1)
	ver, err := v.current(ctx)
	if err != nil {
		return v.Service.DeviceForAuth(ctx, ref)
	}
	v.mu.Lock()
	d, ok := v.auth[ref]
	fresh := v.version == ver
	v.mu.Unlock()
	if ok && fresh {
		v.hits.Add(1)
		return d, nil
	}
	full, err := v.Service.DeviceForAuth(ctx, ref)
	if err != nil {
		return full, err
	}
	d = ota.Device{TenantID: full.TenantID, ProductKey: full.ProductKey, Name: full.Name, Secret: full.Secret, CreatedAt: full.CreatedAt}
	v.mu.Lock()
	if v.version == ver && len(v.auth) < v.opts.MaxEntries {
		v.auth[ref] = d
	}
	v.mu.Unlock()
	return d, nil
}

// NextNotice answers nil from memory for a device known to have no active
// task on module; otherwise it is Service.NextNotice.
func (v *DeviceView) NextNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error) {
	module = moduleOrDefault(module)
	v.lookups.Add(1)
	ver, err := v.current(ctx)
	if err != nil {
		return v.Service.NextNotice(ctx, dev, module)
	}
	key := moduleOf{dev, module}
	v.mu.Lock()
	_, idle := v.nothing[key]
	fresh := v.version == ver
	v.mu.Unlock()
	if idle && fresh {
		v.hits.Add(1)
		return nil, nil
	}
	t, err := v.activeTask(ctx, dev, module)
	if err != nil {
		return nil, err
	}
	if t != nil {
		return v.Service.NextNotice(ctx, dev, module)
	}
	v.mu.Lock()
	if v.version == ver && len(v.nothing) < v.opts.MaxEntries {
		v.nothing[key] = struct{}{}
	}
	v.mu.Unlock()
	return nil, nil
}

// DeviceSeen records a sighting through the service unless this view did so
// less than half of seenResolution ago.
func (v *DeviceView) DeviceSeen(ctx context.Context, dev ota.DeviceRef) error {
	now := v.clock.Now()
	v.mu.Lock()
	at, ok := v.seen[dev]
	v.mu.Unlock()
	if ok && !now.Before(at) && now.Sub(at) < seenResolution/2 {
		v.seenSkips.Add(1)
		return nil
	}
	if err := v.Service.DeviceSeen(ctx, dev); err != nil {
		return err
	}
	v.mu.Lock()
	if len(v.seen) < v.opts.MaxEntries {
		v.seen[dev] = now
	}
	v.mu.Unlock()
	return nil
}

// DeviceViewStats are a view's counters since it was made.
type DeviceViewStats struct {
	Lookups   int64 // DeviceForAuth and NextNotice calls
	Hits      int64 // of those, answered from memory
	Readings  int64 // version readings (store queries)
	SeenSkips int64 // DeviceSeen calls that did not go to the store
}

// Stats returns the view's counters.
func (v *DeviceView) Stats() DeviceViewStats {
	return DeviceViewStats{Lookups: v.lookups.Load(), Hits: v.hits.Load(), Readings: v.readings.Load(), SeenSkips: v.seenSkips.Load()}
}
