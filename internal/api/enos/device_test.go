package enos_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// ---- An EnOS device written from EnOS's device documentation (spec §3.5,
// nonsdk_login.md) and the behaviour of its Java SDK (MqttConnection,
// DefaultProcessor, HttpConnection), sharing no code with the server:
//   - CONNECT: client id "{deviceKey}|securemode=2,signmethod=…,timestamp=…|",
//     username "{deviceKey}&{productKey}", password = digest of the sorted
//     params + device secret (sha256 lower, sha1 UPPER, md5 lower hex);
//   - it never SUBSCRIBEs to command topics (the platform delivers
//     ota.device.upgrade), and answers a command on its _reply topic;
//   - before a request that expects an answer it SUBSCRIBEs to that
//     request's _reply topic (once), then publishes {id, version, method,
//     params} and waits for the reply with the same id;
//   - it downloads files over HTTP: POST /auth/{pk}/{dk} for a sessionId,
//     then GET /multipart/sys/{pk}/{dk}/file/download?sessionId&fileUri&category=ota.
// ----

type docDevice struct {
	t                *testing.T
	broker, httpBase string
	pk, dk, secret   string
	c                paho.Client
	mu               sync.Mutex
	subscribed       map[string]bool
	waiting          map[string]chan docReply // reply topic + "_" + id
	upgrades         chan docUpgrade
	nextID           int
	answerUpgrade    bool
}

type docReply struct {
	ID      string          `json:"id"`
	Code    int             `json:"code"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
}

type docFirmware struct {
	Version    string `json:"version"`
	Sign       string `json:"sign"`
	SignMethod string `json:"signMethod"`
	FileURL    string `json:"fileUrl"`
	FileSize   int64  `json:"fileSize"`
}

type docUpgrade struct {
	ID     string      `json:"id"`
	Method string      `json:"method"`
	Params docFirmware `json:"params"`
}

func docDigest(method, s string) string {
	var h hash.Hash
	upper := false
	switch method {
	case "sha1":
		h, upper = sha1.New(), true
	case "md5":
		h = md5.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(s))
	out := hex.EncodeToString(h.Sum(nil))
	if upper {
		out = strings.ToUpper(out)
	}
	return out
}

// docSign is SignUtil.sign: sorted name+value pairs, then the secret.
func docSign(secret, method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + params[k])
	}
	return docDigest(method, b.String()+secret)
}

func (d *docDevice) topic(op string) string { return "/sys/" + d.pk + "/" + d.dk + "/ota/device/" + op }

// dial connects with signmethod method; secret and securemode may be wrong
// on purpose.
func dialEnOS(t *testing.T, broker, pk, dk, secret, method, securemode string) (paho.Client, *docDevice, error) {
	t.Helper()
	d := &docDevice{t: t, broker: broker, pk: pk, dk: dk, secret: secret, subscribed: map[string]bool{},
		waiting: map[string]chan docReply{}, upgrades: make(chan docUpgrade, 8), answerUpgrade: true}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	clientID := dk + "|securemode=" + securemode + ",signmethod=" + method + ",timestamp=" + ts + "|"
	pw := docSign(secret, method, map[string]string{"clientId": dk, "deviceKey": dk, "productKey": pk, "timestamp": ts})
	o := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(clientID).SetUsername(dk + "&" + pk).
		SetPassword(pw).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).SetCleanSession(true).
		SetDefaultPublishHandler(d.onMessage)
	c := paho.NewClient(o)
	tok := c.Connect()
	testenv.Within(t, time.Minute, "the EnOS CONNECT of "+dk, func() { tok.Wait() })
	if tok.Error() != nil {
		return nil, nil, tok.Error()
	}
	d.c = c
	t.Cleanup(func() { c.Disconnect(50) })
	return c, d, nil
}

func (d *docDevice) onMessage(_ paho.Client, m paho.Message) {
	if strings.HasSuffix(m.Topic(), "_reply") {
		var r docReply
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			d.t.Errorf("reply on %s is not JSON: %s", m.Topic(), m.Payload())
			return
		}
		d.mu.Lock()
		ch := d.waiting[m.Topic()+"_"+r.ID]
		delete(d.waiting, m.Topic()+"_"+r.ID)
		d.mu.Unlock()
		if ch != nil {
			ch <- r
		}
		return
	}
	if m.Topic() == d.topic("upgrade") {
		var u docUpgrade
		if err := json.Unmarshal(m.Payload(), &u); err != nil || u.Method != "ota.device.upgrade" {
			d.t.Errorf("upgrade command %s: %v", m.Payload(), err)
			return
		}
		if d.answerUpgrade {
			b, _ := json.Marshal(map[string]any{"id": u.ID, "code": 200, "data": ""})
			d.c.Publish(d.topic("upgrade_reply"), 1, false, b)
		}
		d.upgrades <- u
	}
}

// request publishes method on op and waits for its reply.
func (d *docDevice) request(op, method string, params any) docReply {
	d.t.Helper()
	answer := d.topic(op) + "_reply"
	d.mu.Lock()
	sub := !d.subscribed[answer]
	d.subscribed[answer] = true
	d.nextID++
	id := strconv.Itoa(d.nextID)
	ch := make(chan docReply, 1)
	d.waiting[answer+"_"+id] = ch
	d.mu.Unlock()
	if sub {
		tok := d.c.Subscribe(answer, 1, nil) // nil: the default handler gets it
		testenv.Within(d.t, time.Minute, "SUBACK "+answer, func() { tok.Wait() })
		if tok.Error() != nil {
			d.t.Fatalf("subscribe %s: %v", answer, tok.Error())
		}
	}
	b, _ := json.Marshal(map[string]any{"id": id, "version": "1.0", "method": method, "params": params})
	tok := d.c.Publish(d.topic(op), 1, false, b)
	testenv.Within(d.t, time.Minute, "PUBACK "+op, func() { tok.Wait() })
	return testenv.Recv(d.t, ch, 30*time.Second, "the reply to "+method)
}

func (d *docDevice) inform(version string) docReply {
	return d.request("inform", "ota.device.inform", map[string]string{"version": version})
}

func (d *docDevice) progress(step, desc string) docReply {
	return d.request("progress", "ota.device.progress", map[string]string{"step": step, "desc": desc})
}

// login is HttpConnection.auth: sign over productKey, deviceKey, lifetime,
// signMethod with SHA-256, body {secureMode: "sha256", lifetime, sign}.
func (d *docDevice) login(lifetime int64, secret string) (int, string) {
	d.t.Helper()
	sign := docSign(secret, "sha256", map[string]string{"productKey": d.pk, "deviceKey": d.dk,
		"lifetime": strconv.FormatInt(lifetime, 10), "signMethod": "sha256"})
	b, _ := json.Marshal(map[string]any{"secureMode": "sha256", "lifetime": lifetime, "sign": sign})
	resp, err := http.Post(d.httpBase+"/auth/"+d.pk+"/"+d.dk, "application/json; charset=utf-8", bytes.NewReader(b))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Code int `json:"code"`
		Data struct {
			SessionID string `json:"sessionId"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	return out.Code, out.Data.SessionID
}

// fetch is generateDownloadCall with an optional Range header.
func (d *docDevice) fetch(session, fileURI, rng string) (*http.Response, []byte) {
	d.t.Helper()
	u := d.httpBase + "/multipart/sys/" + d.pk + "/" + d.dk + "/file/download?sessionId=" + session + "&fileUri=" + fileURI + "&category=ota"
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// download fetches the file in two ranged requests (a resumed download).
func (d *docDevice) download(fw docFirmware) []byte {
	d.t.Helper()
	code, session := d.login(300_000, d.secret)
	if code != 0 || session == "" {
		d.t.Fatalf("HTTP login: code %d", code)
	}
	half := fw.FileSize / 2
	resp, first := d.fetch(session, fw.FileURL, fmt.Sprintf("bytes=0-%d", half-1))
	if resp.StatusCode != http.StatusPartialContent || int64(len(first)) != half {
		d.t.Fatalf("first range: %d, %d bytes", resp.StatusCode, len(first))
	}
	resp, rest := d.fetch(session, fw.FileURL, fmt.Sprintf("bytes=%d-", half))
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", half)) {
		d.t.Fatalf("resumed range: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	file := append(first, rest...)
	if int64(len(file)) != fw.FileSize || docDigest(fw.SignMethod, string(file)) != strings.ToLower(fw.Sign) {
		d.t.Fatalf("downloaded %d bytes, %s %s; want %d bytes, sign %s", len(file), fw.SignMethod, docDigest(fw.SignMethod, string(file)), fw.FileSize, fw.Sign)
	}
	return file
}

// upgrade is what a device does with a notice: download, report progress,
// install, and inform the new version.
func (d *docDevice) upgrade(fw docFirmware) {
	d.t.Helper()
	if r := d.progress("10", "downloading"); r.Code != 200 {
		d.t.Fatalf("progress 10: %+v", r)
	}
	d.download(fw)
	if r := d.progress("100", "installed"); r.Code != 200 {
		d.t.Fatalf("progress 100: %+v", r)
	}
	if r := d.inform(fw.Version); r.Code != 200 {
		d.t.Fatalf("inform %s: %+v", fw.Version, r)
	}
}

// ---- the server side of the test ----

type deviceEnv struct {
	*env
	srv *server.Server
}

func newDeviceEnv(t *testing.T) *deviceEnv {
	t.Helper()
	srv := server.StartForTest(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	creds, ok := srv.Credentials()
	if !ok {
		t.Fatal("the test server has no bootstrap credentials")
	}
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	e := &env{t: t, ctx: t.Context(), svc: srv.Service(), url: srv.URL(), org: creds.Tenant,
		p: service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID}, appKey: creds.AccessKeyID, secret: creds.SecretAccessKey}
	return &deviceEnv{env: e, srv: srv}
}

func (e *deviceEnv) client() *enosClient {
	return &enosClient{t: e.t, base: e.url, appKey: e.appKey, secret: e.secret, now: time.Now}
}

func (e *deviceEnv) product(key string, p ota.Protocol) {
	e.t.Helper()
	if _, err := e.svc.CreateProduct(e.ctx, e.p, ota.Product{Key: key, Name: key, Protocol: p}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *deviceEnv) device(pk, dk string) ota.Device {
	e.t.Helper()
	d, err := e.svc.CreateDevice(e.ctx, e.p, ota.Device{ProductKey: pk, Name: dk})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *deviceEnv) connect(pk string, d ota.Device) *docDevice {
	e.t.Helper()
	_, dev, err := dialEnOS(e.t, e.srv.MQTTAddr(), pk, d.Name, d.Secret, "sha256", "2")
	if err != nil {
		e.t.Fatalf("CONNECT %s: %v", d.Name, err)
	}
	dev.httpBase = e.url
	return dev
}

// TestDeviceConnect: EnOS's CONNECT scheme with each sign method, and what
// is refused.
func TestDeviceConnect(t *testing.T) {
	e := newDeviceEnv(t)
	e.product("pk-enos", ota.ProtocolEnOS)
	e.product("pk-native", ota.ProtocolNative)
	d := e.device("pk-enos", "dk1")
	other := e.device("pk-native", "dk1")
	broker := e.srv.MQTTAddr()
	cases := []struct {
		name, pk, dk, secret, method, mode string
		ok                                 bool
	}{
		{"sha256 (SDK default)", "pk-enos", "dk1", d.Secret, "sha256", "2", true},
		{"sha1, upper-case hex", "pk-enos", "dk1", d.Secret, "sha1", "2", true},
		{"md5", "pk-enos", "dk1", d.Secret, "md5", "2", true},
		{"hmacsha256 alias", "pk-enos", "dk1", d.Secret, "hmacsha256", "2", true},
		{"wrong secret", "pk-enos", "dk1", d.Secret + "x", "sha256", "2", false},
		{"unknown device", "pk-enos", "dk9", d.Secret, "sha256", "2", false},
		{"securemode 3 (product secret)", "pk-enos", "dk1", d.Secret, "sha256", "3", false},
		{"unknown signmethod", "pk-enos", "dk1", d.Secret, "sha512", "2", false},
		{"device of a product on another protocol", "pk-native", "dk1", other.Secret, "sha256", "2", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dialEnOS(t, broker, tc.pk, tc.dk, tc.secret, tc.method, tc.mode)
			if (err == nil) != tc.ok {
				t.Fatalf("connect: err = %v, want ok = %v", err, tc.ok)
			}
			if c != nil {
				c.Disconnect(50)
			}
		})
	}
	// A connected device reaches only its own topics.
	c, _, err := dialEnOS(t, broker, "pk-enos", "dk1", d.Secret, "sha256", "2")
	if err != nil {
		t.Fatal(err)
	}
	for filter, ok := range map[string]bool{
		"/sys/pk-enos/dk1/ota/device/inform_reply": true,
		"/sys/pk-enos/dk1/#":                       true,
		"/sys/pk-enos/dk2/ota/device/upgrade":      false,
		"/sys/pk-enos/+/ota/device/upgrade":        false,
	} {
		tok := c.Subscribe(filter, 1, nil)
		testenv.Within(t, time.Minute, "the SUBACK for "+filter, func() { tok.Wait() })
		code := tok.(*paho.SubscribeToken).Result()[filter]
		if granted := code < 0x80 && tok.Error() == nil; granted != ok {
			t.Errorf("subscribe %s: code %#x, want granted = %v", filter, code, ok)
		}
	}
}

// TestDeviceUpgrade: EnOS devices upgrade through a job created and started
// with the EnOS API: one takes the pushed notice, one missed it and pulls
// with getversion; both download their enos-connect:// file with a resumed
// Range request, report progress and inform the new version; the tasks end
// succeeded.
func TestDeviceUpgrade(t *testing.T) {
	e := newDeviceEnv(t)
	e.product("pk-enos", ota.ProtocolEnOS)
	d1, d2, d3 := e.device("pk-enos", "push1"), e.device("pk-enos", "pull1"), e.device("pk-enos", "idle1")
	push, pull, idle := e.connect("pk-enos", d1), e.connect("pk-enos", d2), e.connect("pk-enos", d3)
	pull.answerUpgrade = false // this one misses the notice
	for _, dev := range []*docDevice{push, pull, idle} {
		// The SDK reports the version on every connect.
		if r := dev.inform("1.0"); r.Code != 200 {
			t.Fatalf("inform: %+v", r)
		}
		got, err := e.svc.GetDevice(e.ctx, e.p, "pk-enos", dev.dk)
		if err != nil || got.Version("") != "1.0" {
			t.Fatalf("%s after inform: %v %v", dev.dk, got.Versions, err)
		}
	}
	// Nothing to do yet: getversion is an empty list, progress has no task.
	if r := pull.request("getversion", "ota.device.getversion", map[string]any{}); r.Code != 200 || string(r.Data) != "[]" {
		t.Fatalf("getversion without a job: %+v", r)
	}
	if r := idle.progress("50", ""); r.Code != 764 {
		t.Fatalf("progress without a task: %+v, want 764", r)
	}
	if r := idle.inform(""); r.Code != 400 || r.Message == "" {
		t.Fatalf("inform without a version: %+v, want 400 with a message", r)
	}

	c := e.client()
	c.login()
	file := []byte(strings.Repeat("enos firmware 2.0 ", 4000))
	a := c.upload(e.org, "pk-enos", pyMetadata("enos-fw-2", "2.0", file, false), "fw-2.0.bin", file)
	wantCode(t, "create firmware", a, 0)
	fwID := dataField(t, a, "firmwareId")
	job := map[string]any{"name": map[string]any{"defaultValue": "upgrade"}, "type": "upgrade", "upgradePolicy": "snapshot",
		"enableUpgradeRequest": true, "upgradeTimeout": 3600, "maximumConcurrency": 100,
		"upgradeScope": map[string]any{"type": "partial", "deviceKeys": []string{"push1", "pull1"}}}
	a = c.do("ota-jobs", "create", map[string]string{"orgId": e.org, "firmwareId": fwID}, job, nil)
	wantCode(t, "create job", a, 0)
	jobID := dataField(t, a, "jobId")
	wantCode(t, "start", c.do("ota-jobs", "start", map[string]string{"orgId": e.org, "jobId": jobID}, map[string]any{}, nil), 0)
	if _, err := e.svc.Advance(e.ctx); err != nil {
		t.Fatal(err)
	}

	u := testenv.Recv(t, push.upgrades, 30*time.Second, "the pushed ota.device.upgrade")
	if u.Params.Version != "2.0" || !strings.HasPrefix(u.Params.FileURL, "enos-connect://") || u.Params.FileSize != int64(len(file)) || u.Params.SignMethod != "sha256" {
		t.Fatalf("upgrade notice = %+v", u)
	}
	push.upgrade(u.Params)

	// pull1 ignored its notice and asks.
	testenv.Recv(t, pull.upgrades, 30*time.Second, "pull1's notice (ignored)")
	r := pull.request("getversion", "ota.device.getversion", map[string]any{})
	var list []docFirmware
	if err := json.Unmarshal(r.Data, &list); r.Code != 200 || err != nil || len(list) != 1 || list[0].Version != "2.0" {
		t.Fatalf("getversion = %+v", r)
	}
	pull.upgrade(list[0])

	a = c.do("ota-jobs", "searchTask", map[string]string{"orgId": e.org}, map[string]any{"expression": "jobId = '" + jobID + "' AND status = 'succeeded'"}, nil)
	wantCode(t, "searchTask", a, 0)
	if a.Pagination == nil || a.Pagination.TotalSize != 2 {
		t.Fatalf("succeeded tasks: %s", a.Data)
	}
	// idle1 is in no job: its progress still has no task.
	if r := idle.progress("-1", "failed"); r.Code != 764 {
		t.Fatalf("progress of a device without a task: %+v", r)
	}
}

// TestDeviceDownloadRefused: the HTTP login and download refuse what the
// device may not do, each with a status and a message, and change nothing.
func TestDeviceDownloadRefused(t *testing.T) {
	e := newDeviceEnv(t)
	e.product("pk-enos", ota.ProtocolEnOS)
	e.product("pk-other", ota.ProtocolEnOS)
	d := e.device("pk-enos", "dk1")
	o := e.device("pk-other", "dk1")
	c := e.client()
	c.login()
	file := []byte(strings.Repeat("x", 1000))
	a := c.upload(e.org, "pk-other", pyMetadata("other", "2.0", file, false), "o.bin", file)
	wantCode(t, "create firmware", a, 0)
	otherURI := "enos-connect://" + dataField(t, a, "firmwareId") + ".bin"
	a = c.upload(e.org, "pk-enos", pyMetadata("mine", "2.0", file, false), "m.bin", file)
	wantCode(t, "create firmware", a, 0)
	mine := "enos-connect://" + dataField(t, a, "firmwareId") + ".bin"

	dev := &docDevice{t: t, httpBase: e.url, pk: "pk-enos", dk: "dk1", secret: d.Secret}
	if code, _ := dev.login(300_000, d.Secret+"x"); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong secret: %d", code)
	}
	for _, lt := range []int64{999, 86_400_001} {
		if code, _ := dev.login(lt, d.Secret); code != http.StatusBadRequest {
			t.Fatalf("login with lifetime %d: %d, want 400", lt, code)
		}
	}
	for _, lt := range []int64{1000, 86_400_000} {
		if code, s := dev.login(lt, d.Secret); code != 0 || s == "" {
			t.Fatalf("login with lifetime %d: %d", lt, code)
		}
	}
	_, session := dev.login(300_000, d.Secret)
	if resp, b := dev.fetch(session, mine, ""); resp.StatusCode != http.StatusOK || len(b) != len(file) {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(b))
	}
	if resp, _ := dev.fetch(session, otherURI, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another product's file: %d, want 404", resp.StatusCode)
	}
	forged := session[:len(session)-1] + "0"
	if strings.HasSuffix(session, "0") {
		forged = session[:len(session)-1] + "1"
	}
	if resp, _ := dev.fetch(forged, mine, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged session: %d, want 401", resp.StatusCode)
	}
	// A session whose expiry the device pushed out is not valid either.
	exp, mac, _ := strings.Cut(session, ".")
	later, _ := strconv.ParseInt(exp, 10, 64)
	if resp, _ := dev.fetch(strconv.FormatInt(later+86_400_000, 10)+"."+mac, mine, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session with a later expiry: %d, want 401", resp.StatusCode)
	}
	if resp, _ := dev.fetch(session, "http://example.com/x.bin", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("not an enos-connect URI: %d, want 400", resp.StatusCode)
	}
	// Another device's session is not this device's.
	od := &docDevice{t: t, httpBase: e.url, pk: "pk-other", dk: "dk1", secret: o.Secret}
	_, otherSession := od.login(300_000, o.Secret)
	if resp, _ := dev.fetch(otherSession, mine, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("another device's session: %d, want 401", resp.StatusCode)
	}
	// A one-second session ends.
	_, short := dev.login(1000, d.Secret)
	testenv.Within(t, 10*time.Second, "the short session to lapse", func() {
		for {
			if resp, _ := dev.fetch(short, mine, ""); resp.StatusCode == http.StatusUnauthorized {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
