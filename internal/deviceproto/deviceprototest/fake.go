// Package deviceprototest is an in-memory stand-in for the device use cases
// (deviceproto.Devices), for testing the device front-ends and the device SDK
// without a store. It keeps one pending notice per device and module, the
// way the rollout engine's NextNotice answers, and records every call.
package deviceprototest

import (
	"time"

	"context"
	"sync"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// VersionCall is one ReportVersion.
type VersionCall struct {
	Device  ota.DeviceRef
	Module  string
	Version string
}

// ProgressCall is one ReportProgress.
type ProgressCall struct {
	Device   ota.DeviceRef
	Progress service.Progress
}

type pendingKey struct {
	dev    ota.DeviceRef
	module string
}

// Fake implements deviceproto.Devices in memory.
type Fake struct {
	mu       sync.Mutex
	devices  map[ota.DeviceRef]*ota.Device
	pending  map[pendingKey]ota.Notice
	versions []VersionCall
	progress []ProgressCall
	connects map[ota.DeviceRef]int
	protocol map[string]ota.Protocol // product key → protocol (native if unset)
	auth     map[string]ota.AuthMode // product key → auth mode (secret if unset)
	fail     []error                 // returned by the next calls to ReportVersion/ReportProgress
}

// New returns an empty Fake.
func New() *Fake {
	return &Fake{
		devices:  map[ota.DeviceRef]*ota.Device{},
		pending:  map[pendingKey]ota.Notice{},
		connects: map[ota.DeviceRef]int{},
		protocol: map[string]ota.Protocol{},
		auth:     map[string]ota.AuthMode{},
	}
}

// SetProtocol makes product speak protocol p (every product is native until
// set).
func (f *Fake) SetProtocol(product string, p ota.Protocol) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.protocol[product] = p
}

// ProductProtocol implements deviceproto.Devices.
func (f *Fake) ProductProtocol(_ context.Context, product string) (ota.Protocol, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.protocol[product]; ok {
		return p, nil
	}
	return ota.ProtocolNative, nil
}

// SetAuth makes product's devices authenticate by mode (secret until set).
func (f *Fake) SetAuth(product string, mode ota.AuthMode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth[product] = mode
}

// DeviceProduct implements deviceproto.Devices.
func (f *Fake) DeviceProduct(ctx context.Context, product string) (ota.Product, error) {
	p, _ := f.ProductProtocol(ctx, product)
	f.mu.Lock()
	defer f.mu.Unlock()
	auth, ok := f.auth[product]
	if !ok {
		auth = ota.AuthSecret
	}
	return ota.Product{Key: product, Protocol: p, Auth: auth}, nil
}

// CurrentTask implements deviceproto.Devices: the pending notice's task.
func (f *Fake) CurrentTask(_ context.Context, ref ota.DeviceRef, module string) (*ota.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.pending[pendingKey{ref, module}]
	if !ok {
		return nil, nil
	}
	return &ota.Task{ID: n.TaskID, JobID: n.JobID, ProductKey: ref.ProductKey, DeviceName: ref.Name, Module: module,
		ToVersion: n.Version, State: ota.TaskNotified}, nil
}

// PushNotice implements deviceproto.Devices (every pending notice pushes).
func (f *Fake) PushNotice(ctx context.Context, ref ota.DeviceRef, module string) (*ota.Notice, error) {
	return f.NextNotice(ctx, ref, module)
}

// DeviceSeen implements deviceproto.Devices: a sighting sets LastSeen.
func (f *Fake) DeviceSeen(_ context.Context, ref ota.DeviceRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.devices[ref]; ok {
		d.LastSeen = time.Now()
	}
	return nil
}

// AddDevice registers a device with its secret.
func (f *Fake) AddDevice(product, name, secret string) ota.DeviceRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref := ota.DeviceRef{ProductKey: product, Name: name}
	f.devices[ref] = &ota.Device{TenantID: "t", ProductKey: product, Name: name, Secret: secret, Versions: map[string]string{}}
	return ref
}

// SetPending makes n the device's pending notice on its module.
func (f *Fake) SetPending(n ota.Notice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n.Module == "" {
		n.Module = ota.DefaultModule
	}
	f.pending[pendingKey{ota.DeviceRef{ProductKey: n.ProductKey, Name: n.DeviceName}, n.Module}] = n
}

// FailNext makes the next report (version or progress) return err.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, err)
}

func (f *Fake) takeFailure() error {
	if len(f.fail) == 0 {
		return nil
	}
	err := f.fail[0]
	f.fail = f.fail[1:]
	return err
}

// Versions returns the version reports so far.
func (f *Fake) Versions() []VersionCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]VersionCall(nil), f.versions...)
}

// Progress returns the progress reports so far.
func (f *Fake) Progress() []ProgressCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ProgressCall(nil), f.progress...)
}

// Online reports the device's recorded presence and how many times it
// connected.
func (f *Fake) Online(ref ota.DeviceRef) (online bool, connects int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.devices[ref]
	return d != nil && d.Online, f.connects[ref]
}

// DeviceForAuth implements deviceproto.Devices.
func (f *Fake) DeviceForAuth(_ context.Context, ref ota.DeviceRef) (ota.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[ref]
	if !ok {
		return ota.Device{}, ota.NotFound("device", ref.ProductKey+"/"+ref.Name)
	}
	out := *d
	out.Versions = map[string]string{}
	for k, v := range d.Versions {
		out.Versions[k] = v
	}
	return out, nil
}

// DeviceConnected implements deviceproto.Devices.
func (f *Fake) DeviceConnected(ctx context.Context, ref ota.DeviceRef, online bool) error {
	_, err := f.DevicePresence(ctx, ref, online, 0)
	return err
}

// DevicePresence implements deviceproto.Devices (without ordering: the
// service's store orders statuses).
func (f *Fake) DevicePresence(_ context.Context, ref ota.DeviceRef, online bool, _ int64) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[ref]
	if !ok {
		return false, ota.NotFound("device", ref.ProductKey+"/"+ref.Name)
	}
	d.Online = online
	if online {
		f.connects[ref]++
	}
	return true, nil
}

// NextNotice implements deviceproto.Devices.
func (f *Fake) NextNotice(_ context.Context, ref ota.DeviceRef, module string) (*ota.Notice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.pending[pendingKey{ref, module}]
	if !ok {
		return nil, nil
	}
	return &n, nil
}

// ReportVersion implements deviceproto.Devices; reaching the pending
// notice's version clears it.
func (f *Fake) ReportVersion(_ context.Context, ref ota.DeviceRef, module, version string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure(); err != nil {
		return err
	}
	d, ok := f.devices[ref]
	if !ok {
		return ota.NotFound("device", ref.ProductKey+"/"+ref.Name)
	}
	d.Versions[module] = version
	f.versions = append(f.versions, VersionCall{ref, module, version})
	k := pendingKey{ref, module}
	if n, ok := f.pending[k]; ok && n.Version == version {
		delete(f.pending, k)
	}
	return nil
}

// ReportProgress implements deviceproto.Devices; a negative step clears the
// pending notice.
func (f *Fake) ReportProgress(_ context.Context, ref ota.DeviceRef, p service.Progress) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure(); err != nil {
		return err
	}
	if _, ok := f.devices[ref]; !ok {
		return ota.NotFound("device", ref.ProductKey+"/"+ref.Name)
	}
	f.progress = append(f.progress, ProgressCall{ref, p})
	if p.Step < 0 {
		delete(f.pending, pendingKey{ref, p.Module})
	}
	return nil
}
