package huaweiiotda_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/iotda/v5/model"

	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// connect tries a raw IoTDA CONNECT.
func connect(t *testing.T, broker, clientID, username, password string) (paho.Client, error) {
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

// TestDeviceConnect: IoTDA's CONNECT scheme, its sign types and timestamp
// check, and the topic confinement of a connected device.
func TestDeviceConnect(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	e.product("prod1")
	d, err := e.svc.CreateDevice(context.Background(), e.p, ota.Device{ProductKey: "prod1", Name: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	id := huaweiiotda.DeviceID("prod1", "dev1")
	broker := e.srv.MQTTAddr()
	now := time.Now().UTC()
	stale := now.Add(-5 * time.Hour)
	stamp := func(t time.Time) string { return t.Format("2006010215") }
	cases := []struct {
		name, clientID, username, password string
		ok                                 bool
	}{
		{"sign type 1, this hour", id + "_0_1_" + stamp(now), id, huaweiiotda.Password(d.Secret, stamp(now)), true},
		{"sign type 0, this hour", id + "_0_0_" + stamp(now), id, huaweiiotda.Password(d.Secret, stamp(now)), true},
		{"sign type 0 does not check the time", id + "_0_0_" + stamp(stale), id, huaweiiotda.Password(d.Secret, stamp(stale)), true},
		{"sign type 1 checks the time", id + "_0_1_" + stamp(stale), id, huaweiiotda.Password(d.Secret, stamp(stale)), false},
		{"sign type 2 (SM3)", id + "_0_2_" + stamp(now), id, huaweiiotda.Password(d.Secret, stamp(now)), false},
		{"password keyed with another hour", id + "_0_1_" + stamp(now), id, huaweiiotda.Password(d.Secret, stamp(stale)), false},
		{"wrong secret", id + "_0_1_" + stamp(now), id, huaweiiotda.Password("x"+d.Secret, stamp(now)), false},
		{"username is not the device id", id + "_0_1_" + stamp(now), "prod1_dev2", huaweiiotda.Password(d.Secret, stamp(now)), false},
		{"unknown device", "prod1_dev9_0_1_" + stamp(now), "prod1_dev9", huaweiiotda.Password(d.Secret, stamp(now)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := connect(t, broker, tc.clientID, tc.username, tc.password)
			if (err == nil) != tc.ok {
				t.Fatalf("connect: err = %v, want ok = %v", err, tc.ok)
			}
			if err == nil {
				c.Disconnect(100)
			}
		})
	}

	c, err := connect(t, broker, huaweiiotda.ClientID(id, true, now), id, huaweiiotda.Password(d.Secret, stamp(now)))
	if err != nil {
		t.Fatal(err)
	}
	for filter, ok := range map[string]bool{
		huaweiiotda.DownTopic(id):           true,
		"$oc/devices/" + id + "/sys/#":      true,
		huaweiiotda.DownTopic("prod1_dev2"): false,
		"$oc/devices/+/sys/events/down":     false,
		"$oc/#":                             false,
	} {
		tok := c.Subscribe(filter, 1, nil)
		testenv.Within(t, time.Minute, "the SUBACK for "+filter, func() { tok.Wait() })
		code := tok.(*paho.SubscribeToken).Result()[filter]
		if granted := code < 0x80 && tok.Error() == nil; granted != ok {
			t.Errorf("subscribe %s: code %#x, want granted = %v", filter, code, ok)
		}
	}
}

// TestResultCodes: upgrade_progress_report failures map to task reasons.
func TestResultCodes(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })
	ctx := context.Background()
	e.product("prod1")
	want := map[int]string{1: "rejected", 3: "already_on_version", 7: "verify_failed", 10: "install_failed", 255: "upgrade_failed", 42: "upgrade_failed"}
	var targets []string
	byID := map[string]int{}
	for code := range want {
		d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "prod1", Name: fmt.Sprintf("c%d", code)})
		if err != nil {
			t.Fatal(err)
		}
		s := &huaweiiotda.SimDevice{DeviceID: huaweiiotda.DeviceID("prod1", d.Name), Secret: d.Secret, Broker: e.srv.MQTTAddr(), FwVersion: "V1.0", FailCode: code}
		if err := s.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		targets = append(targets, s.DeviceID)
		byID[s.DeviceID] = code
	}
	sum := e.putObject("fw-bucket", "codes/app.bin", firmware)
	c := e.client(modeSDK)
	pkg, err := c.CreateOtaPackage(createPkgReq("prod1", "V2.0", "fw-bucket", "codes/app.bin", ptr(sum)))
	if err != nil {
		t.Fatal(err)
	}
	var doc any = map[string]any{"package_ids": []string{*pkg.PackageId}}
	task, err := c.CreateBatchTask(&model.CreateBatchTaskRequest{Body: &model.CreateBatchTask{TaskName: "codes", TaskType: "firmwareUpgrade", Targets: &targets, Document: &doc}})
	if err != nil {
		t.Fatal(err)
	}
	var shown *model.ShowBatchTaskResponse
	waitFor(t, func() bool {
		e.advance()
		shown, err = c.ShowBatchTask(&model.ShowBatchTaskRequest{TaskId: *task.TaskId, TaskDetailStatus: ptr("Fail")})
		if err != nil {
			t.Fatal(err)
		}
		return len(*shown.TaskDetails) == len(want)
	})
	for _, d := range *shown.TaskDetails {
		code := byID[*d.Target]
		if d.Error == nil || d.Error.ErrorCode == nil || *d.Error.ErrorCode != want[code] {
			t.Errorf("result_code %d: error %+v, want %s", code, d.Error, want[code])
		}
	}
}
