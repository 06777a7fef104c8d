package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files of --tls auto in the data directory. ca.pem is the one to copy to
// devices and clients; the keys are 0600.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
)

// Lifetimes of the auto certificates. The server certificate is re-issued
// from the same CA (which devices keep trusting) when it nears its end or
// misses a name, so it can be short; the CA outlives any device.
const (
	caLifetime     = 20 * 365 * 24 * time.Hour
	serverLifetime = 397 * 24 * time.Hour // the longest browsers accept
	renewBefore    = 30 * 24 * time.Hour
	// ClientCertLifetime is how long IssueClientCert's certificates last.
	ClientCertLifetime = 10 * 365 * 24 * time.Hour
)

// AutoTLS is the local CA and the server certificate it issued.
type AutoTLS struct {
	CA      *x509.Certificate
	CAKey   *ecdsa.PrivateKey
	CAFile  string
	Server  tls.Certificate
	Created bool // the CA was created by this call
}

// EnsureAutoTLS returns the CA in dir (creating it on first use, reused
// ever after) and a server certificate it issued for hosts (re-issued when
// one of hosts is missing from it or it expires within 30 days).
func EnsureAutoTLS(dir string, hosts []string, now time.Time) (AutoTLS, error) {
	a := AutoTLS{CAFile: filepath.Join(dir, CAFile)}
	var err error
	a.CA, a.CAKey, err = loadPair(a.CAFile, filepath.Join(dir, CAKeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if a.CA, a.CAKey, err = newCA(dir, now); err != nil {
			return AutoTLS{}, err
		}
		a.Created = true
	case err != nil:
		return AutoTLS{}, err
	}
	certPath, keyPath := filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	if cert, key, err := loadPair(certPath, keyPath); err == nil && serverCertFits(cert, a.CA, hosts, now) {
		a.Server = tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
		return a, nil
	}
	der, key, err := issue(a.CA, a.CAKey, serverTemplate(hosts, now))
	if err != nil {
		return AutoTLS{}, err
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return AutoTLS{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	a.Server = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return a, nil
}

// IssueClientCert issues a device client certificate with common name cn
// from the auto CA in dir (which must exist): PEM certificate and key.
func IssueClientCert(dir, cn string, now time.Time) (certPEM, keyPEM []byte, err error) {
	ca, caKey, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(ClientCertLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, key, err := issue(ca, caKey, tmpl)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func newCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Updraft local CA " + host, Organization: []string{"Updraft"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it issues leaf certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func serverTemplate(hosts []string, now time.Time) *x509.Certificate {
	t := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{"Updraft"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(serverLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			t.IPAddresses = append(t.IPAddresses, ip)
		} else if !slices.Contains(t.DNSNames, h) {
			t.DNSNames = append(t.DNSNames, h)
		}
	}
	return t
}

// serverCertFits reports whether an existing server certificate can stay:
// issued by ca, valid beyond the renewal margin, covering every host.
func serverCertFits(cert, ca *x509.Certificate, hosts []string, now time.Time) bool {
	if cert.CheckSignatureFrom(ca) != nil || now.Add(renewBefore).After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = randomSerial(); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	return der, key, err
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// loadPair reads a PEM certificate and its EC key. fs.ErrNotExist only when
// both files are missing; one without the other is an error that says what to
// do.
func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, cerr := os.ReadFile(certPath)
	kb, kerr := os.ReadFile(keyPath)
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		return nil, nil, fs.ErrNotExist
	}
	if cerr != nil || kerr != nil {
		return nil, nil, fmt.Errorf("reading %s and %s: %v: restore both, or remove both to have new ones created (devices must then trust the new %s)",
			certPath, keyPath, errors.Join(cerr, kerr), CAFile)
	}
	bad := func(what string) error {
		return fmt.Errorf("%s is not a PEM %s: restore it, or remove %s and %s to have new ones created", what, what, certPath, keyPath)
	}
	cblk, _ := pem.Decode(cb)
	if cblk == nil || cblk.Type != "CERTIFICATE" {
		return nil, nil, bad("certificate")
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, nil, bad("certificate")
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, nil, bad("key")
	}
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return nil, nil, bad("key")
	}
	return cert, key, nil
}

// writePair writes the certificate (0644: it is public) and the key (0600),
// each through a temporary file renamed into place, key first so that a
// crash never leaves a certificate without its key.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the data directory (--data): %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tls-*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
