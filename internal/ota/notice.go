package ota

import "time"

// Notice is what a device is told about an upgrade: everything it needs to
// download, verify and install the package, whatever protocol carries it.
type Notice struct {
	TaskID       int64
	Attempt      int // 1 for a task's first notice, +1 per retry
	JobID        string
	PackageID    string // the package the task installs (vendor file URIs name it)
	TenantID     string
	ProductKey   string
	DeviceName   string
	Module       string
	Version      string // destination
	FromVersion  string
	URL          string // signed, expiring download URL (supports Range)
	URLExpiresAt time.Time
	FileName     string
	Size         int64
	SHA256       string
	MD5          string
	SignMethod   SignMethod
	Sign         string
	CustomInfo   string
	Differential bool
	Tags         []Tag // job tags, sent as extra data
	ExtInfo      string
	NeedConfirm  bool
}

// DeviceRef names a device globally: product keys are unique across tenants.
type DeviceRef struct {
	ProductKey string
	Name       string
}
