package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/store"
)

// CredentialsFile is written in the data directory on first start. The CLI
// reads it, so its format is fixed.
const CredentialsFile = "credentials.json"

// Credentials are the first tenant's access key and where to use it: the
// addresses the server really bound (a default port in use falls back to the
// next free one), so the CLI and `sim` need no port.
type Credentials struct {
	Tenant          string `json:"tenant"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Server          string `json:"server"`
	// MQTT is where devices connect: host:port of the embedded broker, or
	// the external broker's URL without its credentials; "" with no MQTT.
	MQTT string `json:"mqtt,omitempty"`
	// MQTTS is the embedded broker's MQTT over TLS address (ssl://host:port)
	// and CA the auto CA certificate (--tls auto) that devices and clients
	// trust; both "" when not in use.
	MQTTS string `json:"mqtts,omitempty"`
	CA    string `json:"ca,omitempty"`
}

// bootstrap creates the first tenant and key on an empty database, writes
// credentials.json and prints the key once.
func (s *Server) bootstrap(ctx context.Context) error {
	key, created, err := s.svc.Bootstrap(ctx, s.cfg.BootstrapTenant, s.cfg.BootstrapAccessKey, s.cfg.BootstrapSecretKey)
	if err != nil {
		return fmt.Errorf("creating the first tenant (UPDRAFT_BOOTSTRAP_*): %w", err)
	}
	if !created {
		return s.refreshCredentials()
	}
	c := Credentials{Tenant: key.TenantID, AccessKeyID: key.ID, SecretAccessKey: key.Secret}
	s.fillAddresses(&c)
	path := filepath.Join(s.cfg.DataDir, CredentialsFile)
	if err := writeCredentials(path, c); err != nil {
		// The key exists in the database now; losing it here would lock the
		// operator out, so print it before failing.
		s.printCredentials(c, "")
		return fmt.Errorf("writing %s: %w", path, err)
	}
	s.creds = &c
	s.printCredentials(c, path)
	return nil
}

// refreshCredentials updates the addresses in an existing credentials.json
// when this start bound others (another port after a fallback, MQTT turned on
// or off); the key is kept. A missing or foreign file is left alone.
func (s *Server) refreshCredentials() error {
	path := filepath.Join(s.cfg.DataDir, CredentialsFile)
	c, err := ReadCredentials(path)
	if err != nil {
		return nil // removed on purpose, or another process bootstrapped the database
	}
	before := c
	s.fillAddresses(&c)
	if c == before {
		return nil
	}
	if err := writeCredentials(path, c); err != nil {
		return fmt.Errorf("updating the addresses in %s: %w", path, err)
	}
	s.log.Info("credentials.json updated with this start's addresses", "path", path, "server", c.Server, "mqtt", c.MQTT)
	return nil
}

// fillAddresses sets where this start serves in c.
func (s *Server) fillAddresses(c *Credentials) {
	c.Server, c.MQTT, c.MQTTS, c.CA = s.URL(), s.deviceMQTT, "", s.CAFile()
	c.MQTTS = s.deviceMQTTS
	if c.CA != "" {
		if abs, err := filepath.Abs(c.CA); err == nil {
			c.CA = abs
		}
	}
}

// printCA tells the operator, on every start with --tls auto, which file
// devices and clients must trust.
func (s *Server) printCA() {
	out := s.cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	path := s.tls.CAFile
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	verb := "Using"
	if s.tls.CACreated {
		verb = "Created"
	}
	fmt.Fprintf(out, "%s the local CA of --tls auto: devices and clients trust %s (copy it to them; its key stays in %s)\n",
		verb, path, filepath.Join(filepath.Dir(path), config.CAKeyFile))
}

func (s *Server) printCredentials(c Credentials, path string) {
	out := s.cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	fmt.Fprintf(out, "Created tenant %q with an access key. It is shown only once", c.Tenant)
	if path != "" {
		fmt.Fprintf(out, " (also saved, mode 0600, in %s)", path)
	}
	fmt.Fprintf(out, ":\n  access key id:     %s\n  secret access key: %s\n  server:            %s\n", c.AccessKeyID, c.SecretAccessKey, c.Server)
	if c.MQTT != "" {
		fmt.Fprintf(out, "  devices' MQTT:     %s\n", c.MQTT)
	}
	if c.MQTTS != "" && c.MQTTS != c.MQTT {
		fmt.Fprintf(out, "  devices' MQTTS:    %s\n", c.MQTTS)
	}
	if c.CA != "" {
		fmt.Fprintf(out, "  trust CA:          %s\n", c.CA)
	}
}

// writeCredentials writes c atomically with mode 0600: a crash leaves either
// no file or a complete one.
func writeCredentials(path string, c Credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadCredentials reads a credentials.json.
func ReadCredentials(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, err
	}
	defer f.Close()
	var c Credentials
	b, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return Credentials{}, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Credentials{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Credentials returns the first tenant's key: the one this start created, or
// else the one in <data>/credentials.json. ok is false when there is neither
// (the file was removed, or another process bootstrapped the database).
func (s *Server) Credentials() (c Credentials, ok bool) {
	if s.creds != nil {
		return *s.creds, true
	}
	c, err := ReadCredentials(filepath.Join(s.cfg.DataDir, CredentialsFile))
	return c, err == nil
}

// CreatedTenant reports whether this start created the first tenant.
func (s *Server) CreatedTenant() bool { return s.creds != nil }

// checkSecretKey opens the operator tenant's access keys, so that a start
// with another secret key than the one the database was sealed with (a
// replica given its own data directory, a lost secret.key) fails at once
// with what to do, instead of failing every signed request later.
func checkSecretKey(ctx context.Context, st store.Store) error {
	tenants, _, err := st.ListTenants(ctx, store.Page{Limit: 1})
	if err != nil || len(tenants) == 0 {
		return err
	}
	if _, err := st.ListAccessKeys(ctx, tenants[0].ID); err != nil {
		return fmt.Errorf("the database's secrets do not open with this server's secret key: start every replica with the same --secret-key-file or UPDRAFT_SECRET_KEY (a new data directory generates a new secret.key): %w", err)
	}
	return nil
}
