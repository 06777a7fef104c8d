package huaweiiotda_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/api/huaweiiotda"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// An IoTDA X.509 certificate device of a product with auth x509 connects
// over MQTT/TLS the way IoTDA's certificate devices do (client id
// {device_id}_0_0_{YYYYMMDDHH}, username device_id, no password) with a
// certificate from the `--tls auto` CA whose CN is its device_id, and is then
// served like any Huawei device (asked version_query on its down topic). A
// certificate naming another device, or the device secret, is refused.
func TestX509HuaweiDevice(t *testing.T) {
	e := newEnvWith(t, func(c *config.Config) {
		c.TLS = config.TLSAuto
		c.MQTTAddr = "127.0.0.1:0"
		c.MQTTSAddr = "127.0.0.1:0"
	})
	ctx := context.Background()
	if _, err := e.svc.CreateProduct(ctx, e.p, ota.Product{Key: "cert", Name: "Cert", Protocol: ota.ProtocolHuawei, Auth: ota.AuthX509}); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.CreateDevice(ctx, e.p, ota.Device{ProductKey: "cert", Name: "dev1"})
	if err != nil {
		t.Fatal(err)
	}
	e.devices("cert", nil, "dev2")
	pem, _ := os.ReadFile(e.srv.CAFile())
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	issue := func(cn string) tls.Certificate {
		c, k, err := config.IssueClientCert(e.srv.Config().DataDir, cn, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	id := huaweiiotda.DeviceID("cert", "dev1")
	now := time.Now().UTC()
	clientID := id + "_0_0_" + now.Format("2006010215")
	got := make(chan string, 4)
	dial := func(cert *tls.Certificate, password string, tlsOn bool) (paho.Client, error) {
		o := paho.NewClientOptions().SetClientID(clientID).SetUsername(id).SetPassword(password).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
			SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) })
		if tlsOn {
			tc := &tls.Config{RootCAs: roots, ServerName: "localhost"}
			if cert != nil {
				tc.Certificates = []tls.Certificate{*cert}
			}
			o.AddBroker("ssl://" + e.srv.MQTTSAddr()).SetTLSConfig(tc)
		} else {
			o.AddBroker("tcp://" + e.srv.MQTTAddr())
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		testenv.Within(t, time.Minute, "the MQTT CONNECT", func() { tok.Wait() })
		return c, tok.Error()
	}

	other := issue(huaweiiotda.DeviceID("cert", "dev2"))
	password := huaweiiotda.Password(d.Secret, now.Format("2006010215"))
	for name, try := range map[string]func() (paho.Client, error){
		"another device's certificate": func() (paho.Client, error) { return dial(&other, "", true) },
		"the secret over TLS":          func() (paho.Client, error) { return dial(nil, password, true) },
		"the secret on plain MQTT":     func() (paho.Client, error) { return dial(nil, password, false) },
	} {
		if c, err := try(); err == nil {
			c.Disconnect(0)
			t.Errorf("%s: accepted", name)
		}
	}

	own := issue(id)
	c, err := dial(&own, "", true)
	if err != nil {
		t.Fatalf("certificate device: %v", err)
	}
	defer c.Disconnect(0)
	select {
	case m := <-got:
		if !strings.HasPrefix(m, huaweiiotda.DownTopic(id)+" ") || !strings.Contains(m, huaweiiotda.EventVersionQuery) {
			t.Errorf("first message %q; want version_query on the down topic", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no version_query after the certificate device connected")
	}
	dev, err := e.svc.GetDevice(ctx, e.p, "cert", "dev1")
	if err != nil || !dev.Online {
		t.Errorf("device online %v, %v", dev.Online, err)
	}
}
