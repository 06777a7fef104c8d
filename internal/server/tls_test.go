package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

// --tls-cert and --tls-key: HTTPS on --http (TLS 1.2 at least), MQTT over TLS
// on --mqtts, and the plain MQTT listener stays where --mqtt put it.
func TestTLSCertFiles(t *testing.T) {
	pki := t.TempDir()
	if _, err := config.EnsureAutoTLS(pki, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	s := server.StartForTest(t, func(c *config.Config) {
		c.TLSCert = filepath.Join(pki, config.ServerCertFile)
		c.TLSKey = filepath.Join(pki, config.ServerKeyFile)
		c.MQTTAddr = "127.0.0.1:0"
		c.MQTTSAddr = "127.0.0.1:0"
	})
	if !strings.HasPrefix(s.URL(), "https://") || s.PublicURL() != s.URL() || s.CAFile() != "" {
		t.Fatalf("URL %q public %q CA %q", s.URL(), s.PublicURL(), s.CAFile())
	}
	caPEM, _ := os.ReadFile(filepath.Join(pki, config.CAFile))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	resp, err := hc.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Errorf("/healthz over HTTPS: %d, proto %s", resp.StatusCode, resp.Proto)
	}
	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// MQTT over TLS handshakes with the server certificate; plain MQTT
	// still accepts TCP.
	c, err := tls.Dial("tcp", s.MQTTSAddr(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("MQTT over TLS: %v", err)
	}
	c.Close()
	p, err := net.Dial("tcp", s.MQTTAddr())
	if err != nil {
		t.Fatalf("plain MQTT: %v", err)
	}
	p.Close()
}

// A start with a key but no certificate fails before binding anything, with
// the flag named.
func TestTLSKeyWithoutCertRefused(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.TLSKey = filepath.Join(cfg.DataDir, "key.pem")
	os.WriteFile(cfg.TLSKey, []byte("x"), 0o600)
	_, err := server.New(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "--tls-key") || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("New = %v; want an error naming --tls-key and --tls-cert", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, server.CredentialsFile)); err == nil {
		t.Error("a refused start wrote credentials.json")
	}
}
