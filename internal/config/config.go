// Package config is the server's configuration: defaults that make `updraft
// serve` work with no flags, flags (--data, --http, …) each mirrored by an
// UPDRAFT_<NAME> environment variable, derived values and validation.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix starts every environment variable the server reads.
const EnvPrefix = "UPDRAFT_"

// Off is the --mqtt value that disables the embedded broker.
const Off = "off"

// Config is everything `updraft serve` needs to start. Empty DBURL, BlobURL
// and PublicURL are derived (Complete): from DataDir for the first two, from
// the real HTTP address for the last.
type Config struct {
	DataDir    string // --data: SQLite file, blob folder, signing key, credentials.json
	HTTPAddr   string // --http: listen address of every HTTP API
	MQTTAddr   string // --mqtt: embedded broker listen address, or "off"
	MQTTBroker string // --mqtt-broker: external broker URL (replaces the embedded one)
	DBURL      string // --db: sqlite:PATH or postgres://…
	BlobURL    string // --blob: file:DIR or s3://bucket?endpoint=…&region=…
	PublicURL  string // --public-url: base of download links devices get
	LogLevel   string // --log-level: debug, info, warn, error
	LogFormat  string // --log-format: text or json
	PprofAddr  string // --pprof: listen address of net/http/pprof; "" (default) = off
	Console    string // --console: serve the web console at / (true, default) or not (false)

	// TLS (tls.go). TLSCert and TLSKey are PEM files; TLS "auto" creates a
	// local CA and server certificate in DataDir instead. Either turns on
	// HTTPS on --http and MQTT over TLS on --mqtts.
	TLS         string // --tls: "" (off) or "auto"
	TLSCert     string // --tls-cert: server certificate chain (PEM)
	TLSKey      string // --tls-key: its private key (PEM)
	TLSClientCA string // --tls-client-ca: CAs that issue device client certificates (x509 products)
	MQTTSAddr   string // --mqtts: MQTT over TLS listen address; "" = :8883 when TLS is on, "off" = none

	// SigningKey (env UPDRAFT_SIGNING_KEY) signs fs download URLs. Empty:
	// read from or created in <data>/signing.key (LoadSigningKey).
	SigningKey string

	// SecretKeyFile (--secret-key-file) holds the key that seals device and
	// access-key secrets in the database; SecretKey (env UPDRAFT_SECRET_KEY)
	// is the key itself and wins. Both empty: <data>/secret.key, created on
	// first start (LoadSecretBox).
	SecretKeyFile string
	SecretKey     string

	// RateLimit (--rate-limit) is the requests per second one access key may
	// make on the management APIs (burst twice that); RateLimitIP
	// (--rate-limit-ip) the failed authentications per second one source IP
	// may make (burst five times that). "0" turns a limit off.
	RateLimit   string
	RateLimitIP string
	// RateLimitDevice (--rate-limit-device) is the requests per second one
	// device may make on the device HTTP APIs (burst ten times that).
	RateLimitDevice string
	// RateLimitTenant (--rate-limit-tenant) is the requests per second all
	// of one tenant's access keys together may make on the management APIs
	// (burst twice that).
	RateLimitTenant string
	// MaxUploads (--max-uploads) bounds the uploads one server receives at
	// once, MaxUploadsPerTenant (--max-uploads-per-tenant) one tenant's.
	MaxUploads          string
	MaxUploadsPerTenant string

	// First-start tenant and key (env only; empty parts are generated).
	BootstrapTenant    string // UPDRAFT_BOOTSTRAP_TENANT
	BootstrapAccessKey string // UPDRAFT_BOOTSTRAP_ACCESS_KEY
	BootstrapSecretKey string // UPDRAFT_BOOTSTRAP_SECRET_KEY

	// ShutdownTimeout bounds the graceful drain on SIGINT/SIGTERM.
	ShutdownTimeout time.Duration

	// RolloutInterval is how often the rollout engine ticks; 0 is
	// rollout.DefaultInterval (1 s). Tests shorten it.
	RolloutInterval time.Duration

	// Stdout receives the one-time print of the first tenant's access key;
	// nil is os.Stdout.
	Stdout io.Writer
}

// Default returns the configuration of `updraft serve` with no flags.
func Default() Config {
	return Config{
		DataDir:             "./updraft-data",
		HTTPAddr:            ":8080",
		MQTTAddr:            ":1883",
		LogLevel:            "info",
		LogFormat:           "text",
		Console:             "true",
		RateLimit:           "200",
		RateLimitIP:         "10",
		RateLimitDevice:     "5",
		RateLimitTenant:     "500",
		MaxUploads:          "16",
		MaxUploadsPerTenant: "4",
		ShutdownTimeout:     15 * time.Second,
	}
}

// flagSpec ties a flag to its field and environment variable.
type flagSpec struct {
	name  string
	field func(*Config) *string
	usage string
}

var flagSpecs = []flagSpec{
	{"data", func(c *Config) *string { return &c.DataDir }, "data directory: SQLite database, blob files, signing key, credentials.json"},
	{"http", func(c *Config) *string { return &c.HTTPAddr }, "HTTP listen address (APIs, downloads, /healthz, /metrics)"},
	{"mqtt", func(c *Config) *string { return &c.MQTTAddr }, `embedded MQTT broker listen address, or "off"`},
	{"mqtt-broker", func(c *Config) *string { return &c.MQTTBroker }, "external MQTT broker URL (tcp://host:1883, ssl://…) used instead of the embedded one"},
	{"db", func(c *Config) *string { return &c.DBURL }, "database URL: sqlite:PATH or postgres://user@host/db (default sqlite:<data>/updraft.db)"},
	{"blob", func(c *Config) *string { return &c.BlobURL }, "blob store URL: file:DIR or s3://bucket?endpoint=…&region=… (default file:<data>/blobs)"},
	{"public-url", func(c *Config) *string { return &c.PublicURL }, "public base URL of this server, used in download links (default derived from --http)"},
	{"log-level", func(c *Config) *string { return &c.LogLevel }, "log level: debug, info, warn, error"},
	{"log-format", func(c *Config) *string { return &c.LogFormat }, "log format: text or json"},
	{"console", func(c *Config) *string { return &c.Console }, "serve the web console at / on the HTTP listener: true or false"},
	{"secret-key-file", func(c *Config) *string { return &c.SecretKeyFile }, "file holding the key that encrypts device and access-key secrets in the database (default <data>/secret.key, created 0600 on first start; replicas must share it)"},
	{"rate-limit", func(c *Config) *string { return &c.RateLimit }, "requests per second per access key on the management APIs, burst twice that; 429/Retry-After (or the dialect's throttling error) beyond it; 0 = off"},
	{"rate-limit-ip", func(c *Config) *string { return &c.RateLimitIP }, "failed authentications per second per source IP, burst five times that; beyond it the IP's calls are refused before any signature check; 0 = off"},
	{"max-uploads", func(c *Config) *string { return &c.MaxUploads }, "uploads (package files, objects) this server receives at once, from every API; beyond it an upload is refused at once (429/Retry-After or the dialect's throttling error); per replica; 0 = no limit"},
	{"max-uploads-per-tenant", func(c *Config) *string { return &c.MaxUploadsPerTenant }, "uploads one tenant may have in progress at once on this server; 0 = no limit"},
	{"rate-limit-tenant", func(c *Config) *string { return &c.RateLimitTenant }, "requests per second per tenant (all its access keys together) on the management APIs, burst twice that; 429/Retry-After (or the dialect's throttling error) beyond it; per replica; 0 = off"},
	{"rate-limit-device", func(c *Config) *string { return &c.RateLimitDevice }, "requests per second per device on the device HTTP APIs (native /device/v1, EnOS HTTP login and download), burst ten times that; 429/Retry-After beyond it; per replica; 0 = off"},
	{"pprof", func(c *Config) *string { return &c.PprofAddr }, "serve net/http/pprof on this separate address, such as 127.0.0.1:6060 (default off; never expose it publicly)"},
	{"tls", func(c *Config) *string { return &c.TLS }, `"auto": create a local CA and server certificate in the data directory and serve HTTPS and MQTT over TLS (default off)`},
	{"tls-cert", func(c *Config) *string { return &c.TLSCert }, "server certificate file (PEM, chain allowed): serve HTTPS on --http and MQTT over TLS on --mqtts; needs --tls-key"},
	{"tls-key", func(c *Config) *string { return &c.TLSKey }, "private key file (PEM) of --tls-cert"},
	{"tls-client-ca", func(c *Config) *string { return &c.TLSClientCA }, "CA certificates (PEM) that issue device client certificates for products with auth x509 (default with --tls auto: its own CA)"},
	{"mqtts", func(c *Config) *string { return &c.MQTTSAddr }, `MQTT over TLS listen address of the embedded broker (default :8883 when TLS is on), or "off"`},
}

// EnvName is the environment variable that mirrors a flag: --mqtt-broker is
// UPDRAFT_MQTT_BROKER.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// BindFlags registers the named flags (all when none are named) on fs, with
// c's current values as defaults. Parsed values land in c.
func (c *Config) BindFlags(fs *pflag.FlagSet, only ...string) {
	for _, s := range flagSpecs {
		if len(only) > 0 && !contains(only, s.name) {
			continue
		}
		p := s.field(c)
		fs.StringVar(p, s.name, *p, s.usage+" [env "+EnvName(s.name)+"]")
	}
}

// ApplyEnv fills every bound flag the command line did not set from its
// environment variable (flags win over the environment), and reads the
// env-only settings. lookup is os.LookupEnv outside tests.
func (c *Config) ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	for _, s := range flagSpecs {
		f := fs.Lookup(s.name)
		if f == nil || f.Changed {
			continue
		}
		if v, ok := lookup(EnvName(s.name)); ok && v != "" {
			if err := fs.Set(s.name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", EnvName(s.name), v, err)
			}
		}
	}
	envOnly := []struct {
		name string
		dst  *string
	}{
		{"SIGNING_KEY", &c.SigningKey},
		{"SECRET_KEY", &c.SecretKey},
		{"BOOTSTRAP_TENANT", &c.BootstrapTenant},
		{"BOOTSTRAP_ACCESS_KEY", &c.BootstrapAccessKey},
		{"BOOTSTRAP_SECRET_KEY", &c.BootstrapSecretKey},
	}
	for _, e := range envOnly {
		if v, ok := lookup(EnvPrefix + e.name); ok && v != "" {
			*e.dst = v
		}
	}
	if v, ok := lookup(EnvPrefix + "SHUTDOWN_TIMEOUT"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%sSHUTDOWN_TIMEOUT=%q: use a duration such as 15s", EnvPrefix, v)
		}
		c.ShutdownTimeout = d
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Complete fills the values derived from DataDir. PublicURL stays empty when
// not given: only the server knows its real port (with --http :0).
func (c *Config) Complete() {
	if c.DBURL == "" {
		c.DBURL = "sqlite:" + filepath.Join(c.DataDir, "updraft.db")
	}
	if c.BlobURL == "" {
		c.BlobURL = "file:" + filepath.Join(c.DataDir, "blobs")
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
}

// ConsoleEnabled reports whether the web console is served (default yes).
func (c *Config) ConsoleEnabled() bool {
	on, err := strconv.ParseBool(c.Console)
	return err != nil || on
}

// EmbeddedMQTT reports whether the server runs its own MQTT broker: on
// --mqtt, on --mqtts (TLS), or both.
func (c *Config) EmbeddedMQTT() bool {
	return c.MQTTBroker == "" && (c.PlainMQTT() || c.MQTTSListenAddr() != "")
}

// DBScheme returns "sqlite" or "postgres" for a valid DBURL.
func DBScheme(dbURL string) string {
	switch {
	case strings.HasPrefix(dbURL, "sqlite:"):
		return "sqlite"
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		return "postgres"
	}
	return ""
}

// SQLitePath is the file of a sqlite: URL (sqlite:PATH or sqlite://PATH).
func SQLitePath(dbURL string) string {
	p := strings.TrimPrefix(dbURL, "sqlite:")
	return strings.TrimPrefix(p, "//")
}

// Validate checks a completed configuration; each error names the flag and
// its environment variable and says what is accepted.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return flagErr("data", c.DataDir, "a data directory is required")
	}
	if _, err := c.RateLimits(); err != nil {
		return err
	}
	if _, _, err := c.UploadLimits(); err != nil {
		return err
	}
	if err := checkListenAddr("http", c.HTTPAddr); err != nil {
		return err
	}
	if _, err := strconv.ParseBool(c.Console); c.Console != "" && err != nil {
		return fmt.Errorf("--console %q (%s): use true or false", c.Console, EnvName("console"))
	}
	if c.PprofAddr != "" {
		if err := checkListenAddr("pprof", c.PprofAddr); err != nil {
			return err
		}
	}
	if !strings.EqualFold(c.MQTTAddr, Off) {
		if err := checkListenAddr("mqtt", c.MQTTAddr); err != nil {
			return err
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if c.MQTTBroker != "" {
		u, err := url.Parse(c.MQTTBroker)
		if err != nil || u.Host == "" {
			return flagErr("mqtt-broker", c.MQTTBroker, "use a URL such as tcp://host:1883 or ssl://host:8883")
		}
		switch u.Scheme {
		case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		default:
			return flagErr("mqtt-broker", c.MQTTBroker, "scheme "+strconv.Quote(u.Scheme)+" is not supported: use tcp, mqtt, ssl, tls, mqtts, ws or wss")
		}
	}
	switch DBScheme(c.DBURL) {
	case "sqlite":
		if SQLitePath(c.DBURL) == "" {
			return flagErr("db", c.DBURL, "a sqlite URL needs a file: sqlite:/path/to/updraft.db")
		}
	case "postgres":
		if u, err := url.Parse(c.DBURL); err != nil || u.Host == "" {
			return flagErr("db", c.DBURL, "use postgres://user:password@host:5432/dbname")
		}
	default:
		return flagErr("db", c.DBURL, "use sqlite:PATH or postgres://user:password@host:5432/dbname")
	}
	switch {
	case strings.HasPrefix(c.BlobURL, "file:"):
		// "file:" alone is <data>/blobs; the blob store checks the rest.
	case strings.HasPrefix(c.BlobURL, "s3://"):
		if u, err := url.Parse(c.BlobURL); err != nil || u.Host == "" {
			return flagErr("blob", c.BlobURL, "use s3://bucket?endpoint=host:port&region=…")
		}
	default:
		return flagErr("blob", c.BlobURL, "use file:DIR or s3://bucket?endpoint=host:port&region=…")
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return flagErr("public-url", c.PublicURL, "use an absolute http(s) URL without query, such as https://ota.example.com")
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return err
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return flagErr("log-format", c.LogFormat, "use text or json")
	}
	if c.SigningKey != "" && len(c.SigningKey) < 16 {
		return fmt.Errorf("%sSIGNING_KEY is %d characters: use at least 16 (32 random bytes in hex is best)", EnvPrefix, len(c.SigningKey))
	}
	return nil
}

func flagErr(flag, value, hint string) error {
	return fmt.Errorf("--%s %q: %s (flag --%s or env %s)", flag, Redact(value), hint, flag, EnvName(flag))
}

// secretParams are URL query parameters whose values are never shown.
var secretParams = []string{"secret_key", "access_key", "password", "sslpassword"}

// Redact hides the password and secret query parameters of a URL (database
// and blob URLs may carry credentials) so that it can be logged or shown.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return raw
	}
	q := u.Query()
	changed := false
	for _, p := range secretParams {
		if q.Has(p) {
			q.Set(p, "xxxxx")
			changed = true
		}
	}
	if _, hasPassword := u.User.Password(); !changed && !hasPassword {
		return raw
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func checkListenAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return flagErr(flag, addr, "use host:port or :port, such as :8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return flagErr(flag, addr, "the port must be a number from 0 to 65535")
	}
	if strings.ContainsAny(host, "/ ") {
		return flagErr(flag, addr, "use host:port or :port, such as :8080")
	}
	return nil
}

// ParseLevel reads a --log-level value.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, flagErr("log-level", s, "use debug, info, warn or error")
}

// NewLogger builds the server's structured logger.
func (c *Config) NewLogger(w io.Writer) (*slog.Logger, error) {
	level, err := ParseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, flagErr("log-format", c.LogFormat, "use text or json")
}

// ListenError turns a failed listen on the address given by --flag into an
// error that names the flag to change, e.g. "--http :8080: address already in
// use; choose another with --http or UPDRAFT_HTTP".
func ListenError(flag, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s: address already in use; choose another with --%s or %s", flag, addr, flag, EnvName(flag))
	}
	return fmt.Errorf("--%s %s: cannot listen: %w; choose another address with --%s or %s", flag, addr, err, flag, EnvName(flag))
}
