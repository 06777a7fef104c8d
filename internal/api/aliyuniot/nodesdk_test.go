package aliyuniot_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// nodeEvent is one line the SDK script prints.
type nodeEvent struct {
	Event   string             `json:"event"`
	Error   string             `json:"error"`
	Version string             `json:"version"`
	Bytes   int                `json:"bytes"`
	Notice  *mqtt.AlinkUpgrade `json:"notice"`
}

// TestAlinkNodeSDK: a device on Alibaba's own device SDK
// (alibabacloud-iot-device-sdk 1.2.8, pinned in testdata/alibaba-sdk)
// connects with the SDK's signing code, informs its version, gets the
// upgrade notice of a static job created through the Alibaba API, downloads
// and verifies the package, reports progress and its new version; the task
// ends SUCCEEDED.
func TestAlinkNodeSDK(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "alibaba-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	node := testenv.NodePackage(t, dir, "alibabacloud-iot-device-sdk")
	e := newMQTTEnv(t)
	secret := e.alibabaProduct("pkNode", "node1")["node1"]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "device.js")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "BROKER_URL=mqtt://"+e.srv.MQTTAddr(), "PRODUCT_KEY=pkNode", "DEVICE_NAME=node1",
		"DEVICE_SECRET="+secret, "VERSION=1.0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan nodeEvent, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			var ev nodeEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				ev = nodeEvent{Event: "output", Error: sc.Text()}
			}
			events <- ev
		}
	}()
	next := func(want string) nodeEvent {
		t.Helper()
		for {
			ev := testenv.Recv(t, events, time.Minute, "the SDK device's "+want+" (stderr: "+stderr.String()+")")
			switch ev.Event {
			case want:
				return ev
			case "error", "output":
				t.Fatalf("SDK device: %s %s (stderr: %s)", ev.Event, ev.Error, stderr.String())
			}
		}
	}
	next("connected")
	next("informed")
	testenv.Within(t, time.Minute, "the informed version 1.0 in the registry", func() {
		for {
			if dev, err := e.svc.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: "pkNode", Name: "node1"}); err == nil && dev.Version(ota.DefaultModule) == "1.0" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	c := e.tea("", e.ak, e.sk)
	file := []byte(strings.Repeat("node sdk firmware ", 4096))
	fw := firmwareWith(t, c, "pkNode", "fw-node", "2.0", file, nil)
	jobID := str(dig(c.mustCall("CreateOTAStaticUpgradeJob", map[string]string{"FirmwareId": fw, "ProductKey": "pkNode",
		"TargetSelection": "SPECIFIC", "TargetDeviceName.1": "node1"}), "Data", "JobId"))

	n := next("notice").Notice
	if n == nil || n.Data.Version != "2.0" || n.Data.SignMethod != "Md5" || n.Data.Size != int64(len(file)) {
		t.Fatalf("notice = %+v", n)
	}
	if up := next("upgraded"); up.Version != "2.0" || up.Bytes != len(file) {
		t.Fatalf("upgraded = %+v", up)
	}
	testenv.Within(t, time.Minute, "the SDK device's exit", func() {
		for range events { // all output read before Wait closes the pipe
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("SDK device: %v (stderr: %s)", err, stderr.String())
		}
	})
	e.waitTasks(c, jobID, "SUCCEEDED", 1)
	dev, err := e.svc.DeviceForAuth(ctx, ota.DeviceRef{ProductKey: "pkNode", Name: "node1"})
	if err != nil || dev.Version(ota.DefaultModule) != "2.0" {
		t.Fatalf("registry version %q (%v), want 2.0", dev.Version(ota.DefaultModule), err)
	}
}
