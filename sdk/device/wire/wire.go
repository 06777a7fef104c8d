// Package wire is Updraft's native device protocol: the topic names, the JSON
// messages and the credential scheme shared by the server and by devices. It
// is the one definition both sides use (the server's MQTT and device-HTTP
// front-ends, and the device SDK), so it is the contract firmware written in
// any language must follow. Standard library only.
//
// # Credentials
//
// Every device has a secret, issued when it is registered. The secret never
// travels; the device proves it holds it with an HMAC over its identity and
// the current time:
//
//	string to sign = "{product}&{device}|{timestamp}"   timestamp: Unix milliseconds
//	sign           = lowercase hex(HMAC-SHA256(key = secret, message = string to sign))
//
// The server accepts a timestamp within a skew window (±5 minutes by
// default) of its own clock.
//
// MQTT CONNECT:
//
//	client id = "{product}.{device}"            (ClientID)
//	username  = "{product}&{device}|{timestamp}" (Username)
//	password  = sign                             (Sign)
//
// HTTP (each request to /device/v1/…):
//
//	Authorization: Updraft-HMAC-SHA256 {username} {sign}
//
// Product keys are [A-Za-z0-9_-] and device names [A-Za-z0-9_.:@-], so the
// separators '.', '&' and '|' are unambiguous.
//
// # MQTT topics
//
// All under "updraft/v1/{product}/{device}/". A device may publish only to
// its own up topics and subscribe only to its own down topics.
//
//	version      up    VersionReport      the version one module runs (send on every connect and after an upgrade)
//	progress     up    ProgressReport     progress on the current task; a negative step is a failure
//	check        up    CheckRequest       "is there an update for this module?"
//	status       up    Status             {"online":true} after subscribing; use {"online":false} as the will
//	notice       down  Notice             an upgrade to perform (QoS 1)
//	check/reply  down  CheckReply         the answer to check: a Notice, or {"none":true}
//
// A device subscribes to notice and check/reply (QoS 1) before it publishes
// anything: the server delivers a pending notice as soon as the device
// listens, and again whenever a task is dispatched to it. The same notice
// may arrive more than once (after a reconnect, or from both a push and a
// check): a device treats a notice for the task it is already working on,
// with the same attempt, as a duplicate.
//
// # HTTP endpoints
//
//	POST /device/v1/version            body VersionReport            → 204
//	GET  /device/v1/update?module=M    → 200 Notice | 204 (no update); Retry-After: seconds until the next poll
//	POST /device/v1/progress           body ProgressReport           → 204
//
// Errors are JSON Error bodies with a 4xx/5xx status. Package files are
// downloaded from Notice.URL with plain GET and Range (resumable); the URL is
// signed and expires at Notice.URLExpiresAt, so it needs no device
// credentials.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TopicRoot is the prefix of every native device topic.
const TopicRoot = "updraft/v1"

// Topic suffixes under "updraft/v1/{product}/{device}/".
const (
	TopicVersion    = "version"
	TopicProgress   = "progress"
	TopicCheck      = "check"
	TopicStatus     = "status"
	TopicNotice     = "notice"
	TopicCheckReply = "check/reply"
)

// DefaultModule names the whole firmware; an empty module means it.
const DefaultModule = "default"

// Topic returns "updraft/v1/{product}/{device}/{suffix}".
func Topic(product, device, suffix string) string {
	return TopicRoot + "/" + product + "/" + device + "/" + suffix
}

// ParseTopic splits a native topic into product, device and suffix; ok is
// false for a topic outside updraft/v1 or without a suffix.
func ParseTopic(topic string) (product, device, suffix string, ok bool) {
	rest, found := strings.CutPrefix(topic, TopicRoot+"/")
	if !found {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ClientID is the MQTT client identifier of a device.
func ClientID(product, device string) string { return product + "." + device }

// StringToSign is what a device signs: "{product}&{device}|{timestamp}".
func StringToSign(product, device string, tsMillis int64) string {
	return product + "&" + device + "|" + strconv.FormatInt(tsMillis, 10)
}

// Username is the MQTT username (and the HTTP credential): the string to sign.
func Username(product, device string, at time.Time) string {
	return StringToSign(product, device, at.UnixMilli())
}

// Sign returns lowercase hex(HMAC-SHA256(secret, StringToSign)).
func Sign(secret, product, device string, tsMillis int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(StringToSign(product, device, tsMillis)))
	return hex.EncodeToString(m.Sum(nil))
}

// Credentials is a parsed device credential, not yet verified.
type Credentials struct {
	Product  string
	Device   string
	TsMillis int64
	Sign     string
}

// ParseUsername parses "{product}&{device}|{timestamp}".
func ParseUsername(username string) (Credentials, error) {
	product, rest, ok := strings.Cut(username, "&")
	if !ok || product == "" {
		return Credentials{}, fmt.Errorf("username %q is not {product}&{device}|{timestamp}", username)
	}
	i := strings.LastIndexByte(rest, '|')
	if i <= 0 {
		return Credentials{}, fmt.Errorf("username %q is not {product}&{device}|{timestamp}", username)
	}
	ts, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return Credentials{}, fmt.Errorf("username %q: the timestamp must be Unix milliseconds", username)
	}
	return Credentials{Product: product, Device: rest[:i], TsMillis: ts}, nil
}

// Verify checks the credential's sign against secret (constant time) and its
// timestamp against now within ±skew.
func (c Credentials) Verify(secret string, now time.Time, skew time.Duration) error {
	at := time.UnixMilli(c.TsMillis)
	if d := now.Sub(at); d > skew || d < -skew {
		return fmt.Errorf("timestamp %d is %s away from the server's clock (allowed ±%s): sync the device clock", c.TsMillis, d.Round(time.Second), skew)
	}
	want := Sign(secret, c.Product, c.Device, c.TsMillis)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(c.Sign))) {
		return fmt.Errorf("signature mismatch: sign %q with the device secret", StringToSign(c.Product, c.Device, c.TsMillis))
	}
	return nil
}

// AuthScheme is the HTTP Authorization scheme of the device API.
const AuthScheme = "Updraft-HMAC-SHA256"

// Authorization returns the HTTP Authorization header value for a request
// made at time at.
func Authorization(product, device, secret string, at time.Time) string {
	ts := at.UnixMilli()
	return AuthScheme + " " + StringToSign(product, device, ts) + " " + Sign(secret, product, device, ts)
}

// ParseAuthorization parses an Authorization header value.
func ParseAuthorization(h string) (Credentials, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, AuthScheme) {
		return Credentials{}, fmt.Errorf("authorization must be %q {product}&{device}|{timestamp} {sign}", AuthScheme)
	}
	user, sign, ok := strings.Cut(strings.TrimSpace(rest), " ")
	if !ok || sign == "" {
		return Credentials{}, fmt.Errorf("authorization must be %q {product}&{device}|{timestamp} {sign}", AuthScheme)
	}
	c, err := ParseUsername(user)
	if err != nil {
		return Credentials{}, err
	}
	c.Sign = strings.TrimSpace(sign)
	return c, nil
}

// Tag is a key/value label a job attaches to its notices.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Notice tells a device to upgrade one module. Download URL with GET (Range
// supported), check Size and the digests, install, then publish the new
// version.
type Notice struct {
	TaskID  int64  `json:"task_id"`
	JobID   string `json:"job_id,omitempty"`
	Attempt int    `json:"attempt,omitempty"` // 1 for the first notice of a task, +1 per retry; 0 if unknown
	Module  string `json:"module"`
	Version string `json:"version"` // the destination version
	// FromVersion is the version a differential package applies to.
	FromVersion  string    `json:"from_version,omitempty"`
	URL          string    `json:"url"`
	URLExpiresAt time.Time `json:"url_expires_at,omitzero"`
	FileName     string    `json:"file_name,omitempty"`
	Size         int64     `json:"size"`
	SHA256       string    `json:"sha256,omitempty"` // lowercase hex
	MD5          string    `json:"md5,omitempty"`    // lowercase hex
	SignMethod   string    `json:"sign_method"`      // "SHA256" or "MD5": which digest Sign is
	Sign         string    `json:"sign"`
	CustomInfo   string    `json:"custom_info,omitempty"`
	Differential bool      `json:"differential,omitempty"`
	ExtInfo      string    `json:"ext_info,omitempty"`
	Tags         []Tag     `json:"tags,omitempty"`
	NeedConfirm  bool      `json:"need_confirm,omitempty"`
}

// VersionReport: the version one module runs.
type VersionReport struct {
	Module  string `json:"module,omitempty"` // "" = "default"
	Version string `json:"version"`
}

// Progress steps with a meaning. Any 0–100 is a percentage; negative steps
// fail the task with a reason.
const (
	StepDownloadFailed = -2
	StepVerifyFailed   = -3
	StepInstallFailed  = -4
	StepRejected       = -5 // the device declines (busy, low battery…)
	StepFailed         = -1 // any other failure
)

// ProgressReport is progress on a task. TaskID and Module may be omitted:
// the device's active task on the default module is meant.
type ProgressReport struct {
	TaskID int64  `json:"task_id,omitempty"`
	Module string `json:"module,omitempty"`
	Step   int    `json:"step"`
	Desc   string `json:"desc,omitempty"`
}

// CheckRequest asks whether an update waits for a module.
type CheckRequest struct {
	Module string `json:"module,omitempty"`
}

// CheckReply answers a CheckRequest. On the wire it is the Notice itself, or
// {"none":true} when there is no update, or {"error":"…"}.
type CheckReply struct {
	Notice *Notice
	Error  string
}

// MarshalJSON writes the notice, {"none":true} or {"error":…}.
func (r CheckReply) MarshalJSON() ([]byte, error) {
	switch {
	case r.Error != "":
		return json.Marshal(struct {
			Error string `json:"error"`
		}{r.Error})
	case r.Notice == nil:
		return []byte(`{"none":true}`), nil
	}
	return json.Marshal(r.Notice)
}

// UnmarshalJSON reads any of the three forms.
func (r *CheckReply) UnmarshalJSON(b []byte) error {
	var probe struct {
		None  bool   `json:"none"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	*r = CheckReply{Error: probe.Error}
	if probe.None || probe.Error != "" {
		return nil
	}
	r.Notice = new(Notice)
	return json.Unmarshal(b, r.Notice)
}

// Status is published by an MQTT device after it subscribes (online=true)
// and registered as its will (online=false). The embedded broker sees
// connections itself; an external broker needs these.
type Status struct {
	Online bool `json:"online"`
	// Since stamps the connection the status is about: when it was opened,
	// in Unix milliseconds, strictly increasing from one connection of the
	// device to the next, the same in the connection's online status and in
	// its will. The server applies a device's statuses in stamp order (a
	// connection's offline after its online) and ignores one older than what
	// it has: through an external broker the will of a dropped connection
	// can reach the server after the online status of its successor. 0 (or
	// absent): unordered, applied as it comes.
	Since int64 `json:"since,omitempty"`
}

// Error is the body of a device HTTP API error.
type Error struct {
	Code      string `json:"code"` // invalid, unauthenticated, not_found, unavailable, …
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}
