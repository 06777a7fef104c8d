package huaweiiotda

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/sdk/mqttstore"
)

// SimDevice is a simulated device speaking Huawei IoTDA's MQTT protocol the
// way the official device SDKs do: the IoTDA CONNECT scheme, version_query →
// version_report, and firmware_upgrade / software_upgrade → download, SHA-256
// check against sign, upgrade_progress_report. Tests and
// `updraft sim --dialect huawei` use it.
type SimDevice struct {
	DeviceID string
	Secret   string
	// Broker is the MQTT address ("host:port" or "tcp://host:port").
	Broker string
	// FwVersion and SwVersion are what the device runs.
	FwVersion, SwVersion string
	// FailCode, when not 0, is the result_code the device answers every
	// upgrade notice with instead of upgrading (1–10, 255).
	FailCode int
	// HTTP downloads packages (default http.DefaultClient).
	HTTP *http.Client
	// OnEvent, if set, sees every $ota event the device receives.
	OnEvent func(Event)
	// LikeSDK makes the device behave as the official IoTDA device SDKs
	// do: it never SUBSCRIBEs to its down topic (the platform subscribes
	// it on connect) and reports its versions only when asked with
	// version_query. Otherwise it subscribes and reports on connect, which
	// a device needs on an external broker that subscribes no one.
	LikeSDK bool
	// SDKInfo makes a LikeSDK device report its versions once on connect
	// with the SDKs' $sdk_info sdk_info_report (reportDeviceInfo) and
	// ignore version_query.
	SDKInfo bool

	mu       sync.Mutex
	c        paho.Client
	upgrades sync.WaitGroup
	closed   bool
}

func (d *SimDevice) versions() (fw, sw string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.FwVersion, d.SwVersion
}

// Versions returns what the device runs now.
func (d *SimDevice) Versions() (fw, sw string) { return d.versions() }

// Connect connects, subscribes to the down topic and reports the versions
// (with LikeSDK: connects only).
func (d *SimDevice) Connect(ctx context.Context) error {
	broker := d.Broker
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	now := time.Now()
	stamp := now.UTC().Format(clientTimeFormat)
	o := paho.NewClientOptions().AddBroker(broker).
		SetClientID(ClientID(d.DeviceID, true, now)).
		SetUsername(d.DeviceID).
		SetPassword(Password(d.Secret, stamp)).
		SetCleanSession(true).SetStore(mqttstore.New()). // copies: paho#703
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(false).
		// Messages on topics it never subscribed to (the SDKs' case).
		SetDefaultPublishHandler(d.onMessage)
	c := paho.NewClient(o)
	d.mu.Lock()
	d.c = c // before CONNECT: a version_query may arrive with the CONNACK
	d.mu.Unlock()
	if err := wait(ctx, c.Connect()); err != nil {
		return fmt.Errorf("huawei device %s: connect: %w", d.DeviceID, err)
	}
	if d.LikeSDK {
		if d.SDKInfo {
			fw, sw := d.versions()
			return d.publishService(ctx, SDKInfoServiceID, EventSDKInfoReport, map[string]string{
				"device_sdk_version": "Go_v1.0.0", "fw_version": fw, "sw_version": sw})
		}
		return nil
	}
	if err := wait(ctx, c.Subscribe(DownTopic(d.DeviceID), 1, d.onMessage)); err != nil {
		c.Disconnect(100)
		return fmt.Errorf("huawei device %s: subscribe: %w", d.DeviceID, err)
	}
	return d.ReportVersion(ctx)
}

// Close waits for running upgrades and disconnects. closed is set before the
// wait so that no notice arriving meanwhile calls upgrades.Add concurrently
// with Wait (a WaitGroup misuse).
func (d *SimDevice) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.upgrades.Wait()
	d.mu.Lock()
	c := d.c
	d.mu.Unlock()
	if c != nil {
		c.Disconnect(250)
	}
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *SimDevice) publish(ctx context.Context, eventType string, paras any) error {
	return d.publishService(ctx, OTAServiceID, eventType, paras)
}

func (d *SimDevice) publishService(ctx context.Context, serviceID, eventType string, paras any) error {
	raw, err := json.Marshal(paras)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(EventMessage{ObjectDeviceID: d.DeviceID, Services: []Event{{
		ServiceID: serviceID, EventType: eventType, EventTime: time.Now().UTC().Format(sdkDateFormat), Paras: raw,
	}}})
	if err != nil {
		return err
	}
	d.mu.Lock()
	c := d.c
	d.mu.Unlock()
	if c == nil {
		return errors.New("not connected")
	}
	return wait(ctx, c.Publish(UpTopic(d.DeviceID), 1, false, msg))
}

// ReportVersion publishes version_report with both versions.
func (d *SimDevice) ReportVersion(ctx context.Context) error {
	fw, sw := d.versions()
	return d.publish(ctx, EventVersionReport, VersionReport{FwVersion: fw, SwVersion: sw})
}

func (d *SimDevice) onMessage(_ paho.Client, m paho.Message) {
	var msg EventMessage
	if json.Unmarshal(m.Payload(), &msg) != nil {
		return
	}
	for _, ev := range msg.Services {
		if ev.ServiceID != OTAServiceID {
			continue
		}
		if d.OnEvent != nil {
			d.OnEvent(ev)
		}
		switch ev.EventType {
		case EventVersionQuery:
			if d.SDKInfo {
				continue
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_ = d.ReportVersion(ctx)
			}()
		case EventFirmware, EventSoftware:
			var n UpgradeNotice
			if json.Unmarshal(ev.Paras, &n) != nil {
				continue
			}
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				return
			}
			d.upgrades.Add(1)
			d.mu.Unlock()
			go func() {
				defer d.upgrades.Done()
				d.upgrade(ev.EventType == EventSoftware, n)
			}()
		}
	}
}

// upgrade downloads, checks and "installs" a package, reporting as it goes.
func (d *SimDevice) upgrade(software bool, n UpgradeNotice) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fw, sw := d.versions()
	current := fw
	if software {
		current = sw
	}
	report := func(code, progress int, version, desc string) {
		_ = d.publish(ctx, EventProgressReport, ProgressReport{ResultCode: code, Progress: progress, Version: version, Description: desc, Module: n.Module})
	}
	if d.FailCode != 0 {
		report(d.FailCode, 0, current, "simulated failure")
		return
	}
	report(0, 10, current, "downloading")
	sum, err := d.download(ctx, n)
	if err != nil {
		report(6, 0, current, err.Error())
		return
	}
	if !strings.EqualFold(sum, n.Sign) {
		report(7, 0, current, "SHA-256 "+sum+" does not match sign "+n.Sign)
		return
	}
	report(0, 80, current, "installing")
	d.mu.Lock()
	if software {
		d.SwVersion = n.Version
	} else {
		d.FwVersion = n.Version
	}
	d.mu.Unlock()
	report(0, 100, n.Version, "upgraded")
}

func (d *SimDevice) download(ctx context.Context, n UpgradeNotice) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL, nil)
	if err != nil {
		return "", err
	}
	if n.AccessToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.AccessToken)
	}
	hc := d.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download answered %s", resp.Status)
	}
	h := sha256.New()
	size, err := io.Copy(h, resp.Body)
	if err != nil {
		return "", err
	}
	if n.FileSize > 0 && size != n.FileSize {
		return "", fmt.Errorf("downloaded %d bytes, the notice says %d", size, n.FileSize)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
