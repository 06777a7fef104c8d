package service

// What devices say and ask, whatever protocol carries it (MQTT, device HTTP,
// vendor topics). Owner: rollout engine.

import (
	"context"

	"github.com/updraft-ota/updraft/internal/ota"
)

// Progress is a device's progress report on its current task.
type Progress struct {
	Module string // "" = default
	TaskID int64  // 0 = the device's active task on Module
	Step   int    // 0–100, or negative: a failure (see ota.ReasonForStep)
	Reason ota.Reason
	Detail string
}

// ReportVersion records the version a device runs on a module. It completes
// the device's active task when the version is the destination (or fails it
// when the device is in progress and reports another version), and creates
// tasks for dynamic jobs that now match.
func (s *Service) ReportVersion(ctx context.Context, dev ota.DeviceRef, module, version string) error {
	panic("not implemented")
}

// ReportProgress moves the device's task to in_progress (starting the timeout
// clock) or, on a negative step, fails it (with automatic retry if the job
// allows it).
func (s *Service) ReportProgress(ctx context.Context, dev ota.DeviceRef, pr Progress) error {
	panic("not implemented")
}

// NextNotice returns the notice for the device's active task on module (nil
// when there is none). A queued task of a job that allows device requests is
// claimed to notified here. Devices call it when they connect or poll.
func (s *Service) NextNotice(ctx context.Context, dev ota.DeviceRef, module string) (*ota.Notice, error) {
	panic("not implemented")
}

// DeviceConnected records that a device came online (true) or went offline.
func (s *Service) DeviceConnected(ctx context.Context, dev ota.DeviceRef, online bool) error {
	panic("not implemented")
}
