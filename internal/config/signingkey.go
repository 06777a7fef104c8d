package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/updraft-ota/updraft/internal/store/secrets"
)

// SigningKeyFile is where the generated URL-signing key is kept.
const SigningKeyFile = "signing.key"

// LoadSigningKey returns the key that signs fs download URLs: UPDRAFT_SIGNING_KEY
// when set, else the contents of <data>/signing.key, created (mode 0600, 32
// random bytes in hex) on first start. Replicas sharing an fs blob store must
// share the key, hence the file or the variable rather than a per-process key.
func (c *Config) LoadSigningKey() ([]byte, error) {
	if c.SigningKey != "" {
		return []byte(c.SigningKey), nil
	}
	path := filepath.Join(c.DataDir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < 16 {
			return nil, fmt.Errorf("%s holds a key of %d characters: delete it to have a new one generated, or set %sSIGNING_KEY", path, len(key), EnvPrefix)
		}
		return []byte(key), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory (--data): %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	key := hex.EncodeToString(raw)
	// Written to a temporary file and linked into place, so that a process
	// starting at the same time either wins or reads a complete key.
	tmp, err := os.CreateTemp(c.DataDir, ".signing-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating the signing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("creating the signing key: %w", err)
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("writing the signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing the signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return c.LoadSigningKey()
		}
		return nil, fmt.Errorf("creating the signing key: %w", err)
	}
	return []byte(key), nil
}

// LoadSecretBox returns what seals device and access-key secrets in the
// database: keyed by UPDRAFT_SECRET_KEY when set, else by --secret-key-file,
// else by <data>/secret.key, created (0600, 32 random bytes in hex) on first
// start so that a default start needs no set-up. A file named by
// --secret-key-file must exist: a mistyped path must not silently get a new
// key that opens none of the stored secrets.
func (c *Config) LoadSecretBox() (*secrets.Box, error) {
	if c.SecretKey != "" {
		box, err := secrets.New(c.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("%sSECRET_KEY: %w", EnvPrefix, err)
		}
		return box, nil
	}
	path, create := c.SecretKeyFile, false
	if path == "" {
		path, create = filepath.Join(c.DataDir, secrets.KeyFile), true
	}
	key, err := secrets.LoadKeyFile(path, create)
	if err != nil {
		return nil, fmt.Errorf("--secret-key-file: %w", err)
	}
	return secrets.New(key)
}

// RateLimitValues are the parsed --rate-limit* flags, requests per second
// (0 = off).
type RateLimitValues struct {
	PerKey, PerIP, PerDevice, PerTenant float64
}

// Unthrottle turns every rate limit off: per access key, per source IP, per
// tenant and per device. It is for fuzzing and load tests, which call faster
// than any limit; one place, so a limit added later is off for them too.
func (c *Config) Unthrottle() {
	c.RateLimit, c.RateLimitIP, c.RateLimitTenant, c.RateLimitDevice = "0", "0", "0", "0"
}

// RateLimits parses --rate-limit, --rate-limit-ip, --rate-limit-tenant and
// --rate-limit-device:
// requests per second, a non-negative number (0 = off).
func (c *Config) RateLimits() (RateLimitValues, error) {
	parse := func(flag, v string) (float64, error) {
		if v == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, fmt.Errorf("--%s %q: use requests per second, such as 200, or 0 for no limit", flag, v)
		}
		return f, nil
	}
	var l RateLimitValues
	var err error
	if l.PerKey, err = parse("rate-limit", c.RateLimit); err != nil {
		return l, err
	}
	if l.PerIP, err = parse("rate-limit-ip", c.RateLimitIP); err != nil {
		return l, err
	}
	if l.PerTenant, err = parse("rate-limit-tenant", c.RateLimitTenant); err != nil {
		return l, err
	}
	l.PerDevice, err = parse("rate-limit-device", c.RateLimitDevice)
	return l, err
}

// UploadLimits parses --max-uploads and --max-uploads-per-tenant: a
// non-negative count, 0 meaning no limit (returned as -1, service.Options'
// "no limit").
func (c *Config) UploadLimits() (total, perTenant int, err error) {
	parse := func(flag, v string) (int, error) {
		if v == "" {
			return 0, nil // the service's default
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("--%s %q: use a number of uploads, such as 16, or 0 for no limit", flag, v)
		}
		if n == 0 {
			return -1, nil
		}
		return n, nil
	}
	if total, err = parse("max-uploads", c.MaxUploads); err != nil {
		return 0, 0, err
	}
	perTenant, err = parse("max-uploads-per-tenant", c.MaxUploadsPerTenant)
	return total, perTenant, err
}
