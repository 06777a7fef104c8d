package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// TLSAuto is the --tls value that creates a local CA and a server
// certificate in the data directory (tlsauto.go).
const TLSAuto = "auto"

// DefaultMQTTSAddr is where the embedded broker serves MQTT over TLS when a
// certificate is configured and --mqtts is not given (8883 is MQTT over TLS's
// registered port).
const DefaultMQTTSAddr = ":8883"

// TLSEnabled reports whether HTTPS and MQTT over TLS are on: --tls auto, or
// --tls-cert with --tls-key.
func (c *Config) TLSEnabled() bool { return c.TLS == TLSAuto || c.TLSCert != "" }

// MQTTSListenAddr is where the embedded broker listens for MQTT over TLS, ""
// for nowhere (TLS off, --mqtts off, or an external broker). The plain --mqtt
// listener is independent of it: turning TLS on does not turn plain MQTT off,
// so devices already in the field keep connecting; --mqtt off makes the
// broker TLS-only.
func (c *Config) MQTTSListenAddr() string {
	if !c.TLSEnabled() || c.MQTTBroker != "" || strings.EqualFold(c.MQTTSAddr, Off) {
		return ""
	}
	if c.MQTTSAddr == "" {
		return DefaultMQTTSAddr
	}
	return c.MQTTSAddr
}

// PlainMQTT reports whether the embedded broker serves plain MQTT on --mqtt.
func (c *Config) PlainMQTT() bool {
	return c.MQTTBroker == "" && !strings.EqualFold(c.MQTTAddr, Off) && c.MQTTAddr != ""
}

// validateTLS checks the TLS flags together; each error names the flag to
// change.
func (c *Config) validateTLS() error {
	switch c.TLS {
	case "", TLSAuto:
	case Off:
		c.TLS = ""
	default:
		return flagErr("tls", c.TLS, `use "auto" for a local CA and certificate, or give --tls-cert FILE and --tls-key FILE`)
	}
	if c.TLS == TLSAuto && (c.TLSCert != "" || c.TLSKey != "") {
		return flagErr("tls", c.TLS, "--tls auto creates its own certificate: drop --tls-cert and --tls-key, or drop --tls auto")
	}
	switch {
	case c.TLSKey != "" && c.TLSCert == "":
		return flagErr("tls-key", c.TLSKey, "a key needs its certificate: add --tls-cert FILE")
	case c.TLSCert != "" && c.TLSKey == "":
		return flagErr("tls-cert", c.TLSCert, "a certificate needs its private key: add --tls-key FILE")
	case c.TLSCert != "":
		if err := readable("tls-cert", c.TLSCert); err != nil {
			return err
		}
		if err := readable("tls-key", c.TLSKey); err != nil {
			return err
		}
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert %s with --tls-key %s: %v: give a PEM certificate (chain) and its matching PEM private key (env %s, %s)",
				c.TLSCert, c.TLSKey, err, EnvName("tls-cert"), EnvName("tls-key"))
		}
	}
	if c.TLSClientCA != "" {
		if !c.TLSEnabled() {
			return flagErr("tls-client-ca", c.TLSClientCA, "client certificates are checked on TLS listeners: add --tls-cert and --tls-key, or --tls auto")
		}
		if err := readable("tls-client-ca", c.TLSClientCA); err != nil {
			return err
		}
		if _, err := loadCertPool(c.TLSClientCA); err != nil {
			return flagErr("tls-client-ca", c.TLSClientCA, err.Error())
		}
	}
	if c.MQTTSAddr != "" && !strings.EqualFold(c.MQTTSAddr, Off) {
		if !c.TLSEnabled() {
			return flagErr("mqtts", c.MQTTSAddr, "MQTT over TLS needs a certificate: add --tls-cert and --tls-key, or --tls auto")
		}
		if c.MQTTBroker != "" {
			return flagErr("mqtts", c.MQTTSAddr, "--mqtts is the embedded broker's listener; with --mqtt-broker devices connect to the external broker: drop one of them")
		}
		if err := checkListenAddr("mqtts", c.MQTTSAddr); err != nil {
			return err
		}
	}
	return nil
}

// readable checks that the file a flag names can be read.
func readable(flag, path string) error {
	f, err := os.Open(path)
	if err != nil {
		hint := "cannot read the file"
		if errors.Is(err, os.ErrNotExist) {
			hint = "no such file"
		}
		return flagErr(flag, path, hint+": "+unwrapPathErr(err))
	}
	f.Close()
	return nil
}

func unwrapPathErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loadCertPool reads PEM certificates into a pool.
func loadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// ServerTLS is the TLS material `updraft serve` runs with.
type ServerTLS struct {
	// HTTP serves HTTPS: the server certificate, TLS 1.2 or newer.
	HTTP *tls.Config
	// MQTT serves MQTT over TLS: the same certificate, and, when ClientCAs
	// is set, device client certificates are verified against it if a
	// device sends one (the broker decides per product whether it must).
	MQTT *tls.Config
	// CAFile is the auto CA's certificate (--tls auto) that devices and
	// clients trust; "" with --tls-cert.
	CAFile string
	// CACreated is true when this start created the auto CA.
	CACreated bool
	// ClientCAs verify device client certificates; nil when none are
	// configured (no device can authenticate by certificate).
	ClientCAs *x509.CertPool
}

// LoadServerTLS loads --tls-cert/--tls-key, or creates or reuses the auto CA
// and server certificate (--tls auto) for hosts (plus the names every local
// certificate has). It returns nil when TLS is off.
func (c *Config) LoadServerTLS(now time.Time) (*ServerTLS, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	st := &ServerTLS{}
	var cert tls.Certificate
	if c.TLS == TLSAuto {
		a, err := EnsureAutoTLS(c.DataDir, c.autoTLSHosts(), now)
		if err != nil {
			return nil, fmt.Errorf("--tls auto: %w", err)
		}
		cert, st.CAFile, st.CACreated = a.Server, a.CAFile, a.Created
		st.ClientCAs = x509.NewCertPool()
		st.ClientCAs.AddCert(a.CA)
	} else {
		var err error
		if cert, err = tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return nil, fmt.Errorf("--tls-cert %s with --tls-key %s: %w", c.TLSCert, c.TLSKey, err)
		}
	}
	if c.TLSClientCA != "" {
		pool, err := loadCertPool(c.TLSClientCA)
		if err != nil {
			return nil, flagErr("tls-client-ca", c.TLSClientCA, err.Error())
		}
		st.ClientCAs = pool // replaces the auto CA: the operator named who issues device certificates
	}
	base := &tls.Config{
		MinVersion:   tls.VersionTLS12, // the Go defaults above 1.2: ECDHE, AEAD suites
		Certificates: []tls.Certificate{cert},
	}
	st.HTTP = base.Clone()
	st.MQTT = base.Clone()
	if st.ClientCAs != nil {
		// If given, not required: devices of secret products send none; a
		// certificate that does not chain to ClientCAs fails the handshake.
		st.MQTT.ClientAuth = tls.VerifyClientCertIfGiven
		st.MQTT.ClientCAs = st.ClientCAs
	}
	return st, nil
}

// autoTLSHosts are the names the auto server certificate covers besides the
// local ones: this machine's host name, the --public-url host and a specific
// --http host.
func (c *Config) autoTLSHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	if h, _, err := net.SplitHostPort(c.HTTPAddr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
