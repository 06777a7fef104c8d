// Package secrets seals the secrets the server must read back (device
// secrets that verify HMAC CONNECT signatures, access-key secrets that verify
// request signatures) before they reach the database, so that a copy of the
// database alone yields no usable secret.
//
// A sealed value is "sealed:v1:" followed by base64url(nonce ‖ AES-256-GCM
// ciphertext). The row's identity is the GCM additional data, so a sealed
// secret copied into another row does not open there. Values without the
// prefix are plaintext rows written before sealing existed; Open passes them
// through, and the store's SealSecrets rewrites them.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Prefix marks a sealed value.
const Prefix = "sealed:v1:"

// KeyFile is the name of the generated key file in the data directory.
const KeyFile = "secret.key"

// MinKeyLen is the shortest key material accepted (characters).
const MinKeyLen = 32

// Box seals and opens secrets with one key. A nil *Box seals nothing (stores
// opened without a key, in tests of other packages) and refuses to open a
// sealed value.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box keyed from material (at least MinKeyLen characters: the
// generated key file holds 64 hex characters). The AES-256 key is derived
// with HKDF-SHA256, so any long random string works.
func New(material string) (*Box, error) {
	material = strings.TrimSpace(material)
	if len(material) < MinKeyLen {
		return nil, fmt.Errorf("the secret key is %d characters: use at least %d (32 random bytes in hex, as in a generated %s)", len(material), MinKeyLen, KeyFile)
	}
	key, err := hkdf.Key(sha256.New, []byte(material), nil, "updraft secrets at rest v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Sealed reports whether a stored value is sealed.
func Sealed(stored string) bool { return strings.HasPrefix(stored, Prefix) }

// Seal encrypts plain for the row named by id (the additional data). An
// empty secret stays empty: there is nothing to hide, and "no secret" must
// stay recognizable.
func (b *Box) Seal(id, plain string) string {
	if b == nil || plain == "" || Sealed(plain) {
		return plain
	}
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plain), []byte(id)))
}

// Open returns the plaintext of a stored value of the row named by id. A
// value without the prefix is returned as it is (a row not sealed yet).
func (b *Box) Open(id, stored string) (string, error) {
	if !Sealed(stored) {
		return stored, nil
	}
	if b == nil {
		return "", errors.New("the database holds sealed secrets but no secret key was given: start with the same --secret-key-file (or UPDRAFT_SECRET_KEY) as before")
	}
	raw, err := base64.RawURLEncoding.DecodeString(stored[len(Prefix):])
	if err != nil || len(raw) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", fmt.Errorf("the sealed secret of %s is damaged", id)
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("the sealed secret of %s does not open with this secret key: start with the key it was sealed with (--secret-key-file or UPDRAFT_SECRET_KEY)", id)
	}
	return string(plain), nil
}

// LoadKeyFile reads key material from path; when create is set and the file
// does not exist, it is created with 32 random bytes in hex, mode 0600
// (written aside and linked into place, so that two processes starting at
// once both end up with the same key).
func LoadKeyFile(path string, create bool) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < MinKeyLen {
			return "", fmt.Errorf("%s holds a key of %d characters: use at least %d", path, len(key), MinKeyLen)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return "", fmt.Errorf("reading the secret key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the directory of the secret key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	key := hex.EncodeToString(raw)
	tmp, err := os.CreateTemp(dir, ".secret-*.tmp")
	if err != nil {
		return "", fmt.Errorf("creating the secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("creating the secret key: %w", err)
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("writing the secret key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("writing the secret key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadKeyFile(path, false)
		}
		return "", fmt.Errorf("creating the secret key: %w", err)
	}
	return key, nil
}

// DeviceID and KeyID name rows as additional data.
func DeviceID(productKey, name string) string { return "device\x00" + productKey + "\x00" + name }

// KeyID names an access key's row.
func KeyID(id string) string { return "access_key\x00" + id }
