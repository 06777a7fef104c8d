package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certPair writes a CA-issued server certificate and key (and the CA) to a
// temporary directory and returns their paths.
func certPair(t *testing.T) (dir, cert, key string) {
	t.Helper()
	dir = t.TempDir()
	if _, err := EnsureAutoTLS(dir, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
}

// Every wrong combination of TLS flags is refused before anything starts,
// with an error that names the flag (and its variable) to change.
func TestTLSFlagErrors(t *testing.T) {
	dir, cert, key := certPair(t)
	missing := filepath.Join(dir, "nope.pem")
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"key without cert", []string{"--tls-key", key}, nil, []string{"--tls-key", "add --tls-cert FILE", "UPDRAFT_TLS_KEY"}},
		{"key without cert (env)", nil, map[string]string{"UPDRAFT_TLS_KEY": key}, []string{"--tls-key", "add --tls-cert FILE"}},
		{"cert without key", []string{"--tls-cert", cert}, nil, []string{"--tls-cert", "add --tls-key FILE"}},
		{"missing key file", []string{"--tls-cert", cert, "--tls-key", missing}, nil, []string{"--tls-key", "nope.pem", "no such file"}},
		{"missing cert file", []string{"--tls-cert", missing, "--tls-key", key}, nil, []string{"--tls-cert", "no such file", "UPDRAFT_TLS_CERT"}},
		{"key of another certificate", []string{"--tls-cert", cert, "--tls-key", filepath.Join(dir, CAKeyFile)}, nil, []string{"--tls-cert", "--tls-key", "matching"}},
		{"not a certificate", []string{"--tls-cert", key, "--tls-key", key}, nil, []string{"--tls-cert", "PEM certificate"}},
		{"unknown --tls", []string{"--tls", "yes"}, nil, []string{"--tls", `use "auto"`}},
		{"auto with files", []string{"--tls", "auto", "--tls-cert", cert, "--tls-key", key}, nil, []string{"--tls", "drop"}},
		{"mqtts without TLS", []string{"--mqtts", ":8883"}, nil, []string{"--mqtts", "needs a certificate"}},
		{"mqtts bad address", []string{"--tls", "auto", "--mqtts", "8883"}, nil, []string{"--mqtts", "host:port"}},
		{"mqtts with an external broker", []string{"--tls", "auto", "--mqtts", ":8883", "--mqtt-broker", "tcp://b:1883"}, nil, []string{"--mqtts", "--mqtt-broker"}},
		{"client CA without TLS", []string{"--tls-client-ca", filepath.Join(dir, CAFile)}, nil, []string{"--tls-client-ca", "add --tls-cert"}},
		{"client CA missing", []string{"--tls", "auto", "--tls-client-ca", missing}, nil, []string{"--tls-client-ca", "no such file"}},
		{"client CA not PEM", []string{"--tls", "auto", "--tls-client-ca", filepath.Join(dir, CAKeyFile)}, nil, []string{"--tls-client-ca", "no PEM certificate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, tc.args, tc.env)
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A certificate and key from the environment turn TLS on: MQTT over TLS on
// :8883 besides the plain listener (unchanged), and nothing of it without
// them.
func TestTLSFromEnvAndListeners(t *testing.T) {
	_, cert, key := certPair(t)
	c, err := parse(t, nil, map[string]string{"UPDRAFT_TLS_CERT": cert, "UPDRAFT_TLS_KEY": key})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.TLSEnabled() || c.MQTTSListenAddr() != ":8883" || !c.PlainMQTT() || c.MQTTAddr != ":1883" {
		t.Fatalf("TLS %v mqtts %q plain %v (%q); want TLS on :8883 and plain MQTT kept on :1883", c.TLSEnabled(), c.MQTTSListenAddr(), c.PlainMQTT(), c.MQTTAddr)
	}
	st, err := c.LoadServerTLS(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.HTTP.MinVersion != tls.VersionTLS12 || st.MQTT.MinVersion != tls.VersionTLS12 {
		t.Errorf("minimum TLS versions %x %x; want TLS 1.2", st.HTTP.MinVersion, st.MQTT.MinVersion)
	}
	if st.ClientCAs != nil || st.MQTT.ClientAuth != tls.NoClientCert {
		t.Error("client certificates asked for without --tls-client-ca")
	}

	// TLS-only broker: --mqtt off keeps --mqtts; --mqtts off keeps plain.
	c, _ = parse(t, []string{"--tls", "auto", "--mqtt", "off", "--mqtts", "127.0.0.1:0"}, nil)
	if err := c.Validate(); err != nil || !c.EmbeddedMQTT() || c.PlainMQTT() || c.MQTTSListenAddr() != "127.0.0.1:0" {
		t.Errorf("--mqtt off --mqtts: err %v embedded %v plain %v mqtts %q", err, c.EmbeddedMQTT(), c.PlainMQTT(), c.MQTTSListenAddr())
	}
	c, _ = parse(t, []string{"--tls", "auto", "--mqtts", "off"}, nil)
	if err := c.Validate(); err != nil || c.MQTTSListenAddr() != "" || !c.PlainMQTT() {
		t.Errorf("--mqtts off: err %v mqtts %q plain %v", err, c.MQTTSListenAddr(), c.PlainMQTT())
	}
	// No TLS flag: exactly as before.
	c, _ = parse(t, nil, nil)
	if c.TLSEnabled() || c.MQTTSListenAddr() != "" {
		t.Error("TLS must be off by default")
	}
	if st, err := c.LoadServerTLS(time.Now()); st != nil || err != nil {
		t.Errorf("LoadServerTLS without TLS = %v, %v", st, err)
	}
}

// --tls auto creates the CA once (key 0600) and reuses it on every start; the
// server certificate covers the local names, the host name and the public
// URL's host, and is re-issued by the same CA when a name is added.
func TestAutoTLSCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	c := Default()
	c.DataDir = dir
	c.TLS = TLSAuto
	c.PublicURL = "https://ota.example.com:8443"
	c.Complete()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := c.LoadServerTLS(now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.CACreated || first.CAFile != filepath.Join(dir, CAFile) {
		t.Fatalf("first start: created %v ca %q", first.CACreated, first.CAFile)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v; want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	roots, err := loadCertPool(first.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.HTTP.Certificates[0].Leaf
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "127.0.0.1", "::1", host, "ota.example.com"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("server certificate for %q: %v", name, err)
		}
	}
	if first.MQTT.ClientAuth != tls.VerifyClientCertIfGiven || first.ClientCAs == nil {
		t.Error("the auto CA must verify device client certificates on MQTT over TLS")
	}
	caBefore, _ := os.ReadFile(first.CAFile)

	again, err := c.LoadServerTLS(now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again.CACreated || !again.HTTP.Certificates[0].Leaf.Equal(leaf) {
		t.Error("a restart must reuse the CA and the server certificate")
	}

	c.PublicURL = "https://ota2.example.com"
	moved, err := c.LoadServerTLS(now.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	caAfter, _ := os.ReadFile(first.CAFile)
	if moved.CACreated || string(caAfter) != string(caBefore) {
		t.Fatal("a new public URL must keep the CA")
	}
	if _, err := moved.HTTP.Certificates[0].Leaf.Verify(x509.VerifyOptions{DNSName: "ota2.example.com", Roots: roots, CurrentTime: now.Add(2 * time.Hour)}); err != nil {
		t.Errorf("re-issued server certificate: %v", err)
	}

	// A certificate near its end is re-issued by the same CA.
	late := now.Add(serverLifetime - renewBefore/2)
	renewed, err := c.LoadServerTLS(late)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.HTTP.Certificates[0].Leaf.NotAfter.Before(late.Add(renewBefore)) {
		t.Error("a server certificate within 30 days of its end was not re-issued")
	}

	// A CA without its key is not silently replaced (devices trust it).
	if err := os.Remove(filepath.Join(dir, CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadServerTLS(now); err == nil || !strings.Contains(err.Error(), "remove both") || !strings.Contains(err.Error(), "--tls auto") {
		t.Errorf("CA without key: %v", err)
	}
}

// Device certificates issued from the auto CA carry the common name asked
// for and chain to ca.pem for client authentication.
func TestIssueClientCert(t *testing.T) {
	dir, _, _ := certPair(t)
	certPEM, keyPEM, err := IssueClientCert(dir, "prod_dev1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := loadCertPool(filepath.Join(dir, CAFile))
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || pair.Leaf.Subject.CommonName != "prod_dev1" {
		t.Errorf("client certificate CN %q: %v", pair.Leaf.Subject.CommonName, err)
	}
}

// --tls-client-ca replaces the auto CA as the issuer of device certificates.
func TestTLSClientCAReplacesAutoCA(t *testing.T) {
	other, _, _ := certPair(t)
	c := Default()
	c.DataDir = t.TempDir()
	c.TLS = TLSAuto
	c.TLSClientCA = filepath.Join(other, CAFile)
	c.Complete()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := c.LoadServerTLS(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := IssueClientCert(other, "p.d", time.Now())
	own, _, _ := IssueClientCert(c.DataDir, "p.d", time.Now())
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	opts := x509.VerifyOptions{Roots: st.MQTT.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := pair.Leaf.Verify(opts); err != nil {
		t.Errorf("a certificate of --tls-client-ca: %v", err)
	}
	block, _ := pemDecode(own)
	if cert, err := x509.ParseCertificate(block); err != nil {
		t.Fatal(err)
	} else if _, err := cert.Verify(opts); err == nil {
		t.Error("a certificate of the auto CA is still trusted with --tls-client-ca")
	}
}

func pemDecode(b []byte) ([]byte, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, os.ErrInvalid
	}
	return blk.Bytes, nil
}
