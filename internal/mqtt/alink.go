package mqtt

// The Alibaba Cloud IoT device side (Alink OTA over MQTT, cloud-ota-spec.md
// §2.5) as a Dialect: the CONNECT signature of the Alibaba device SDKs and the
// /ota/device/… and /sys/{pk}/{dn}/thing/ota/firmware/get topics.

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/internal/deviceproto"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/service"
)

// Alink topics of one device (pk = product key, dn = device name).
func AlinkInformTopic(pk, dn string) string   { return "/ota/device/inform/" + pk + "/" + dn }
func AlinkUpgradeTopic(pk, dn string) string  { return "/ota/device/upgrade/" + pk + "/" + dn }
func AlinkProgressTopic(pk, dn string) string { return "/ota/device/progress/" + pk + "/" + dn }
func AlinkRequestTopic(pk, dn string) string  { return "/ota/device/request/" + pk + "/" + dn }
func AlinkGetTopic(pk, dn string) string      { return "/sys/" + pk + "/" + dn + "/thing/ota/firmware/get" }
func AlinkGetReplyTopic(pk, dn string) string { return AlinkGetTopic(pk, dn) + "_reply" }

// AlinkGetMethod is the method of a firmware/get request.
const AlinkGetMethod = "thing.ota.firmware.get"

// AlinkSignContent is what the CONNECT password signs: the parameters in
// dictionary order, each name followed by its value, no separators.
// clientID and timestamp take part only when the client id's extension
// names them ("" leaves them out).
func AlinkSignContent(clientID, deviceName, productKey, timestamp string) string {
	var b strings.Builder
	if clientID != "" {
		b.WriteString("clientId" + clientID)
	}
	b.WriteString("deviceName" + deviceName + "productKey" + productKey)
	if timestamp != "" {
		b.WriteString("timestamp" + timestamp)
	}
	return b.String()
}

// AlinkSign is the CONNECT password: hex(HMAC(deviceSecret, content)) with
// signMethod hmacmd5, hmacsha1 or hmacsha256.
func AlinkSign(signMethod, secret, content string) (string, error) {
	var h func() hash.Hash
	switch strings.ToLower(signMethod) {
	case "hmacmd5":
		h = md5.New
	case "hmacsha1":
		h = sha1.New
	case "hmacsha256":
		h = sha256.New
	default:
		return "", fmt.Errorf("signmethod %q is not supported: use hmacmd5, hmacsha1 or hmacsha256", signMethod)
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(content))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// AlinkClientID builds the CONNECT client id
// "{clientId}|securemode=3,signmethod={m},timestamp={ts}|" (ts "" = none).
func AlinkClientID(clientID string, secureMode int, signMethod, timestamp string) string {
	s := fmt.Sprintf("%s|securemode=%d,signmethod=%s", clientID, secureMode, signMethod)
	if timestamp != "" {
		s += ",timestamp=" + timestamp
	}
	return s + "|"
}

// alinkConnect is a parsed Alink CONNECT client id.
type alinkConnect struct {
	clientID, signMethod, timestamp string
}

// parseAlinkClientID splits "{clientId}|k=v,k=v,…|". ok is false when the
// client id is not in this form at all (another dialect's CONNECT).
func parseAlinkClientID(s string) (c alinkConnect, ok bool, err error) {
	id, ext, found := strings.Cut(s, "|")
	if !found || !strings.HasSuffix(ext, "|") {
		return c, false, nil
	}
	c.clientID, c.signMethod = id, "hmacmd5" // the documented default
	if id == "" || len(id) > 64 {
		return c, true, fmt.Errorf("client id %q: the part before '|' must be 1 to 64 characters", s)
	}
	secure := ""
	for _, kv := range strings.Split(strings.TrimSuffix(ext, "|"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "securemode":
			secure = v
		case "signmethod":
			c.signMethod = v
		case "timestamp":
			c.timestamp = v
		}
		// Other keys (the SDKs' lan=, _v=, ext=) carry no credential.
	}
	switch secure {
	case "2", "3":
	case "":
		return c, true, fmt.Errorf("client id %q names no securemode: add securemode=3 (TCP) or 2 (TLS)", s)
	default:
		return c, true, fmt.Errorf("securemode=%s is not supported: use 3 (TCP) or 2 (TLS) with a device secret", secure)
	}
	return c, true, nil
}

// Alink is the Alibaba Cloud IoT (Alink) device dialect.
type Alink struct {
	devices deviceproto.Devices
	protos  *protocols
	now     func() time.Time
}

var _ Dialect = (*Alink)(nil)

// NewAlink returns the Alibaba device dialect; now is the clock for message
// ids (nil = time.Now).
func NewAlink(d deviceproto.Devices, now func() time.Time) *Alink {
	if now == nil {
		now = time.Now
	}
	return &Alink{devices: d, protos: newProtocols(d), now: now}
}

// Name is "alibaba".
func (*Alink) Name() string { return string(ota.ProtocolAlibaba) }

var errAlinkAuth = &ota.Error{Code: ota.CodeUnauthenticated, Message: "unknown device or bad password"}

// Authenticate accepts client id "{clientId}|securemode=2|3,signmethod=…[,timestamp=…]|",
// username "{deviceName}&{productKey}" and password
// hex(HMAC(deviceSecret, "clientId…deviceName…productKey…timestamp…"))
// in either case. The timestamp is signed but not checked against the
// clock: Alibaba does not, and devices without a clock send a constant.
func (a *Alink) Authenticate(ctx context.Context, c Connect) (*Session, error) {
	ac, ok, err := parseAlinkClientID(c.ClientID)
	if !ok {
		return nil, ErrNotMine
	}
	i := strings.LastIndex(c.Username, "&")
	if i <= 0 || i == len(c.Username)-1 {
		return nil, ErrNotMine
	}
	if err != nil {
		return nil, err
	}
	dn, pk := c.Username[:i], c.Username[i+1:]
	dev, err := a.devices.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: pk, Name: dn})
	switch ota.ErrorCode(err) {
	case "":
	case ota.CodeNotFound:
		return nil, &ota.Error{Code: ota.CodeUnauthenticated, Message: errAlinkAuth.Message, Err: err}
	default:
		return nil, err
	}
	want, err := AlinkSign(ac.signMethod, dev.Secret, AlinkSignContent(ac.clientID, dn, pk, ac.timestamp))
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(string(c.Password)))) != 1 {
		return nil, errAlinkAuth
	}
	return &Session{
		Device:  ota.DeviceRef{ProductKey: pk, Name: dn},
		Modules: deviceproto.Modules(dev),
		// The SDKs publish and subscribe across the device's own system,
		// shadow, session and custom topics; only the OTA topics are
		// handled, the rest is acknowledged and dropped.
		Publish: []string{
			AlinkInformTopic(pk, dn), AlinkProgressTopic(pk, dn), AlinkRequestTopic(pk, dn),
			"/sys/" + pk + "/" + dn + "/#", "/shadow/update/" + pk + "/" + dn,
			"/ext/session/" + pk + "/" + dn + "/#", "/" + pk + "/" + dn + "/user/#",
		},
		Subscribe: []string{
			AlinkUpgradeTopic(pk, dn),
			"/sys/" + pk + "/" + dn + "/#", "/shadow/get/" + pk + "/" + dn,
			"/ext/session/" + pk + "/" + dn + "/#", "/" + pk + "/" + dn + "/user/#",
		},
		NoticeTopic: AlinkUpgradeTopic(pk, dn),
		// No AutoSubscribe: Alibaba devices subscribe to the upgrade topic
		// themselves ("a device can subscribe to the topic to obtain the
		// update package information"); they count as listening from then.
	}, nil
}

// Filters are the OTA up topics of every device.
func (*Alink) Filters() []string {
	return []string{
		AlinkInformTopic("+", "+"), AlinkProgressTopic("+", "+"), AlinkRequestTopic("+", "+"), AlinkGetTopic("+", "+"),
	}
}

// alinkTopic is a parsed OTA up topic.
type alinkTopic struct {
	kind string // inform, progress, request, get
	dev  ota.DeviceRef
}

func parseAlinkTopic(topic string) (alinkTopic, bool) {
	l := strings.Split(topic, "/")
	switch {
	case len(l) == 6 && l[0] == "" && l[1] == "ota" && l[2] == "device" && l[4] != "" && l[5] != "":
		switch l[3] {
		case "inform", "progress", "request":
			return alinkTopic{kind: l[3], dev: ota.DeviceRef{ProductKey: l[4], Name: l[5]}}, true
		}
	case len(l) == 8 && l[0] == "" && l[1] == "sys" && l[2] != "" && l[3] != "" &&
		l[4] == "thing" && l[5] == "ota" && l[6] == "firmware" && l[7] == "get":
		return alinkTopic{kind: "get", dev: ota.DeviceRef{ProductKey: l[2], Name: l[3]}}, true
	}
	return alinkTopic{}, false
}

// DeviceKey is "{pk}/{dn}" of an OTA topic.
func (*Alink) DeviceKey(topic string) string {
	if t, ok := parseAlinkTopic(topic); ok {
		return t.dev.ProductKey + "/" + t.dev.Name
	}
	return topic
}

// alinkUp is an up message: {"id","version","method","params":{…}}.
type alinkUp struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Version string          `json:"version"`
		Module  string          `json:"module"`
		Step    json.RawMessage `json:"step"` // "-1".."100"; a number is taken too
		Desc    string          `json:"desc"`
	} `json:"params"`
}

// step reads params.step, a string in the spec and a number in some devices.
func (u alinkUp) step() (int, error) {
	raw := strings.TrimSpace(string(u.Params.Step))
	if raw == "" || raw == "null" {
		return 0, ota.Invalid("params.step", "params.step is missing: send \"1\"..\"100\" or \"-1\"..\"-4\"")
	}
	if s, err := strconv.Unquote(raw); err == nil {
		raw = s
	}
	n, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil || n < -4 || n > 100 {
		return 0, ota.Invalid("params.step", "params.step %s is not \"0\"..\"100\" or \"-1\"..\"-4\"", string(u.Params.Step))
	}
	return n, nil
}

func alinkModule(m string) string {
	if m == "" {
		return ota.DefaultModule
	}
	return m
}

// alinkStepText names the failure steps as Alibaba documents them.
var alinkStepText = map[int]string{-1: "upgrade failed", -2: "download failed", -3: "verification failed", -4: "flash failed"}

// Handle processes inform, progress, request and firmware/get messages.
func (a *Alink) Handle(ctx context.Context, m Message, link Link) error {
	t, ok := parseAlinkTopic(m.Topic)
	if !ok {
		return nil // another of the device's topics (properties, events, …): not OTA
	}
	if m.Session != nil {
		if m.Session.Device != t.dev {
			// The broker's ACL prevents this; refuse rather than trust the topic.
			return ota.Errorf(ota.CodeForbidden, "device %s/%s may not publish as %s/%s",
				m.Session.Device.ProductKey, m.Session.Device.Name, t.dev.ProductKey, t.dev.Name)
		}
	} else if p, err := a.protos.of(ctx, t.dev.ProductKey); err != nil {
		return err
	} else if p != ota.ProtocolAlibaba {
		return ota.Errorf(ota.CodeForbidden, "product %q speaks the %s protocol, not alibaba", t.dev.ProductKey, p)
	}
	var up alinkUp
	if err := json.Unmarshal(m.Payload, &up); err != nil {
		if t.kind == "get" {
			return a.reply(ctx, link, t.dev, nil, 460, "request parameter error: the message is not valid JSON", nil)
		}
		return ota.Invalid("", "the Alink message is not valid JSON: %v", err)
	}
	module := alinkModule(up.Params.Module)
	switch t.kind {
	case "inform":
		if err := a.devices.ReportVersion(ctx, t.dev, module, up.Params.Version); err != nil {
			return err
		}
		// Devices inform at boot: on an external broker, where Alibaba
		// devices publish no status, that is how the server learns they are
		// there (and sends what is pending). The embedded broker tracks
		// connections itself and ignores this.
		return link.Online(ctx, t.dev, true)
	case "progress":
		step, err := up.step()
		if err != nil {
			return err
		}
		if err := ota.CheckLen("params.desc", up.Params.Desc, ota.MaxDescriptionLen); err != nil {
			return err
		}
		p := service.Progress{Module: module, Step: step, Detail: up.Params.Desc}
		if step < 0 {
			p.Reason = ota.ReasonForStep(step)
			p.Detail = strings.TrimSuffix(fmt.Sprintf("step %d (%s): %s", step, alinkStepText[step], up.Params.Desc), ": ")
		}
		return a.devices.ReportProgress(ctx, t.dev, p)
	case "request":
		// The older "request upgrade": the device names its version and
		// gets the notice on the upgrade topic, if there is one.
		if up.Params.Version != "" {
			if err := a.devices.ReportVersion(ctx, t.dev, module, up.Params.Version); err != nil {
				return err
			}
		}
		n, err := a.devices.NextNotice(ctx, t.dev, module)
		if err != nil || n == nil {
			return err
		}
		topic, payload, err := a.Render(*n)
		if err != nil {
			return err
		}
		return link.Publish(ctx, topic, payload)
	default: // get
		if up.Method != "" && up.Method != AlinkGetMethod {
			return a.reply(ctx, link, t.dev, up.ID, 460, fmt.Sprintf("request parameter error: method %q, want %s", up.Method, AlinkGetMethod), nil)
		}
		if err := ota.CheckModuleName("params.module", module); err != nil {
			return a.reply(ctx, link, t.dev, up.ID, 460, "request parameter error: "+ota.ErrorMessage(err), nil)
		}
		n, err := a.devices.NextNotice(ctx, t.dev, module)
		if err != nil {
			if deviceproto.Transient(err) {
				return err
			}
			return a.reply(ctx, link, t.dev, up.ID, 500, ota.ErrorMessage(err), nil)
		}
		var data *AlinkUpgradeData
		if n != nil {
			d := a.data(*n)
			data = &d
		}
		return a.reply(ctx, link, t.dev, up.ID, 200, "success", data)
	}
}

// AlinkGetReply is the firmware/get reply; Data is {} when there is nothing
// to do.
type AlinkGetReply struct {
	ID      json.RawMessage `json:"id"`
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message,omitempty"`
	Method  string          `json:"method"`
	Version string          `json:"version"`
}

func (a *Alink) reply(ctx context.Context, link Link, dev ota.DeviceRef, id json.RawMessage, code int, msg string, data *AlinkUpgradeData) error {
	if len(id) == 0 {
		id = json.RawMessage(`""`)
	}
	r := AlinkGetReply{ID: id, Code: code, Message: msg, Method: AlinkGetMethod, Version: "1.0", Data: json.RawMessage("{}")}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return ota.Internal(err, "encoding a firmware/get reply")
		}
		r.Data = b
	}
	b, err := json.Marshal(r)
	if err != nil {
		return ota.Internal(err, "encoding a firmware/get reply")
	}
	return link.Publish(ctx, AlinkGetReplyTopic(dev.ProductKey, dev.Name), b)
}

// AlinkUpgradeData is the data of an upgrade notice (and of a firmware/get
// reply).
type AlinkUpgradeData struct {
	Size       int64             `json:"size"`
	Version    string            `json:"version"`
	URL        string            `json:"url"`
	MD5        string            `json:"md5,omitempty"`
	Sign       string            `json:"sign"`
	SignMethod string            `json:"signMethod"` // Md5 or SHA256
	IsDiff     int               `json:"isDiff,omitempty"`
	Module     string            `json:"module,omitempty"`
	ExtData    map[string]string `json:"extData,omitempty"`
}

// AlinkUpgrade is the message on /ota/device/upgrade/{pk}/{dn}.
type AlinkUpgrade struct {
	Code    string           `json:"code"`
	Data    AlinkUpgradeData `json:"data"`
	ID      int64            `json:"id"`
	Message string           `json:"message"`
}

func (a *Alink) data(n ota.Notice) AlinkUpgradeData {
	d := AlinkUpgradeData{Size: n.Size, Version: n.Version, URL: n.URL}
	if n.SignMethod == ota.SignMD5 {
		// Alibaba's spelling; the device SDKs compare it as is.
		d.SignMethod, d.Sign, d.MD5 = "Md5", n.MD5, n.MD5
		if n.Sign != "" {
			d.Sign = n.Sign
		}
		if d.MD5 == "" {
			d.MD5 = d.Sign
		}
	} else {
		d.SignMethod, d.Sign = "SHA256", n.SHA256
		if n.Sign != "" {
			d.Sign = n.Sign
		}
	}
	if n.Differential {
		d.IsDiff = 1
	}
	if n.Module != "" && n.Module != ota.DefaultModule {
		d.Module = n.Module
	}
	if len(n.Tags) > 0 || n.CustomInfo != "" {
		d.ExtData = map[string]string{}
		for _, t := range n.Tags {
			d.ExtData[t.Key] = t.Value
		}
		if n.CustomInfo != "" {
			d.ExtData["_package_udi"] = n.CustomInfo
		}
	}
	return d
}

// Render publishes the notice as {"code":"1000","data":{…}} on the device's
// upgrade topic.
func (a *Alink) Render(n ota.Notice) (string, []byte, error) {
	b, err := json.Marshal(AlinkUpgrade{Code: "1000", Data: a.data(n), ID: a.now().UnixMilli(), Message: "success"})
	if err != nil {
		return "", nil, ota.Internal(err, "encoding an upgrade notice")
	}
	return AlinkUpgradeTopic(n.ProductKey, n.DeviceName), b, nil
}
