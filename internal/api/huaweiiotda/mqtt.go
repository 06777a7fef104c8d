package huaweiiotda

// The device side: Huawei IoTDA's MQTT CONNECT scheme and the $ota service on
// $oc/devices/{device_id}/sys/events/up|down (spec §1.5), as an mqtt.Dialect.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Device-side names.
const (
	OTAServiceID = "$ota"

	EventVersionQuery   = "version_query"
	EventVersionReport  = "version_report"
	EventFirmware       = "firmware_upgrade"
	EventSoftware       = "software_upgrade"
	EventProgressReport = "upgrade_progress_report"

	// The SDKs' device information report (reportDeviceInfo): paras
	// device_sdk_version, sw_version, fw_version.
	SDKInfoServiceID   = "$sdk_info"
	EventSDKInfoReport = "sdk_info_report"

	clientTimeFormat = "2006010215" // YYYYMMDDHH, UTC
)

// UpTopic and DownTopic are a device's event topics.
func UpTopic(deviceID string) string   { return "$oc/devices/" + deviceID + "/sys/events/up" }
func DownTopic(deviceID string) string { return "$oc/devices/" + deviceID + "/sys/events/down" }

// clientIDPattern is {device_id}_0_{sign type}_{YYYYMMDDHH}. Sign types: 0 =
// HMAC-SHA256 without a timestamp check, 1 = with one, 2 = HMAC-SM3, 3 = bridge.
var clientIDPattern = regexp.MustCompile(`^(.+)_0_([0-9])_([0-9]{10})$`)

// ClientID builds the client id a Huawei device connects with.
func ClientID(deviceID string, checkTimestamp bool, t time.Time) string {
	sign := "0"
	if checkTimestamp {
		sign = "1"
	}
	return deviceID + "_0_" + sign + "_" + t.UTC().Format(clientTimeFormat)
}

// Password is hex(HMAC-SHA256(key = timestamp, message = device secret)): the
// timestamp is the key.
func Password(secret, timestamp string) string {
	m := hmac.New(sha256.New, []byte(timestamp))
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// Event is one entry of an IoTDA event message's services.
type Event struct {
	ServiceID string          `json:"service_id"`
	EventType string          `json:"event_type"`
	EventTime string          `json:"event_time,omitempty"`
	EventID   string          `json:"event_id,omitempty"`
	Paras     json.RawMessage `json:"paras"`
}

// EventMessage is the payload of the up and down event topics.
type EventMessage struct {
	ObjectDeviceID string  `json:"object_device_id,omitempty"`
	Services       []Event `json:"services"`
}

// VersionReport is version_report's paras. Module is an Updraft extension
// (Huawei's module-upgrade device protocol is not documented).
type VersionReport struct {
	SwVersion string `json:"sw_version,omitempty"`
	FwVersion string `json:"fw_version,omitempty"`
	Module    string `json:"module,omitempty"`
}

// ProgressReport is upgrade_progress_report's paras.
type ProgressReport struct {
	ResultCode  int    `json:"result_code"`
	Progress    int    `json:"progress,omitempty"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	Module      string `json:"module,omitempty"`
}

// UpgradeNotice is firmware_upgrade / software_upgrade's paras. The URL is a
// signed, expiring link that needs no access_token.
type UpgradeNotice struct {
	Version     string          `json:"version"`
	URL         string          `json:"url"`
	FileSize    int64           `json:"file_size"`
	FileName    string          `json:"file_name"`
	AccessToken string          `json:"access_token,omitempty"`
	Expires     int64           `json:"expires,omitempty"` // seconds the URL stays valid
	Sign        string          `json:"sign"`
	CustomInfo  string          `json:"custom_info,omitempty"`
	TaskID      string          `json:"task_id,omitempty"`
	TaskExtInfo json.RawMessage `json:"task_ext_info,omitempty"`
	Module      string          `json:"module,omitempty"` // Updraft extension: set for module packages
}

// resultReasons maps a failed result_code to why the task failed. 0 is
// success; codes not listed are a generic failure.
var resultReasons = map[int]ota.Reason{
	1:   ota.ReasonDeviceRejected,   // device busy
	2:   ota.ReasonDownloadFailed,   // poor signal
	3:   ota.ReasonAlreadyOnVersion, // already the latest version
	4:   ota.ReasonDeviceRejected,   // low battery
	5:   ota.ReasonDeviceRejected,   // not enough storage
	6:   ota.ReasonDownloadFailed,   // download timed out
	7:   ota.ReasonVerifyFailed,     // package check failed
	8:   ota.ReasonDeviceRejected,   // package type not supported
	9:   ota.ReasonDeviceRejected,   // not enough memory
	10:  ota.ReasonInstallFailed,    // installation failed
	255: ota.ReasonUpgradeFailed,    // internal error
}

var resultText = map[int]string{
	1: "device busy", 2: "poor signal", 3: "already the latest version", 4: "low battery", 5: "not enough storage",
	6: "download timed out", 7: "package check failed", 8: "package type not supported", 9: "not enough memory",
	10: "installation failed", 255: "internal error",
}

// stepFor is the native progress step a failure reason stands for.
func stepFor(r ota.Reason) int {
	switch r {
	case ota.ReasonDownloadFailed:
		return -2
	case ota.ReasonVerifyFailed:
		return -3
	case ota.ReasonInstallFailed:
		return -4
	case ota.ReasonDeviceRejected:
		return -5
	}
	return -1
}

// Devices is the Huawei device dialect on MQTT.
type Devices struct {
	svc *service.Service
	now func() time.Time
	// kinds caches each job's package kind (firmware or software decides the
	// event type); a job's package never changes.
	kinds sync.Map // job id → ota.PackageKind
}

var _ mqtt.Dialect = (*Devices)(nil)

// NewDevices returns the dialect; now is the clock for timestamp-checked
// CONNECTs (nil = time.Now).
func NewDevices(svc *service.Service, now func() time.Time) *Devices {
	if now == nil {
		now = time.Now
	}
	return &Devices{svc: svc, now: now}
}

// Name is "huawei".
func (*Devices) Name() string { return "huawei" }

// resolve finds the device a Huawei device_id names: the device of a
// Huawei-protocol product whose derived id it is. Such ids are unique across
// the server (the store refuses a second), so at most one reading matches; a
// device of a product on another protocol is never found here.
func (d *Devices) resolve(ctx context.Context, deviceID string) (ota.Device, error) {
	for _, ref := range SplitCandidates(deviceID) {
		dev, err := d.svc.DeviceForAuth(ctx, ref)
		switch ota.ErrorCode(err) {
		case "":
			if dev.ProtocolID == deviceID {
				return dev, nil
			}
			if dev.ProtocolID == "" {
				// Stores read before ProtocolID was kept: ask the product.
				if p, err := d.svc.ProductProtocol(ctx, ref.ProductKey); err != nil {
					return ota.Device{}, err
				} else if p == ota.ProtocolHuawei {
					return dev, nil
				}
			}
		case ota.CodeNotFound:
		default:
			return ota.Device{}, err
		}
	}
	return ota.Device{}, ota.NotFound("device", deviceID)
}

// Authenticate accepts client id {device_id}_0_{0|1}_{YYYYMMDDHH}, username
// device_id and password hex(HMAC-SHA256(YYYYMMDDHH, secret)).
func (d *Devices) Authenticate(ctx context.Context, c mqtt.Connect) (*mqtt.Session, error) {
	dev, stamp, err := d.identify(ctx, c, true)
	if err != nil {
		return nil, err
	}
	want := Password(dev.Secret, stamp)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(string(c.Password)))) != 1 {
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad password"}
	}
	return session(dev), nil
}

var _ mqtt.Identifier = (*Devices)(nil)

// Identify names the device of a CONNECT in IoTDA's scheme without a
// password: how IoTDA's X.509 certificate devices connect (client id
// {device_id}_0_0_{YYYYMMDDHH}, username device_id, no password).
func (d *Devices) Identify(ctx context.Context, c mqtt.Connect) (*mqtt.Session, error) {
	dev, _, err := d.identify(ctx, c, false)
	if err != nil {
		return nil, err
	}
	return session(dev), nil
}

// identify parses the client id and finds the device; checkStamp applies
// sign type 1's timestamp window (it guards the password).
func (d *Devices) identify(ctx context.Context, c mqtt.Connect, checkStamp bool) (ota.Device, string, error) {
	m := clientIDPattern.FindStringSubmatch(c.ClientID)
	if m == nil || m[1] != c.Username {
		return ota.Device{}, "", mqtt.ErrNotMine
	}
	deviceID, signType, stamp := m[1], m[2], m[3]
	if signType != "0" && signType != "1" {
		return ota.Device{}, "", fmt.Errorf("sign type %s is not supported: use 0 or 1 (HMAC-SHA256)", signType)
	}
	t, err := time.Parse(clientTimeFormat, stamp)
	if err != nil {
		return ota.Device{}, "", fmt.Errorf("client id timestamp %q is not YYYYMMDDHH", stamp)
	}
	if signType == "1" && checkStamp {
		// The timestamp is an hour: allow the hour before and after.
		if diff := d.now().UTC().Sub(t); diff < -time.Hour || diff > 2*time.Hour {
			return ota.Device{}, "", fmt.Errorf("client id timestamp %s is too far from the server's time", stamp)
		}
	}
	dev, err := d.resolve(ctx, deviceID)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return ota.Device{}, "", &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad password", Err: err}
		}
		return ota.Device{}, "", err
	}
	return dev, stamp, nil
}

// session is what a Huawei device may do once connected.
func session(dev ota.Device) *mqtt.Session {
	deviceID := DeviceID(dev.ProductKey, dev.Name)
	own := "$oc/devices/" + deviceID + "/#"
	return &mqtt.Session{
		Device:  ota.DeviceRef{ProductKey: dev.ProductKey, Name: dev.Name},
		Modules: deviceproto.Modules(dev),
		// The device SDKs publish and subscribe across the device's own
		// $oc subtree (properties, messages, commands); only the $ota
		// events are handled, the rest is acknowledged and dropped.
		Publish:     []string{own},
		Subscribe:   []string{own},
		NoticeTopic: DownTopic(deviceID),
		// IoTDA subscribes a device to its system topics itself; the
		// official SDKs never SUBSCRIBE to the down topic.
		AutoSubscribe: []string{DownTopic(deviceID)},
	}
}

// Filters is every device's event up topic.
func (*Devices) Filters() []string { return []string{UpTopic("+")} }

// DeviceKey is the device_id of a $oc/devices/{device_id}/… topic.
func (*Devices) DeviceKey(topic string) string {
	rest, ok := strings.CutPrefix(topic, "$oc/devices/")
	if !ok {
		return topic
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

var _ mqtt.ConnectHook = (*Devices)(nil)

// Connected sends version_query to a device whose version Updraft does not
// know: the official SDKs report their versions only when asked, and a
// device without a version gets no task of a job with source versions or a
// dynamic job.
func (d *Devices) Connected(ctx context.Context, s *mqtt.Session, link mqtt.Link) error {
	dev, err := d.svc.DeviceForAuth(ctx, s.Device)
	if err != nil {
		return err
	}
	if dev.Versions[ota.DefaultModule] != "" || dev.Versions[ota.SoftwareModule] != "" {
		return nil
	}
	deviceID := DeviceID(dev.ProductKey, dev.Name)
	msg := EventMessage{ObjectDeviceID: deviceID, Services: []Event{{
		ServiceID: OTAServiceID, EventType: EventVersionQuery, EventTime: formatTime(d.now()), Paras: json.RawMessage("{}"),
	}}}
	b, err := json.Marshal(msg)
	if err != nil {
		return ota.Internal(err, "encoding version_query")
	}
	return link.Tell(ctx, DownTopic(deviceID), b)
}

// Handle processes $ota events: version_report and upgrade_progress_report.
func (d *Devices) Handle(ctx context.Context, m mqtt.Message, link mqtt.Link) error {
	rest, ok := strings.CutPrefix(m.Topic, "$oc/devices/")
	if !ok {
		return nil
	}
	deviceID, ok := strings.CutSuffix(rest, "/sys/events/up")
	if !ok || deviceID == "" || strings.Contains(deviceID, "/") {
		return nil // another $oc topic of the device: not OTA
	}
	var msg EventMessage
	if err := json.Unmarshal(m.Payload, &msg); err != nil {
		return ota.Invalid("", "the event message is not valid JSON: %v", err)
	}
	if msg.ObjectDeviceID != "" && msg.ObjectDeviceID != deviceID {
		return ota.Errorf(ota.CodeUnsupported, "events for gateway child devices (object_device_id %q) are not supported", msg.ObjectDeviceID)
	}
	var dev ota.Device
	if m.Session != nil {
		if DeviceID(m.Session.Device.ProductKey, m.Session.Device.Name) != deviceID {
			return ota.Errorf(ota.CodeForbidden, "device %s may not publish as %s", DeviceID(m.Session.Device.ProductKey, m.Session.Device.Name), deviceID)
		}
		var err error
		if dev, err = d.svc.DeviceForAuth(ctx, m.Session.Device); err != nil {
			return err
		}
	} else {
		var err error
		if dev, err = d.resolve(ctx, deviceID); err != nil {
			return err
		}
	}
	ref := ota.DeviceRef{ProductKey: dev.ProductKey, Name: dev.Name}
	for _, ev := range msg.Services {
		if ev.ServiceID == SDKInfoServiceID && ev.EventType == EventSDKInfoReport {
			// The same versions as a version_report (device_sdk_version
			// is ignored).
			if err := d.versionReport(ctx, dev, ref, ev.Paras); err != nil {
				return err
			}
			continue
		}
		if ev.ServiceID != OTAServiceID {
			continue
		}
		var err error
		switch ev.EventType {
		case EventVersionReport:
			err = d.versionReport(ctx, dev, ref, ev.Paras)
		case EventProgressReport:
			err = d.progressReport(ctx, dev, ref, ev.Paras)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// activeTask is the device's unfinished task on module, nil if none.
func (d *Devices) activeTask(ctx context.Context, dev ota.Device, module string) (*ota.Task, error) {
	return d.svc.CurrentTask(ctx, ota.DeviceRef{ProductKey: dev.ProductKey, Name: dev.Name}, module)
}

// versionReport records the device's versions: fw_version as its firmware
// (the default module, or the module named) and sw_version as its software
// (ota.SoftwareModule, which software packages upgrade), each kept apart.
func (d *Devices) versionReport(ctx context.Context, dev ota.Device, ref ota.DeviceRef, paras json.RawMessage) error {
	var r VersionReport
	if err := json.Unmarshal(paras, &r); err != nil {
		return ota.Invalid("paras", "version_report paras are not valid: %v", err)
	}
	if r.FwVersion == "" && r.SwVersion == "" {
		return ota.Invalid("paras", "version_report names neither fw_version nor sw_version")
	}
	module := r.Module
	if module == "" {
		module = ota.DefaultModule
	}
	if r.FwVersion != "" {
		if err := d.svc.ReportVersion(ctx, ref, module, r.FwVersion); err != nil {
			return err
		}
	}
	if r.SwVersion != "" && module == ota.DefaultModule {
		// A module report's sw_version says nothing about the device's
		// software; only the device's own report does.
		if err := d.svc.ReportVersion(ctx, ref, ota.SoftwareModule, r.SwVersion); err != nil {
			return err
		}
	} else if r.FwVersion == "" {
		return d.svc.ReportVersion(ctx, ref, module, r.SwVersion)
	}
	return nil
}

// reportModule is the module an upgrade_progress_report is about: the one it
// names, else the firmware (default module) when the device has a task
// there, else its software when it has a task there (IoTDA's progress report
// does not say whether it answers a firmware_upgrade or a software_upgrade).
func (d *Devices) reportModule(ctx context.Context, dev ota.Device, named string) (string, *ota.Task, error) {
	if named != "" {
		t, err := d.activeTask(ctx, dev, named)
		return named, t, err
	}
	for _, m := range []string{ota.DefaultModule, ota.SoftwareModule} {
		t, err := d.activeTask(ctx, dev, m)
		if err != nil || t != nil {
			return m, t, err
		}
	}
	return ota.DefaultModule, nil, nil
}

// progressReport: result_code 0 is progress (and, with the destination
// version, success); any other code fails the task with its reason.
func (d *Devices) progressReport(ctx context.Context, dev ota.Device, ref ota.DeviceRef, paras json.RawMessage) error {
	var r ProgressReport
	if err := json.Unmarshal(paras, &r); err != nil {
		return ota.Invalid("paras", "upgrade_progress_report paras are not valid: %v", err)
	}
	module, t, err := d.reportModule(ctx, dev, r.Module)
	if err != nil {
		return err
	}
	if r.ResultCode != 0 {
		if r.ResultCode == 3 && r.Version != "" && t != nil && t.ToVersion == r.Version {
			// "Already the latest": when the device does run the
			// destination, that is success.
			return d.svc.ReportVersion(ctx, ref, module, r.Version)
		}
		reason, ok := resultReasons[r.ResultCode]
		if !ok {
			reason = ota.ReasonUpgradeFailed
		}
		detail := fmt.Sprintf("result_code %d", r.ResultCode)
		if s := resultText[r.ResultCode]; s != "" {
			detail += " (" + s + ")"
		}
		if r.Description != "" {
			detail += ": " + r.Description
		}
		return d.svc.ReportProgress(ctx, ref, service.Progress{Module: module, Step: stepFor(reason), Reason: reason, Detail: detail})
	}
	if r.Progress < 0 || r.Progress > 100 {
		return ota.Invalid("progress", "progress must be 0 to 100, got %d", r.Progress)
	}
	if t == nil {
		// Nothing to report progress on; the version is still news.
		if r.Version != "" {
			return d.svc.ReportVersion(ctx, ref, module, r.Version)
		}
		return nil
	}
	if err := d.svc.ReportProgress(ctx, ref, service.Progress{Module: module, TaskID: t.ID, Step: r.Progress, Detail: r.Description}); err != nil {
		// A report that completes the upgrade still counts when the task
		// was not notified to this device yet (it upgraded on its own).
		if r.Version != t.ToVersion || ota.ErrorCode(err) != ota.CodeConflict {
			return err
		}
	}
	// "version" is the device's current version: during the download that
	// is still the old one, which says nothing. The destination completes
	// the task; at 100 % any other version is for the service to judge.
	if r.Version != "" && (r.Version == t.ToVersion || r.Progress == 100) {
		return d.svc.ReportVersion(ctx, ref, module, r.Version)
	}
	return nil
}

// kindOf is a notice's package kind, looked up once per job.
func (d *Devices) kindOf(n ota.Notice) ota.PackageKind {
	if k, ok := d.kinds.Load(n.JobID); ok {
		return k.(ota.PackageKind)
	}
	switch n.Module {
	case ota.SoftwareModule:
		return ota.KindSoftware
	case "", ota.DefaultModule:
	default:
		return ota.KindModule
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := service.Principal{TenantID: n.TenantID}
	kind := ota.KindFirmware
	if v, err := d.svc.GetJob(ctx, p, n.JobID); err == nil {
		if pkg, err := d.svc.GetPackage(ctx, p, v.Job.PackageID); err == nil {
			kind = pkg.Kind
			d.kinds.Store(n.JobID, kind)
		}
	}
	return kind
}

// Render turns a notice into firmware_upgrade (firmware and module packages)
// or software_upgrade on the device's down topic.
func (d *Devices) Render(n ota.Notice) (string, []byte, error) {
	deviceID := DeviceID(n.ProductKey, n.DeviceName)
	event := EventFirmware
	if d.kindOf(n) == ota.KindSoftware {
		event = EventSoftware
	}
	para := UpgradeNotice{
		Version:     n.Version,
		URL:         n.URL,
		FileSize:    n.Size,
		FileName:    n.FileName,
		Sign:        n.SHA256, // Huawei devices check SHA-256, whatever the package's sign method
		CustomInfo:  n.CustomInfo,
		TaskID:      n.JobID,
		TaskExtInfo: extInfoFromJob(n.ExtInfo),
	}
	if n.Module != "" && n.Module != ota.DefaultModule && n.Module != ota.SoftwareModule {
		para.Module = n.Module // software_upgrade says which module by its event type
	}
	now := d.now()
	if !n.URLExpiresAt.IsZero() {
		if s := int64(n.URLExpiresAt.Sub(now) / time.Second); s > 0 {
			para.Expires = s
		}
	}
	raw, err := json.Marshal(para)
	if err != nil {
		return "", nil, ota.Internal(err, "encoding an upgrade notice")
	}
	msg := EventMessage{ObjectDeviceID: deviceID, Services: []Event{{
		ServiceID: OTAServiceID, EventType: event, EventTime: formatTime(now),
		EventID: fmt.Sprintf("%s-%d", n.JobID, n.TaskID), Paras: raw,
	}}}
	b, err := json.Marshal(msg)
	if err != nil {
		return "", nil, ota.Internal(err, "encoding an upgrade notice")
	}
	return DownTopic(deviceID), b, nil
}
