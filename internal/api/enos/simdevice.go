package enos

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/sdk/mqttstore"
)

// SimDevice is a simulated device speaking EnOS's device protocol the way
// the EnOS device SDKs do (spec §3.5): the securemode=2 CONNECT signed with
// sha256, ota.device.inform on connect, ota.device.upgrade delivered without
// a SUBSCRIBE (the platform subscribes it) and answered on upgrade_reply,
// then HTTP login, download of the enos-connect:// file, a check of its
// sign, ota.device.progress and ota.device.inform with the new version.
// Reports are sent as the SDK's fastPublish (QoS 1, no reply awaited).
// `updraft sim --dialect enos` uses it.
type SimDevice struct {
	ProductKey, DeviceKey, Secret string
	// Broker is the MQTT address ("host:port" or "tcp://host:port");
	// Server the HTTP broker's base URL (Updraft's server URL).
	Broker, Server string
	// Version is what the device runs.
	Version string
	// FailStep, when negative, is the progress step the device answers
	// every notice with instead of upgrading (-2 download, -4 install: the
	// latter after a verified download).
	FailStep int
	// HTTP logs in and downloads (default http.DefaultClient).
	HTTP *http.Client
	// OnNotice, if set, sees every ota.device.upgrade the device receives.
	OnNotice func(Firmware)

	mu       sync.Mutex
	c        paho.Client
	nextID   int
	upgrades sync.WaitGroup
	closed   bool
}

// CurrentVersion is what the device runs now.
func (d *SimDevice) CurrentVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Version
}

// Connect connects and informs the version, as the SDK samples do on every
// connect.
func (d *SimDevice) Connect(ctx context.Context) error {
	broker := d.Broker
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pw, err := Password("sha256", d.DeviceKey, d.DeviceKey, d.ProductKey, ts, d.Secret)
	if err != nil {
		return err
	}
	o := paho.NewClientOptions().AddBroker(broker).
		SetClientID(d.DeviceKey + "|securemode=2,signmethod=sha256,timestamp=" + ts + "|").
		SetUsername(d.DeviceKey + "&" + d.ProductKey).
		SetPassword(pw).
		SetCleanSession(true).SetStore(mqttstore.New()). // copies: paho#703
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(false).
		SetDefaultPublishHandler(d.onMessage)
	c := paho.NewClient(o)
	if err := wait(ctx, c.Connect()); err != nil {
		return fmt.Errorf("enos device %s: connect: %w", d.DeviceKey, err)
	}
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
	return d.inform(ctx, d.CurrentVersion())
}

// Close waits for a running upgrade and disconnects.
func (d *SimDevice) Close() {
	d.mu.Lock()
	d.closed = true
	c := d.c
	d.mu.Unlock()
	d.upgrades.Wait()
	if c != nil {
		c.Disconnect(100)
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

func (d *SimDevice) publish(ctx context.Context, op, method string, params any) error {
	d.mu.Lock()
	d.nextID++
	id := strconv.Itoa(d.nextID)
	c := d.c
	d.mu.Unlock()
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	b, err := json.Marshal(Request{ID: id, Version: "1.0", Method: method, Params: p})
	if err != nil {
		return err
	}
	return wait(ctx, c.Publish(Topic(d.ProductKey, d.DeviceKey, op), 1, false, b))
}

func (d *SimDevice) inform(ctx context.Context, version string) error {
	return d.publish(ctx, OpInform, "ota.device.inform", map[string]string{"version": version})
}

func (d *SimDevice) progress(ctx context.Context, step int, desc string) error {
	return d.publish(ctx, OpProgress, "ota.device.progress", map[string]string{"step": strconv.Itoa(step), "desc": desc})
}

func (d *SimDevice) onMessage(c paho.Client, m paho.Message) {
	if m.Topic() != Topic(d.ProductKey, d.DeviceKey, OpUpgrade) {
		return
	}
	var req struct {
		ID     string   `json:"id"`
		Method string   `json:"method"`
		Params Firmware `json:"params"`
	}
	if err := json.Unmarshal(m.Payload(), &req); err != nil || req.Method != MethodUpgrade {
		return
	}
	reply, _ := json.Marshal(Reply{ID: req.ID, Code: ReplyOK, Data: ""})
	c.Publish(Topic(d.ProductKey, d.DeviceKey, OpUpgrade+"_reply"), 1, false, reply)
	if d.OnNotice != nil {
		d.OnNotice(req.Params)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.upgrades.Add(1)
	d.mu.Unlock()
	// Not in paho's callback: the reports below wait for their PUBACKs.
	go func() {
		defer d.upgrades.Done()
		d.upgrade(req.Params)
	}()
}

func (d *SimDevice) upgrade(fw Firmware) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if fw.Version == d.CurrentVersion() {
		_ = d.inform(ctx, fw.Version)
		return
	}
	if d.FailStep == -2 {
		_ = d.progress(ctx, -2, "simulated download failure")
		return
	}
	_ = d.progress(ctx, 10, "downloading")
	if err := d.download(ctx, fw); err != nil {
		_ = d.progress(ctx, -2, err.Error())
		return
	}
	if d.FailStep < 0 {
		_ = d.progress(ctx, d.FailStep, "simulated install failure")
		return
	}
	_ = d.progress(ctx, 100, "installed")
	d.mu.Lock()
	d.Version = fw.Version
	d.mu.Unlock()
	_ = d.inform(ctx, fw.Version)
}

func (d *SimDevice) httpClient() *http.Client {
	if d.HTTP != nil {
		return d.HTTP
	}
	return http.DefaultClient
}

// download logs in over HTTP and fetches and checks the file.
func (d *SimDevice) download(ctx context.Context, fw Firmware) error {
	base := strings.TrimSuffix(d.Server, "/")
	const lifetime = 300_000
	body, _ := json.Marshal(map[string]any{"secureMode": "sha256", "lifetime": lifetime, "sign": LoginSign(d.ProductKey, d.DeviceKey, lifetime, d.Secret)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+DeviceAuthPath+d.ProductKey+"/"+d.DeviceKey, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	var login struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			SessionID string `json:"sessionId"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || login.Code != 0 || login.Data.SessionID == "" {
		return fmt.Errorf("login: HTTP %d, code %d %s", resp.StatusCode, login.Code, login.Message)
	}
	q := url.Values{"sessionId": {login.Data.SessionID}, "fileUri": {fw.FileURL}, "category": {"ota"}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+DeviceDownloadPath+d.ProductKey+"/"+d.DeviceKey+"/file/download?"+q.Encode(), nil)
	resp, err = d.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: HTTP %d", resp.StatusCode)
	}
	var h hash.Hash = sha256.New()
	if strings.EqualFold(fw.SignMethod, "md5") {
		h = md5.New()
	}
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if n != fw.FileSize || !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), fw.Sign) {
		return errors.New("download: size or sign does not match the notice")
	}
	return nil
}
