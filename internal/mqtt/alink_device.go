package mqtt

import (
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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/sdk/mqttstore"
)

// AlinkDevice is a simulated device speaking Alibaba's Alink OTA protocol as
// the Link SDKs' OTA samples do (cloud-ota-spec.md §2.5): the signed CONNECT,
// SUBSCRIBE to its upgrade topic, the version on /ota/device/inform at boot,
// and on a notice: download, check against sign/signMethod, progress steps
// on /ota/device/progress, then the new version on /ota/device/inform (the
// platform decides success from that alone). Tests and
// `updraft sim --dialect alibaba` use it.
type AlinkDevice struct {
	ProductKey, DeviceName, Secret string
	// Broker is the MQTT address ("host:port" or "tcp://host:port").
	Broker string
	// Version is what the device runs (the default module).
	Version string
	// SignMethod is the CONNECT signmethod (default hmacsha1, as the SDKs).
	SignMethod string
	// FailStep, when negative (-1..-4), is the step the device answers
	// every notice with instead of upgrading.
	FailStep int
	// HTTP downloads packages (default http.DefaultClient).
	HTTP *http.Client
	// OnNotice, if set, sees every upgrade notice the device receives.
	OnNotice func(AlinkUpgrade)

	mu       sync.Mutex
	c        paho.Client
	upgrades sync.WaitGroup
	closed   bool
	ids      atomic.Uint32
	replies  chan AlinkGetReply
}

// Running returns the version the device runs now.
func (d *AlinkDevice) Running() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Version
}

// Connect connects, subscribes to the upgrade topic and the firmware/get
// reply, and informs the platform of its version.
func (d *AlinkDevice) Connect(ctx context.Context) error {
	broker := d.Broker
	if !strings.Contains(broker, "://") {
		broker = "tcp://" + broker
	}
	method := d.SignMethod
	if method == "" {
		method = "hmacsha1"
	}
	clientID := d.ProductKey + "." + d.DeviceName // what the consoles generate
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	pass, err := AlinkSign(method, d.Secret, AlinkSignContent(clientID, d.DeviceName, d.ProductKey, ts))
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.replies = make(chan AlinkGetReply, 4)
	d.mu.Unlock()
	o := paho.NewClientOptions().AddBroker(broker).
		SetClientID(AlinkClientID(clientID, 3, method, ts)).
		SetUsername(d.DeviceName + "&" + d.ProductKey).
		SetPassword(pass).
		SetKeepAlive(60 * time.Second).
		SetCleanSession(true).SetStore(mqttstore.New()). // copies: paho#703
		SetAutoReconnect(false).
		SetConnectTimeout(10 * time.Second).
		SetOrderMatters(false)
	c := paho.NewClient(o)
	if err := waitToken(ctx, c.Connect()); err != nil {
		return fmt.Errorf("alibaba device %s/%s: connect: %w", d.ProductKey, d.DeviceName, err)
	}
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
	subs := map[string]byte{
		AlinkUpgradeTopic(d.ProductKey, d.DeviceName):  1,
		AlinkGetReplyTopic(d.ProductKey, d.DeviceName): 1,
	}
	if err := waitToken(ctx, c.SubscribeMultiple(subs, d.onMessage)); err != nil {
		c.Disconnect(100)
		return fmt.Errorf("alibaba device %s/%s: subscribe: %w", d.ProductKey, d.DeviceName, err)
	}
	return d.Inform(ctx)
}

// Close waits for running upgrades and disconnects.
func (d *AlinkDevice) Close() {
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

func (d *AlinkDevice) publish(ctx context.Context, topic string, msg map[string]any) error {
	_, err := d.publishID(ctx, topic, msg)
	return err
}

// publishID publishes msg with the next message id and returns the id.
func (d *AlinkDevice) publishID(ctx context.Context, topic string, msg map[string]any) (string, error) {
	id := strconv.FormatUint(uint64(d.ids.Add(1)), 10)
	msg["id"] = id
	b, err := json.Marshal(msg)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	c := d.c
	d.mu.Unlock()
	if c == nil {
		return "", errors.New("not connected")
	}
	return id, waitToken(ctx, c.Publish(topic, 1, false, b))
}

// Inform reports the running version (default module: no "module").
func (d *AlinkDevice) Inform(ctx context.Context) error {
	return d.publish(ctx, AlinkInformTopic(d.ProductKey, d.DeviceName), map[string]any{"params": map[string]string{"version": d.Running()}})
}

// Progress reports a step ("1".."100", or "-1".."-4") as a string, as the
// spec writes it.
func (d *AlinkDevice) Progress(ctx context.Context, step int, desc, module string) error {
	p := map[string]string{"step": strconv.Itoa(step), "desc": desc}
	if module != "" {
		p["module"] = module
	}
	return d.publish(ctx, AlinkProgressTopic(d.ProductKey, d.DeviceName), map[string]any{"params": p})
}

// Get asks for the pending upgrade of the default module
// (thing.ota.firmware.get) and returns the reply.
func (d *AlinkDevice) Get(ctx context.Context) (AlinkGetReply, error) {
	d.mu.Lock()
	replies := d.replies
	d.mu.Unlock()
	id, err := d.publishID(ctx, AlinkGetTopic(d.ProductKey, d.DeviceName),
		map[string]any{"version": "1.0", "method": AlinkGetMethod, "params": map[string]string{}})
	if err != nil {
		return AlinkGetReply{}, err
	}
	want, _ := json.Marshal(id)
	for {
		select {
		case r := <-replies:
			if string(r.ID) == string(want) {
				return r, nil
			}
		case <-ctx.Done():
			return AlinkGetReply{}, ctx.Err()
		}
	}
}

func (d *AlinkDevice) onMessage(_ paho.Client, m paho.Message) {
	if strings.HasSuffix(m.Topic(), "/get_reply") {
		var r AlinkGetReply
		if json.Unmarshal(m.Payload(), &r) == nil {
			select {
			case d.replies <- r:
			default:
			}
		}
		return
	}
	var n AlinkUpgrade
	if json.Unmarshal(m.Payload(), &n) != nil || n.Code != "1000" {
		return
	}
	if d.OnNotice != nil {
		d.OnNotice(n)
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
		d.upgrade(n.Data)
	}()
}

// upgrade downloads, checks and "installs" a package, reporting as it goes.
func (d *AlinkDevice) upgrade(n AlinkUpgradeData) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d.FailStep < 0 {
		_ = d.Progress(ctx, d.FailStep, "simulated failure", n.Module)
		return
	}
	_ = d.Progress(ctx, 1, "downloading", n.Module)
	if err := d.download(ctx, n); err != nil {
		step := -2
		if errors.Is(err, errAlinkVerify) {
			step = -3
		}
		_ = d.Progress(ctx, step, err.Error(), n.Module)
		return
	}
	_ = d.Progress(ctx, 100, "installed", n.Module)
	d.mu.Lock()
	d.Version = n.Version
	d.mu.Unlock()
	_ = d.Inform(ctx)
}

var errAlinkVerify = errors.New("verification failed")

func (d *AlinkDevice) download(ctx context.Context, n AlinkUpgradeData) error {
	var h hash.Hash
	switch n.SignMethod {
	case "Md5", "MD5":
		h = md5.New()
	case "SHA256":
		h = sha256.New()
	default:
		return fmt.Errorf("%w: signMethod %q", errAlinkVerify, n.SignMethod)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL, nil)
	if err != nil {
		return err
	}
	hc := d.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download answered %s", resp.Status)
	}
	size, err := io.Copy(h, resp.Body)
	if err != nil {
		return err
	}
	if size != n.Size {
		return fmt.Errorf("%w: downloaded %d bytes, the notice says %d", errAlinkVerify, size, n.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, n.Sign) {
		return fmt.Errorf("%w: %s %s does not match sign %s", errAlinkVerify, n.SignMethod, sum, n.Sign)
	}
	return nil
}
