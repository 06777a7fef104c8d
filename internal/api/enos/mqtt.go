package enos

// The device side on MQTT: EnOS's CONNECT scheme and the OTA topics
// /sys/{productKey}/{deviceKey}/ota/device/… (spec §3.5), as an mqtt.Dialect.
// It translates; which task, whether a report counts and what a device may
// get are the service's decisions (deviceproto.Devices).

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// OTA topic suffixes under /sys/{pk}/{dk}/ota/device/ and their methods.
const (
	OpInform     = "inform"     // up: ota.device.inform {version}
	OpUpgrade    = "upgrade"    // down: ota.device.upgrade; the device answers on upgrade_reply
	OpProgress   = "progress"   // up: ota.device.progress {step, desc}
	OpGetVersion = "getversion" // up: ota.device.getversion {}

	MethodUpgrade = "ota.device.upgrade"
)

// Reply codes (spec §3.5). EnOS documents 200, 764 and 765 for OTA; the
// others are the HTTP-style codes Updraft uses for a request it cannot take.
const (
	ReplyOK             = 200
	ReplyInvalid        = 400
	ReplyForbidden      = 403
	ReplyTaskNotFound   = 764 // "Device task not found"
	ReplyTaskNotStarted = 765 // "Device task not start"
	ReplyInternal       = 500
)

// Topic is /sys/{pk}/{dk}/ota/device/{op}; a reply topic is Topic(…)+"_reply".
func Topic(productKey, deviceKey, op string) string {
	return "/sys/" + productKey + "/" + deviceKey + "/ota/device/" + op
}

// Request is EnOS's request envelope (device → platform and the platform's
// commands).
type Request struct {
	ID      string          `json:"id"`
	Version string          `json:"version,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Reply is EnOS's reply envelope.
type Reply struct {
	ID      string `json:"id"`
	Code    int    `json:"code"`
	Data    any    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Firmware is ota.device.upgrade's params and one entry of getversion's
// reply data.
type Firmware struct {
	Version    string `json:"version"`
	Sign       string `json:"sign"`
	SignMethod string `json:"signMethod"`
	FileURL    string `json:"fileUrl"`
	FileSize   int64  `json:"fileSize"`
}

// Password is the CONNECT password of spec §3.5: a plain digest (not an
// HMAC) of the sorted parameters as name+value followed by the device
// secret; hex in lower case, SHA-1 in upper case (as the SDK's SignUtil).
func Password(method, clientID, deviceKey, productKey, timestamp, secret string) (string, error) {
	h, upper, err := digestFor(method)
	if err != nil {
		return "", err
	}
	params := map[string]string{"clientId": clientID, "deviceKey": deviceKey, "productKey": productKey, "timestamp": timestamp}
	h.Write([]byte(sortedParams(params) + secret))
	s := hex.EncodeToString(h.Sum(nil))
	if upper {
		s = strings.ToUpper(s)
	}
	return s, nil
}

// sortedParams is name+value of every parameter in name order: the string
// EnOS signs (CONNECT and HTTP device login).
func sortedParams(params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteString(params[k])
	}
	return b.String()
}

func digestFor(method string) (h hash.Hash, upper bool, err error) {
	switch strings.TrimPrefix(strings.ToLower(method), "hmac") {
	case "sha256":
		return sha256.New(), false, nil
	case "sha1":
		return sha1.New(), true, nil
	case "md5":
		return md5.New(), false, nil
	}
	return nil, false, fmt.Errorf("signmethod %q is not supported: use sha256, sha1 or md5", method)
}

// Devices is the EnOS device dialect on MQTT.
type Devices struct {
	svc deviceproto.Devices
}

var _ mqtt.Dialect = (*Devices)(nil)

// NewDevices returns the dialect over the service's device calls.
func NewDevices(svc deviceproto.Devices) *Devices { return &Devices{svc: svc} }

// Name is "enos".
func (*Devices) Name() string { return string(ota.ProtocolEnOS) }

// parseClientID splits "{clientId}|securemode=2,signmethod=sha256,timestamp=…|".
func parseClientID(s string) (clientID string, params map[string]string, ok bool) {
	rest, found := strings.CutSuffix(s, "|")
	if !found {
		return "", nil, false
	}
	clientID, list, found := strings.Cut(rest, "|")
	if !found || clientID == "" {
		return "", nil, false
	}
	params = map[string]string{}
	for _, kv := range strings.Split(list, ",") {
		k, v, found := strings.Cut(kv, "=")
		if !found {
			return "", nil, false
		}
		params[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return clientID, params, true
}

var errBadSign = &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad password"}

// Authenticate accepts client id "{clientId}|securemode=2,signmethod=…,
// timestamp=…|", username "{deviceKey}&{productKey}" and the password of
// Password. Only devices of products on the enos protocol are this
// dialect's: for any other the CONNECT is ErrNotMine (Alibaba devices use
// the same shape).
func (d *Devices) Authenticate(ctx context.Context, c mqtt.Connect) (*mqtt.Session, error) {
	clientID, params, ok := parseClientID(c.ClientID)
	if !ok {
		return nil, mqtt.ErrNotMine
	}
	deviceKey, productKey, ok := strings.Cut(c.Username, "&")
	if !ok || deviceKey == "" || productKey == "" || strings.ContainsAny(c.Username, "/+#") {
		return nil, mqtt.ErrNotMine
	}
	proto, err := d.svc.ProductProtocol(ctx, productKey)
	switch {
	case ota.ErrorCode(err) == ota.CodeNotFound:
		return nil, mqtt.ErrNotMine
	case err != nil:
		return nil, err
	case proto != ota.ProtocolEnOS:
		return nil, mqtt.ErrNotMine
	}
	switch params["securemode"] {
	case "2":
	case "3", "4":
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: "securemode " + params["securemode"] +
			" (product secret, dynamic activation) is not supported: register the device and connect with securemode=2 and its device secret"}
	default:
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: fmt.Sprintf("securemode %q is not supported: use securemode=2 (device secret)", params["securemode"])}
	}
	if params["timestamp"] == "" {
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: "the client id has no timestamp=…: use {clientId}|securemode=2,signmethod=sha256,timestamp={ms}|"}
	}
	ref := ota.DeviceRef{ProductKey: productKey, Name: deviceKey}
	dev, err := d.svc.DeviceForAuth(ctx, ref)
	if err != nil {
		if ota.ErrorCode(err) == ota.CodeNotFound {
			return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: errBadSign.Message, Err: err}
		}
		return nil, err
	}
	want, err := Password(params["signmethod"], clientID, deviceKey, productKey, params["timestamp"], dev.Secret)
	if err != nil {
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: err.Error()}
	}
	// Hex case is the SDK's per method; either is accepted.
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(strings.ToLower(string(c.Password)))) != 1 {
		return nil, errBadSign
	}
	own := "/sys/" + productKey + "/" + deviceKey + "/#"
	return &mqtt.Session{
		Device:  ref,
		Modules: deviceproto.Modules(dev),
		// The SDK publishes and subscribes (reply topics) across the
		// device's own /sys subtree; only the OTA topics are handled.
		Publish:     []string{own},
		Subscribe:   []string{own},
		NoticeTopic: Topic(productKey, deviceKey, OpUpgrade),
		// The SDK never SUBSCRIBEs to command topics (setArrivedMsgHandler
		// only registers a handler): EnOS delivers them to the device's
		// session itself, so the platform subscribes it here.
		AutoSubscribe: []string{Topic(productKey, deviceKey, OpUpgrade)},
	}, nil
}

// Filters are the OTA up topics of every device.
func (*Devices) Filters() []string {
	out := []string{}
	for _, op := range []string{OpInform, OpProgress, OpGetVersion, OpUpgrade + "_reply"} {
		out = append(out, Topic("+", "+", op))
	}
	return out
}

// splitTopic reads /sys/{pk}/{dk}/ota/device/{op}.
func splitTopic(topic string) (ref ota.DeviceRef, op string, ok bool) {
	parts := strings.Split(topic, "/")
	if len(parts) != 7 || parts[0] != "" || parts[1] != "sys" || parts[4] != "ota" || parts[5] != "device" || parts[2] == "" || parts[3] == "" {
		return ota.DeviceRef{}, "", false
	}
	return ota.DeviceRef{ProductKey: parts[2], Name: parts[3]}, parts[6], true
}

// DeviceKey is "{productKey}/{deviceKey}".
func (*Devices) DeviceKey(topic string) string {
	ref, _, ok := splitTopic(topic)
	if !ok {
		return topic
	}
	return ref.ProductKey + "/" + ref.Name
}

// Handle answers inform, progress and getversion on their _reply topics;
// upgrade_reply (the device's receipt of a notice) needs no action.
func (d *Devices) Handle(ctx context.Context, m mqtt.Message, link mqtt.Link) error {
	ref, op, ok := splitTopic(m.Topic)
	if !ok {
		return nil // another topic of the device's own subtree: not OTA
	}
	if m.Session != nil && m.Session.Device != ref {
		return ota.Errorf(ota.CodeForbidden, "device %s/%s may not publish as %s/%s", m.Session.Device.ProductKey, m.Session.Device.Name, ref.ProductKey, ref.Name)
	}
	if op != OpInform && op != OpProgress && op != OpGetVersion {
		return nil
	}
	var req Request
	if err := json.Unmarshal(m.Payload, &req); err != nil {
		return d.reply(ctx, link, m.Topic, Reply{Code: ReplyInvalid, Data: nil,
			Message: "the message is not an EnOS request {id, version, method, params}: " + err.Error()})
	}
	if m.Session == nil {
		// From an external broker: its ACL vouches for the sender, but the
		// device must exist here.
		if _, err := d.svc.DeviceForAuth(ctx, ref); err != nil {
			return err
		}
	}
	var data any = ""
	var err error
	switch op {
	case OpInform:
		err = d.inform(ctx, ref, req.Params)
	case OpProgress:
		err = d.progress(ctx, ref, req.Params)
	case OpGetVersion:
		data, err = d.getVersion(ctx, ref)
	}
	if err != nil && deviceproto.Transient(err) {
		return err // no PUBACK: the device sends it again
	}
	r := Reply{ID: req.ID, Code: ReplyOK, Data: data}
	if err != nil {
		r.Code, r.Message, r.Data = replyCode(op, err), ota.ErrorMessage(err), nil
	}
	return d.reply(ctx, link, m.Topic, r)
}

func (d *Devices) reply(ctx context.Context, link mqtt.Link, topic string, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return ota.Internal(err, "encoding an EnOS reply")
	}
	return link.Publish(ctx, topic+"_reply", b)
}

// replyCode is the EnOS code for a refused request: a progress report
// without a task is 764, one whose task has not been sent yet 765.
func replyCode(op string, err error) int {
	switch ota.ErrorCode(err) {
	case ota.CodeNotFound:
		if op == OpProgress {
			return ReplyTaskNotFound
		}
		return ReplyInvalid
	case ota.CodeConflict:
		if op == OpProgress {
			return ReplyTaskNotStarted
		}
		return ReplyInvalid
	case ota.CodeForbidden:
		return ReplyForbidden
	case ota.CodeInvalid, ota.CodeUnsupported:
		return ReplyInvalid
	}
	return ReplyInternal
}

type informParams struct {
	Version string `json:"version"`
}

func (d *Devices) inform(ctx context.Context, ref ota.DeviceRef, raw json.RawMessage) error {
	var p informParams
	if err := json.Unmarshal(raw, &p); err != nil {
		return ota.Invalid("params", "ota.device.inform params must be {\"version\": \"…\"}: %v", err)
	}
	if err := ota.CheckVersion("version", p.Version); err != nil {
		return err
	}
	return d.svc.ReportVersion(ctx, ref, ota.DefaultModule, p.Version)
}

type progressParams struct {
	Step json.RawMessage `json:"step"`
	Desc string          `json:"desc"`
}

// parseStep reads step as the SDK sends it (a string) or as a number.
func parseStep(raw json.RawMessage) (int, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return 0, errors.New("step must be \"0\" to \"100\" or a negative failure code")
		}
		s = n.String()
	}
	step, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || step > 100 {
		return 0, fmt.Errorf("step must be \"0\" to \"100\" or a negative failure code, got %q", s)
	}
	return step, nil
}

func (d *Devices) progress(ctx context.Context, ref ota.DeviceRef, raw json.RawMessage) error {
	var p progressParams
	if err := json.Unmarshal(raw, &p); err != nil || len(p.Step) == 0 {
		return ota.Invalid("params", "ota.device.progress params must be {\"step\": \"0\"…\"100\" or negative, \"desc\": \"…\"}")
	}
	step, err := parseStep(p.Step)
	if err != nil {
		return ota.Invalid("step", "%v", err)
	}
	if err := ota.CheckLen("desc", p.Desc, ota.MaxDescriptionLen); err != nil {
		return err
	}
	pr := service.Progress{Module: ota.DefaultModule, Step: step, Detail: p.Desc}
	if step < 0 {
		pr.Reason = ota.ReasonForStep(step)
	}
	return d.svc.ReportProgress(ctx, ref, pr)
}

// getVersion is the device asking for an upgrade: the service's next notice
// for it (none when the job does not accept device requests), as a list.
func (d *Devices) getVersion(ctx context.Context, ref ota.DeviceRef) ([]Firmware, error) {
	n, err := d.svc.NextNotice(ctx, ref, ota.DefaultModule)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return []Firmware{}, nil
	}
	return []Firmware{firmwareOfNotice(*n)}, nil
}

func firmwareOfNotice(n ota.Notice) Firmware {
	return Firmware{Version: n.Version, Sign: n.Sign, SignMethod: strings.ToLower(string(n.SignMethod)),
		FileURL: FileURI(n.PackageID, n.FileName), FileSize: n.Size}
}

// Render is ota.device.upgrade on the device's upgrade topic. The id names
// the task and attempt, so a device can tell a resent notice from a new one.
func (*Devices) Render(n ota.Notice) (string, []byte, error) {
	params, err := json.Marshal(firmwareOfNotice(n))
	if err != nil {
		return "", nil, ota.Internal(err, "encoding an EnOS upgrade notice")
	}
	b, err := json.Marshal(Request{ID: fmt.Sprintf("%d-%d", n.TaskID, n.Attempt), Version: "1.0", Method: MethodUpgrade, Params: params})
	if err != nil {
		return "", nil, ota.Internal(err, "encoding an EnOS upgrade notice")
	}
	return Topic(n.ProductKey, n.DeviceName, OpUpgrade), b, nil
}
