package aliyuniot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
)

func newMQTTEnv(t *testing.T) *env {
	return newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
}

// alibabaProduct creates a product whose devices speak Alink, and devices
// on it; it returns their secrets by name.
func (e *env) alibabaProduct(key string, names ...string) map[string]string {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.svc.CreateProduct(ctx, e.p, ota.Product{Key: key, Name: key, Protocol: ota.ProtocolAlibaba}); err != nil {
		e.t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, n := range names {
		d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: key, Name: n})
		if err != nil {
			e.t.Fatal(err)
		}
		secrets[n] = d.Secret
	}
	return secrets
}

// firmwareWith uploads file and registers it with extra CreateOTAFirmware
// parameters.
func firmwareWith(t *testing.T, c *tea, product, name, version string, file []byte, extra map[string]string) string {
	t.Helper()
	d := c.mustCall("GenerateOTAUploadURL", nil)["Data"].(map[string]any)
	if status, body := upload(t, str(d["Host"]), str(d["Key"]), str(d["OSSAccessKeyId"]), str(d["Policy"]), str(d["Signature"]), file); status != http.StatusNoContent {
		t.Fatalf("upload: %d %s", status, body)
	}
	q := map[string]string{"FirmwareName": name, "DestVersion": version, "ProductKey": product,
		"FirmwareUrl": str(d["FirmwareUrl"]), "NeedToVerify": "false", "FirmwareSign": md5hex(file)}
	for k, v := range extra {
		q[k] = v
	}
	return str(dig(c.mustCall("CreateOTAFirmware", q), "Data", "FirmwareId"))
}

// waitTasks advances the engine until the job has want tasks in status.
func (e *env) waitTasks(c *tea, jobID, status string, want int) map[string]any {
	e.t.Helper()
	var res map[string]any
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := e.svc.Advance(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		res = c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": status, "PageSize": "100"})
		if str(res["Total"]) == strconv.Itoa(want) {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
	all := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "PageSize": "100"})
	e.t.Fatalf("job %s: want %d tasks %s within a minute; tasks: %v", jobID, want, status, all)
	return nil
}

// dialAlink tries a raw Alink CONNECT.
func dialAlink(t *testing.T, broker, clientID, username, password string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(clientID).SetUsername(username).
		SetPassword(password).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	testenv.Within(t, time.Minute, "the MQTT CONNECT of "+clientID, func() { tok.Wait() })
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(100) })
	}
	return c, tok.Error()
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func sign(t *testing.T, method, secret, content string) string {
	t.Helper()
	s, err := mqtt.AlinkSign(method, secret, content)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAlinkConnect: the Alink CONNECT scheme (doc 73742) with each sign
// method, with and without a timestamp, and the topic confinement of a
// connected device.
func TestAlinkConnect(t *testing.T) {
	e := newMQTTEnv(t)
	sec := e.alibabaProduct("pkConn", "dev1")["dev1"]
	e.product("pkNative") // a native product: Alink credentials of its devices are refused
	e.devices("pkNative", "dev1")
	nat, err := e.svc.DeviceForAuth(context.Background(), ota.DeviceRef{ProductKey: "pkNative", Name: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	broker := e.srv.MQTTAddr()
	user := "dev1&pkConn"
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	content := mqtt.AlinkSignContent("c1", "dev1", "pkConn", ts)
	cases := []struct {
		name, clientID, username, password string
		ok                                 bool
	}{
		{"hmacsha1", "c1|securemode=3,signmethod=hmacsha1,timestamp=" + ts + "|", user, sign(t, "hmacsha1", sec, content), true},
		{"hmacmd5", "c1|securemode=3,signmethod=hmacmd5,timestamp=" + ts + "|", user, sign(t, "hmacmd5", sec, content), true},
		{"hmacsha256, upper-case hex", "c1|securemode=2,signmethod=hmacsha256,timestamp=" + ts + "|", user, strings.ToUpper(sign(t, "hmacsha256", sec, content)), true},
		{"default signmethod is hmacmd5", "c1|securemode=3,timestamp=" + ts + "|", user, sign(t, "hmacmd5", sec, content), true},
		{"no timestamp", "c1|securemode=3,signmethod=hmacsha1|", user, sign(t, "hmacsha1", sec, mqtt.AlinkSignContent("c1", "dev1", "pkConn", "")), true},
		{"the SDK's extra keys", "c1|securemode=3,signmethod=hmacsha1,timestamp=" + ts + ",lan=NodeJS,_v=1.2.8|", user, sign(t, "hmacsha1", sec, content), true},
		{"an old timestamp is not refused (devices without a clock)", "c1|securemode=3,signmethod=hmacsha1,timestamp=2524608000000|", user,
			sign(t, "hmacsha1", sec, mqtt.AlinkSignContent("c1", "dev1", "pkConn", "2524608000000")), true},
		{"timestamp in the client id differs from the signed one", "c1|securemode=3,signmethod=hmacsha1,timestamp=1|", user, sign(t, "hmacsha1", sec, content), false},
		{"signmethod differs from the sign", "c1|securemode=3,signmethod=hmacsha256,timestamp=" + ts + "|", user, sign(t, "hmacsha1", sec, content), false},
		{"wrong secret", "c1|securemode=3,signmethod=hmacsha1,timestamp=" + ts + "|", user, sign(t, "hmacsha1", "x"+sec, content), false},
		{"unknown device", "c1|securemode=3,signmethod=hmacsha1,timestamp=" + ts + "|", "dev9&pkConn", sign(t, "hmacsha1", sec, content), false},
		{"no securemode", "c1|signmethod=hmacsha1,timestamp=" + ts + "|", user, sign(t, "hmacsha1", sec, content), false},
		{"securemode -2 (ID²)", "c1|securemode=-2,signmethod=hmacsha1,timestamp=" + ts + "|", user, sign(t, "hmacsha1", sec, content), false},
		{"unsupported signmethod", "c1|securemode=3,signmethod=sha256,timestamp=" + ts + "|", user, sign(t, "hmacsha256", sec, content), false},
		{"device of a native product", "c1|securemode=3,signmethod=hmacsha1,timestamp=" + ts + "|", "dev1&pkNative",
			sign(t, "hmacsha1", nat.Secret, mqtt.AlinkSignContent("c1", "dev1", "pkNative", ts)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialAlink(t, broker, tc.clientID, tc.username, tc.password)
			if (err == nil) != tc.ok {
				t.Fatalf("connect: err = %v, want ok = %v", err, tc.ok)
			}
			if err == nil {
				c.Disconnect(100)
			}
		})
	}

	c, err := dialAlink(t, broker, "c1|securemode=3,signmethod=hmacsha1,timestamp="+ts+"|", user, sign(t, "hmacsha1", sec, content))
	if err != nil {
		t.Fatal(err)
	}
	for filter, ok := range map[string]bool{
		mqtt.AlinkUpgradeTopic("pkConn", "dev1"):     true,
		mqtt.AlinkGetReplyTopic("pkConn", "dev1"):    true,
		"/sys/pkConn/dev1/thing/event/+/post_reply":  true,
		"/shadow/get/pkConn/dev1":                    true,
		mqtt.AlinkUpgradeTopic("pkConn", "dev2"):     false,
		"/ota/device/upgrade/pkConn/+":               false,
		"/ota/device/upgrade/#":                      false,
		"/sys/pkConn/+/thing/ota/firmware/get_reply": false,
		"#": false,
	} {
		tok := c.Subscribe(filter, 1, nil)
		testenv.Within(t, time.Minute, "the SUBACK for "+filter, func() { tok.Wait() })
		code := tok.(*paho.SubscribeToken).Result()[filter]
		if granted := code < 0x80 && tok.Error() == nil; granted != ok {
			t.Errorf("subscribe %s: code %#x, want granted = %v", filter, code, ok)
		}
	}
}

// TestAlinkUpgrade: devices written from the spec (not Updraft's SDK)
// inform their version, get the upgrade notice of a static job created
// through the Alibaba API, download and check it, report progress and their
// new version; a device that fails verification fails its task with the
// step's reason. Every field of the notice is checked.
func TestAlinkUpgrade(t *testing.T) {
	e := newMQTTEnv(t)
	names := []string{"sha1", "md5", "sha256", "bad"}
	secrets := e.alibabaProduct("pkUp", names...)
	ctx := context.Background()
	var mu sync.Mutex
	notices := map[string]mqtt.AlinkUpgrade{}
	devs := map[string]*mqtt.AlinkDevice{}
	for _, n := range names {
		d := &mqtt.AlinkDevice{ProductKey: "pkUp", DeviceName: n, Secret: secrets[n], Broker: e.srv.MQTTAddr(), Version: "1.0", SignMethod: "hmac" + n}
		if n == "bad" {
			d.SignMethod, d.FailStep = "hmacsha1", -3
		}
		d.OnNotice = func(u mqtt.AlinkUpgrade) { mu.Lock(); notices[n] = u; mu.Unlock() }
		if err := d.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		devs[n] = d
	}
	// The informed versions are recorded.
	deadline := time.Now().Add(time.Minute)
	for _, n := range names {
		for {
			dev, err := e.svc.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: "pkUp", Name: n})
			if err != nil {
				t.Fatal(err)
			}
			if dev.Version(ota.DefaultModule) == "1.0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %s: version %q after inform, want 1.0", n, dev.Version(ota.DefaultModule))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	c := e.tea("", e.ak, e.sk)
	file := []byte(strings.Repeat("alink firmware ", 1000))
	fw := firmwareWith(t, c, "pkUp", "fw2", "2.0", file, map[string]string{"Udi": `{"ota_notice":"fix"}`})
	q := map[string]string{"FirmwareId": fw, "ProductKey": "pkUp", "TargetSelection": "SPECIFIC", "Tag.1.Key": "k", "Tag.1.Value": "v"}
	for i, n := range names {
		q[fmt.Sprintf("TargetDeviceName.%d", i+1)] = n
	}
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", q), "Data", "JobId"))

	e.waitTasks(c, jobID, "SUCCEEDED", 3)
	failed := e.waitTasks(c, jobID, "FAILED", 1)
	info := dig(failed, "Data", "SimpleOTATaskInfo").([]any)[0].(map[string]any)
	if info["DeviceName"] != "bad" || !strings.Contains(str(info["TaskDesc"]), "-3") {
		t.Errorf("failed task = %v, want device bad with step -3 in TaskDesc", info)
	}
	for _, n := range names[:3] {
		if v := devs[n].Running(); v != "2.0" {
			t.Errorf("device %s runs %s, want 2.0", n, v)
		}
		dev, err := e.svc.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: "pkUp", Name: n})
		if err != nil || dev.Version(ota.DefaultModule) != "2.0" {
			t.Errorf("device %s: registry version %q (%v), want 2.0", n, dev.Version(ota.DefaultModule), err)
		}
	}

	mu.Lock()
	u := notices["md5"]
	mu.Unlock()
	d := u.Data
	if u.Code != "1000" || u.Message != "success" || u.ID == 0 || d.Version != "2.0" || d.Size != int64(len(file)) ||
		d.SignMethod != "Md5" || d.Sign != md5hex(file) || d.MD5 != md5hex(file) || d.IsDiff != 0 || d.Module != "" ||
		!strings.HasPrefix(d.URL, "http") || d.ExtData["k"] != "v" || d.ExtData["_package_udi"] != `{"ota_notice":"fix"}` {
		t.Errorf("upgrade notice = %+v", u)
	}

	// Nothing left to pull: firmware/get answers code 200 and data {}.
	r, err := devs["md5"].Get(ctx)
	if err != nil || r.Code != 200 || string(r.Data) != "{}" || r.Method != mqtt.AlinkGetMethod {
		t.Errorf("firmware/get with nothing to do = %+v, %v", r, err)
	}
}

// TestAlinkPullAndBadMessages: a pull-only job's notice reaches a device
// only through thing.ota.firmware.get; malformed progress and get messages
// change nothing (the get is answered with code 460).
func TestAlinkPullAndBadMessages(t *testing.T) {
	e := newMQTTEnv(t)
	secrets := e.alibabaProduct("pkPull", "d1")
	ctx := context.Background()
	got := make(chan mqtt.AlinkUpgrade, 4)
	d := &mqtt.AlinkDevice{ProductKey: "pkPull", DeviceName: "d1", Secret: secrets["d1"], Broker: e.srv.MQTTAddr(), Version: "1.0", FailStep: -1,
		OnNotice: func(u mqtt.AlinkUpgrade) { got <- u }}
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	c := e.tea("", e.ak, e.sk)
	file := []byte("pull me")
	fw := firmwareWith(t, c, "pkPull", "fwp", "2.0", file, map[string]string{"SignMethod": "SHA256", "FirmwareSign": sha256hex(file)})
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkPull",
		"TargetSelection": "SPECIFIC", "TargetDeviceName.1": "d1", "NeedPush": "false"}), "Data", "JobId"))
	e.waitTasks(c, jobID, "QUEUED", 1)
	for range 5 {
		if _, err := e.svc.Advance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case u := <-got:
		t.Fatalf("a pull-only job pushed %+v", u)
	default:
	}

	// Malformed messages on the device's own topics.
	cl, err := dialAlink(t, e.srv.MQTTAddr(), "raw|securemode=3,signmethod=hmacsha1|", "d1&pkPull",
		sign(t, "hmacsha1", secrets["d1"], mqtt.AlinkSignContent("raw", "d1", "pkPull", "")))
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan mqtt.AlinkGetReply, 4)
	tok := cl.Subscribe(mqtt.AlinkGetReplyTopic("pkPull", "d1"), 1, func(_ paho.Client, m paho.Message) {
		var r mqtt.AlinkGetReply
		if json.Unmarshal(m.Payload(), &r) == nil {
			replies <- r
		}
	})
	testenv.Within(t, time.Minute, "the SUBACK", func() { tok.Wait() })
	for _, p := range []string{`{"id":"1","params":{"step":"-9"}}`, `{"id":"2","params":{"step":"abc"}}`, `{"id":"3","params":{"step":"101"}}`, `{"id":"4","params":{}}`, `not json`} {
		tok := cl.Publish(mqtt.AlinkProgressTopic("pkPull", "d1"), 1, false, p)
		testenv.Within(t, time.Minute, "the PUBACK", func() { tok.Wait() })
	}
	if tasks := c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID, "TaskStatus": "QUEUED"}); str(tasks["Total"]) != "1" {
		t.Fatalf("after malformed progress reports: %v", c.mustCall("ListOTATaskByJob", map[string]string{"JobId": jobID}))
	}
	tok = cl.Publish(mqtt.AlinkGetTopic("pkPull", "d1"), 1, false, `{"id":"7","version":"1.0","method":"thing.ota.other","params":{}}`)
	testenv.Within(t, time.Minute, "the PUBACK", func() { tok.Wait() })
	if r := testenv.Recv(t, replies, time.Minute, "the reply to a bad method"); r.Code != 460 || string(r.ID) != `"7"` {
		t.Errorf("reply to a bad method = %+v, want code 460 and id 7", r)
	}

	// The device asks: it gets the notice in the reply, with SHA256.
	r, err := d.Get(ctx)
	if err != nil || r.Code != 200 {
		t.Fatalf("firmware/get = %+v, %v", r, err)
	}
	var data mqtt.AlinkUpgradeData
	if err := json.Unmarshal(r.Data, &data); err != nil || data.Version != "2.0" || data.SignMethod != "SHA256" || data.Sign != sha256hex(file) || data.MD5 != "" || data.Size != int64(len(file)) {
		t.Fatalf("firmware/get data = %s (%v)", r.Data, err)
	}
	// A step -1 from the device fails the task.
	if err := d.Progress(ctx, -1, "no space", ""); err != nil {
		t.Fatal(err)
	}
	failed := e.waitTasks(c, jobID, "FAILED", 1)
	if desc := str(dig(failed, "Data", "SimpleOTATaskInfo").([]any)[0].(map[string]any)["TaskDesc"]); !strings.Contains(desc, "no space") {
		t.Errorf("TaskDesc = %q, want the device's desc", desc)
	}
}

// TestAlinkMosquitto: the same upgrade with Mosquitto as the broker: the
// server consumes the Alink up topics through shared subscriptions and
// publishes the notice as a client; the device's inform tells the server it
// is there.
func TestAlinkMosquitto(t *testing.T) {
	addr := testenv.MosquittoAddr(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	// Registered before the server's cleanup, so it runs after the server
	// has stopped: its persistent consumer sessions are wiped (clean
	// session), not left queueing in a shared Mosquitto.
	t.Cleanup(func() {
		for i := range 2 {
			c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("updraft-alink-%s-c%d", suffix, i)).SetCleanSession(true))
			if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				c.Disconnect(0)
			}
		}
	})
	e := newEnvWith(t, func(c *config.Config) {
		c.MQTTAddr = config.Off
		c.MQTTBroker = "mqtt://" + addr + "?client_id=updraft-alink-" + suffix + "&group=alink" + suffix + "&consumers=2"
	})
	pk := "pkMosq" + suffix
	secrets := e.alibabaProduct(pk, "m1")
	ctx := context.Background()
	d := &mqtt.AlinkDevice{ProductKey: pk, DeviceName: "m1", Secret: secrets["m1"], Broker: addr, Version: "1.0"}
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	testenv.Within(t, time.Minute, "the informed version and presence", func() {
		for {
			if dev, err := e.svc.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: pk, Name: "m1"}); err == nil && dev.Version("") == "1.0" && dev.Online {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	c := e.tea("", e.ak, e.sk)
	fw := firmwareWith(t, c, pk, "fw-mosq", "2.0", []byte("through mosquitto"), nil)
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": pk,
		"TargetSelection": "SPECIFIC", "TargetDeviceName.1": "m1"}), "Data", "JobId"))
	e.waitTasks(c, jobID, "SUCCEEDED", 1)
	if v := d.Running(); v != "2.0" {
		t.Fatalf("device runs %s, want 2.0", v)
	}
}
