package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// pki is a CA made the way `serve --tls auto` makes it.
type pki struct {
	dir   string
	roots *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	if _, err := config.EnsureAutoTLS(dir, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(dir, config.CAFile))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return pki{dir: dir, roots: roots}
}

// clientCert issues a device certificate with common name cn.
func (p pki) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := config.IssueClientCert(p.dir, cn, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startTLSBroker runs a broker with a plain and a TLS listener whose device
// certificates must chain to ca.
func startTLSBroker(t *testing.T, f *deviceprototest.Fake, ca pki) *Broker {
	t.Helper()
	cfg := config.Config{DataDir: ca.dir, TLS: config.TLSAuto}
	st, err := cfg.LoadServerTLS(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroker(f, BrokerOptions{Addr: "127.0.0.1:0", TLSListener: tls.NewListener(ln, st.MQTT), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// dialTLS connects over TLS trusting ca, with cert when given.
func dialTLS(addr string, ca pki, cert *tls.Certificate, clientID, user, pass string) error {
	tc := &tls.Config{RootCAs: ca.roots, ServerName: "localhost"}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	o := connectOpts(addr, clientID, user, pass)
	o.Servers = nil
	o.AddBroker("ssl://" + addr).SetTLSConfig(tc)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return errTimeout
	}
	if tok.Error() == nil {
		c.Disconnect(0)
	}
	return tok.Error()
}

var errTimeout = &net.OpError{Op: "connect", Err: os.ErrDeadlineExceeded}

// Devices of a product with auth x509 connect with a client certificate from
// the trusted CA whose CN is their client id ({product}.{device}), without a
// password; a certificate from another CA, a certificate of another device
// and the device's secret are all refused. Devices of a product with auth
// secret are not let in by a certificate alone.
func TestX509DeviceAuth(t *testing.T) {
	ca, other := newPKI(t), newPKI(t)
	f := deviceprototest.New()
	f.AddDevice("cp", "d1", "s3cr3t")
	f.AddDevice("cp", "d2", "s3cr3t")
	f.SetAuth("cp", ota.AuthX509)
	f.AddDevice("sp", "d1", "s3cr3t")
	b := startTLSBroker(t, f, ca)
	tlsAddr := b.lns[1].Address()

	good := ca.clientCert(t, "cp.d1")
	foreign := other.clientCert(t, "cp.d1")
	mismatched := ca.clientCert(t, "cp.d2")
	secretProductCert := ca.clientCert(t, "sp.d1")
	now := time.Now()
	sign := func(p, d string) (string, string) {
		return wire.Username(p, d, now), wire.Sign("s3cr3t", p, d, now.UnixMilli())
	}

	if err := dialTLS(tlsAddr, ca, &good, "cp.d1", "cp&d1", ""); err != nil {
		t.Fatalf("x509 device with its certificate: %v", err)
	}
	// The usual native username (with a timestamp) is fine too.
	if err := dialTLS(tlsAddr, ca, &good, "cp.d1", wire.Username("cp", "d1", now), ""); err != nil {
		t.Fatalf("x509 device with a timestamped username: %v", err)
	}
	eventually(t, "cp/d1 seen online", func() bool { _, n := f.Online(ota.DeviceRef{ProductKey: "cp", Name: "d1"}); return n >= 2 })

	user, pass := sign("cp", "d1")
	for name, err := range map[string]error{
		"certificate of another CA":                dialTLS(tlsAddr, ca, &foreign, "cp.d1", "cp&d1", ""),
		"certificate of another device":            dialTLS(tlsAddr, ca, &mismatched, "cp.d1", "cp&d1", ""),
		"another device's certificate + secret":    dialTLS(tlsAddr, ca, &mismatched, "cp.d1", user, pass),
		"secret over TLS without certificate":      dialTLS(tlsAddr, ca, nil, "cp.d1", user, pass),
		"secret on the plain listener":             dialPlain(b.Addr().String(), "cp.d1", user, pass),
		"no secret, no certificate":                dialTLS(tlsAddr, ca, nil, "cp.d1", "cp&d1", ""),
		"secret product with a certificate only":   dialTLS(tlsAddr, ca, &secretProductCert, "sp.d1", "sp&d1", ""),
		"secret product, certificate + bad secret": dialTLS(tlsAddr, ca, &secretProductCert, "sp.d1", wire.Username("sp", "d1", now), "00"),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, n := f.Online(ota.DeviceRef{ProductKey: "cp", Name: "d2"}); n != 0 {
		t.Errorf("cp/d2 connected %d times with cp/d1's identity", n)
	}
	if _, n := f.Online(ota.DeviceRef{ProductKey: "sp", Name: "d1"}); n != 0 {
		t.Errorf("sp/d1 connected %d times", n)
	}

	// Secret products keep working over TLS with their secret, with or
	// without a certificate.
	su, sp := sign("sp", "d1")
	if err := dialTLS(tlsAddr, ca, nil, "sp.d1", su, sp); err != nil {
		t.Errorf("secret device over TLS: %v", err)
	}
	if err := dialTLS(tlsAddr, ca, &secretProductCert, "sp.d1", su, sp); err != nil {
		t.Errorf("secret device over TLS with a certificate too: %v", err)
	}
	if err := dialPlain(b.Addr().String(), "sp.d1", su, sp); err != nil {
		t.Errorf("secret device on the plain listener: %v", err)
	}
}

func dialPlain(addr, clientID, user, pass string) error {
	c, err := dialRaw(addr, clientID, user, pass)
	if err == nil {
		c.Disconnect(0)
	}
	return err
}

// The refusal of a secret for an x509 product says what to do.
func TestX509RefusalMessage(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("cp", "d1", "s3cr3t")
	f.SetAuth("cp", ota.AuthX509)
	b := &Broker{devices: f}
	now := time.Now()
	_, _, err := b.authenticate(t.Context(), NewNative(f, 0, nil), Connect{ClientID: "cp.d1", Username: wire.Username("cp", "d1", now), Password: []byte(wire.Sign("s3cr3t", "cp", "d1", now.UnixMilli()))})
	if err == nil || !strings.Contains(err.Error(), "client certificate") || !strings.Contains(err.Error(), `"cp.d1"`) {
		t.Errorf("secret for an x509 product: %v", err)
	}
	_, _, err = b.authenticate(t.Context(), NewNative(f, 0, nil), Connect{ClientID: "cp.d1", Username: "cp&d1"})
	if err == nil || !strings.Contains(err.Error(), "auth x509") {
		t.Errorf("nothing for an x509 product: %v", err)
	}
}
