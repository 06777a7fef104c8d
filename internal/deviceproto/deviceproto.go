// Package deviceproto is the server side of Updraft's native device protocol
// (sdk/device/wire), shared by its two carriers: MQTT (internal/mqtt) and
// device HTTP (internal/api/device). It authenticates device credentials,
// decodes and checks device messages, calls the device use cases, and renders
// notices. Rules stay in ota and service; this package only translates.
package deviceproto

import (
	"context"
	"encoding/json"
	"time"

	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Devices is the part of the service that device front-ends call.
// *service.Service implements it.
type Devices interface {
	DeviceForAuth(ctx context.Context, ref ota.DeviceRef) (ota.Device, error)
	DeviceConnected(ctx context.Context, dev ota.DeviceRef, online bool) error
	// DevicePresence is DeviceConnected for a status that names its
	// connection (wire.Status.Since, Unix ms; 0: unordered): a device's
	// statuses are applied in connection order, a connection's offline after
	// its online, and an older one than the last applied changes nothing
	// (applied false). An external broker can hand the will of a dropped
	// connection to the server after its successor's online status.
	DevicePresence(ctx context.Context, dev ota.DeviceRef, online bool, since int64) (applied bool, err error)
	// DeviceSeen records a sighting of a device that holds no connection
	// (device HTTP): its presence, without making it "online".
	DeviceSeen(ctx context.Context, dev ota.DeviceRef) error
	NextNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error)
	ReportVersion(ctx context.Context, dev ota.DeviceRef, module, version string) error
	ReportProgress(ctx context.Context, dev ota.DeviceRef, pr service.Progress) error
	// ProductProtocol is the protocol a product's devices speak: front-ends
	// accept a CONNECT and render a notice in it alone.
	ProductProtocol(ctx context.Context, productKey string) (ota.Protocol, error)
	// DeviceProduct is the product (protocol and auth mode) by key alone:
	// front-ends check a device's proof with ota.Product.CheckDeviceAuth.
	DeviceProduct(ctx context.Context, productKey string) (ota.Product, error)
	// CurrentTask is the device's unfinished task on a module (nil: none).
	CurrentTask(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Task, error)
	// PushNotice is the notice to send a device that connects or starts
	// listening: only for jobs that push (pull-only jobs wait to be asked).
	PushNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error)
}

var _ Devices = (*service.Service)(nil)

// DefaultSkew is how far a credential's timestamp may be from the server's
// clock.
const DefaultSkew = 5 * time.Minute

// Authenticate verifies a device credential (parsed from an MQTT username or
// an HTTP Authorization header, with its sign) and returns the device.
// Every failure is CodeUnauthenticated; an unknown device and a wrong sign
// are told apart only in the logged cause, so the reply does not reveal which
// devices exist.
func Authenticate(ctx context.Context, d Devices, c wire.Credentials, now time.Time, skew time.Duration) (ota.Device, error) {
	if skew <= 0 {
		skew = DefaultSkew
	}
	dev, err := d.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: c.Product, Name: c.Device})
	switch ota.ErrorCode(err) {
	case "":
	case ota.CodeNotFound:
		return ota.Device{}, &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad signature", Err: err}
	default:
		return ota.Device{}, err
	}
	if err := c.Verify(dev.Secret, now, skew); err != nil {
		return ota.Device{}, &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad signature", Err: err}
	}
	return dev, nil
}

// Modules lists where to look for a device's pending notices: the default
// module first, the software module (software packages' tasks live there,
// also for devices that report one version), then every other module it has
// reported a version for.
func Modules(dev ota.Device) []string {
	mods := []string{ota.DefaultModule, ota.SoftwareModule}
	for m := range dev.Versions {
		if m != ota.DefaultModule && m != ota.SoftwareModule {
			mods = append(mods, m)
		}
	}
	return mods
}

func module(m string) string {
	if m == "" {
		return ota.DefaultModule
	}
	return m
}

func decode(payload []byte, v any, what string) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return ota.Invalid("", "%s is not valid JSON: %v", what, err)
	}
	return nil
}

// DecodeVersion decodes and checks a VersionReport.
func DecodeVersion(payload []byte) (mod, version string, err error) {
	var r wire.VersionReport
	if err := decode(payload, &r, "the version report"); err != nil {
		return "", "", err
	}
	m := module(r.Module)
	if err := ota.CheckModuleName("module", m); err != nil {
		return "", "", err
	}
	if err := ota.CheckVersion("version", r.Version); err != nil {
		return "", "", err
	}
	return m, r.Version, nil
}

// HandleVersion records a version report.
func HandleVersion(ctx context.Context, d Devices, dev ota.DeviceRef, payload []byte) error {
	m, v, err := DecodeVersion(payload)
	if err != nil {
		return err
	}
	return d.ReportVersion(ctx, dev, m, v)
}

// DecodeProgress decodes and checks a ProgressReport.
func DecodeProgress(payload []byte) (service.Progress, error) {
	var r wire.ProgressReport
	if err := decode(payload, &r, "the progress report"); err != nil {
		return service.Progress{}, err
	}
	return ProgressFromWire(r)
}

// ProgressFromWire checks a ProgressReport and converts it.
func ProgressFromWire(r wire.ProgressReport) (service.Progress, error) {
	if r.Step > 100 {
		return service.Progress{}, ota.Invalid("step", "step must be 0 to 100, or negative for a failure, got %d", r.Step)
	}
	if r.TaskID < 0 {
		return service.Progress{}, ota.Invalid("task_id", "task_id must be positive, got %d", r.TaskID)
	}
	m := module(r.Module)
	if err := ota.CheckModuleName("module", m); err != nil {
		return service.Progress{}, err
	}
	if err := ota.CheckLen("desc", r.Desc, ota.MaxDescriptionLen); err != nil {
		return service.Progress{}, err
	}
	p := service.Progress{Module: m, TaskID: r.TaskID, Step: r.Step, Detail: r.Desc}
	if r.Step < 0 {
		p.Reason = ota.ReasonForStep(r.Step)
	}
	return p, nil
}

// HandleProgress records a progress report.
func HandleProgress(ctx context.Context, d Devices, dev ota.DeviceRef, payload []byte) error {
	p, err := DecodeProgress(payload)
	if err != nil {
		return err
	}
	return d.ReportProgress(ctx, dev, p)
}

// Check answers a device's "is there an update for module?".
func Check(ctx context.Context, d Devices, dev ota.DeviceRef, mod string) (*wire.Notice, error) {
	mod = module(mod)
	if err := ota.CheckModuleName("module", mod); err != nil {
		return nil, err
	}
	n, err := d.NextNotice(ctx, dev, mod)
	if err != nil || n == nil {
		return nil, err
	}
	w := NoticeToWire(*n)
	return &w, nil
}

// HandleCheck decodes a CheckRequest and answers it; errors the device
// should see are in the reply, and err is set only for failures worth
// retrying (the store is down).
func HandleCheck(ctx context.Context, d Devices, dev ota.DeviceRef, payload []byte) (wire.CheckReply, error) {
	var r wire.CheckRequest
	if len(payload) > 0 {
		if err := decode(payload, &r, "the check request"); err != nil {
			return wire.CheckReply{Error: ota.ErrorMessage(err)}, nil
		}
	}
	n, err := Check(ctx, d, dev, r.Module)
	if err != nil {
		if Transient(err) {
			return wire.CheckReply{}, err
		}
		return wire.CheckReply{Error: ota.ErrorMessage(err)}, nil
	}
	return wire.CheckReply{Notice: n}, nil
}

// Transient reports whether an error is worth retrying: the device's
// message was fine but the server could not take it now.
func Transient(err error) bool {
	switch ota.ErrorCode(err) {
	case ota.CodeUnavailable, ota.CodeInternal, ota.CodeRateLimited:
		return true
	}
	return false
}

// NoticeToWire converts a notice to its wire form.
func NoticeToWire(n ota.Notice) wire.Notice {
	w := wire.Notice{
		TaskID:       n.TaskID,
		Attempt:      n.Attempt,
		JobID:        n.JobID,
		Module:       module(n.Module),
		Version:      n.Version,
		FromVersion:  n.FromVersion,
		URL:          n.URL,
		URLExpiresAt: n.URLExpiresAt.UTC(),
		FileName:     n.FileName,
		Size:         n.Size,
		SHA256:       n.SHA256,
		MD5:          n.MD5,
		SignMethod:   string(n.SignMethod),
		Sign:         n.Sign,
		CustomInfo:   n.CustomInfo,
		Differential: n.Differential,
		ExtInfo:      n.ExtInfo,
		NeedConfirm:  n.NeedConfirm,
	}
	if w.SignMethod == "" {
		w.SignMethod = string(ota.SignSHA256)
	}
	if n.URLExpiresAt.IsZero() {
		w.URLExpiresAt = time.Time{}
	}
	for _, t := range n.Tags {
		w.Tags = append(w.Tags, wire.Tag{Key: t.Key, Value: t.Value})
	}
	return w
}
