package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// parse binds a fresh config to a flag set, parses args and applies env.
func parse(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	c := Default()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := c.ApplyEnv(fs, lookup); err != nil {
		return c, err
	}
	c.Complete()
	return c, nil
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"data":       {c.DataDir, "./updraft-data"},
		"http":       {c.HTTPAddr, ":8080"},
		"mqtt":       {c.MQTTAddr, ":1883"},
		"db":         {c.DBURL, "sqlite:" + filepath.Join("updraft-data", "updraft.db")},
		"blob":       {c.BlobURL, "file:" + filepath.Join("updraft-data", "blobs")},
		"public-url": {c.PublicURL, ""},
		"log-level":  {c.LogLevel, "info"},
		"log-format": {c.LogFormat, "text"},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("--%s default = %q, want %q", name, gw[0], gw[1])
		}
	}
	if !c.EmbeddedMQTT() {
		t.Error("the embedded broker should be on by default")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDerivedFromDataDir(t *testing.T) {
	c, err := parse(t, []string{"--data", "/srv/ota"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DBURL != "sqlite:/srv/ota/updraft.db" || c.BlobURL != "file:/srv/ota/blobs" {
		t.Errorf("derived db %q blob %q", c.DBURL, c.BlobURL)
	}
}

func TestEnvAndFlagsWin(t *testing.T) {
	env := map[string]string{
		"UPDRAFT_DATA":                 "/env/data",
		"UPDRAFT_HTTP":                 ":9000",
		"UPDRAFT_MQTT":                 "off",
		"UPDRAFT_MQTT_BROKER":          "tcp://broker:1883",
		"UPDRAFT_DB":                   "postgres://u@db:5432/ota",
		"UPDRAFT_BLOB":                 "s3://pkgs?endpoint=s3:9000&region=us-east-1",
		"UPDRAFT_PUBLIC_URL":           "https://ota.example.com",
		"UPDRAFT_LOG_LEVEL":            "debug",
		"UPDRAFT_LOG_FORMAT":           "json",
		"UPDRAFT_SIGNING_KEY":          "0123456789abcdef0123",
		"UPDRAFT_BOOTSTRAP_TENANT":     "acme",
		"UPDRAFT_BOOTSTRAP_ACCESS_KEY": "AKACME",
		"UPDRAFT_BOOTSTRAP_SECRET_KEY": "s3cr3t-s3cr3t",
	}
	c, err := parse(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.DataDir, c.HTTPAddr, c.MQTTAddr, c.MQTTBroker, c.DBURL, c.BlobURL, c.PublicURL, c.LogLevel, c.LogFormat,
		c.SigningKey, c.BootstrapTenant, c.BootstrapAccessKey, c.BootstrapSecretKey}
	want := []string{"/env/data", ":9000", "off", "tcp://broker:1883", "postgres://u@db:5432/ota",
		"s3://pkgs?endpoint=s3:9000&region=us-east-1", "https://ota.example.com", "debug", "json",
		"0123456789abcdef0123", "acme", "AKACME", "s3cr3t-s3cr3t"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d from env = %q, want %q", i, got[i], want[i])
		}
	}
	if c.EmbeddedMQTT() {
		t.Error("--mqtt off (env) must disable the embedded broker")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("env config does not validate: %v", err)
	}

	// A flag beats its variable; the other variables still apply.
	c, err = parse(t, []string{"--http", "127.0.0.1:7000", "--db", "sqlite:/flag.db"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:7000" || c.DBURL != "sqlite:/flag.db" {
		t.Errorf("flags did not win: http %q db %q", c.HTTPAddr, c.DBURL)
	}
	if c.DataDir != "/env/data" {
		t.Errorf("env lost for an unset flag: data %q", c.DataDir)
	}
}

func TestExternalBrokerDisablesEmbedded(t *testing.T) {
	c, err := parse(t, []string{"--mqtt-broker", "ssl://broker:8883"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.EmbeddedMQTT() {
		t.Error("an external broker must replace the embedded one")
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"http": "UPDRAFT_HTTP", "mqtt-broker": "UPDRAFT_MQTT_BROKER", "public-url": "UPDRAFT_PUBLIC_URL"} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // substring of the error
	}{
		{[]string{"--http", "8080"}, "--http \"8080\""},
		{[]string{"--http", ":99999"}, "port must be a number from 0 to 65535"},
		{[]string{"--mqtt", "nope"}, "--mqtt \"nope\""},
		{[]string{"--mqtt-broker", "http://broker"}, "scheme \"http\" is not supported"},
		{[]string{"--mqtt-broker", "broker:1883"}, "--mqtt-broker"},
		{[]string{"--db", "mysql://x"}, "use sqlite:PATH or postgres://"},
		{[]string{"--db", "sqlite:"}, "a sqlite URL needs a file"},
		{[]string{"--db", "postgres://"}, "--db \"postgres://\""},
		{[]string{"--blob", "ftp://x"}, "use file:DIR or s3://"},
		{[]string{"--blob", "s3://"}, "--blob"},
		{[]string{"--public-url", "ota.example.com"}, "--public-url"},
		{[]string{"--public-url", "https://ota.example.com/?a=b"}, "without query"},
		{[]string{"--log-level", "loud"}, "use debug, info, warn or error"},
		{[]string{"--log-format", "xml"}, "use text or json"},
		{[]string{"--data", ""}, "data directory is required"},
	}
	for _, tc := range cases {
		c, err := parse(t, tc.args, nil)
		if err != nil {
			t.Fatalf("%v: parse: %v", tc.args, err)
		}
		err = c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: Validate() = %v, want an error containing %q", tc.args, err, tc.want)
			continue
		}
		flag := strings.TrimPrefix(tc.args[0], "--")
		if !strings.Contains(err.Error(), EnvName(flag)) {
			t.Errorf("%v: error %q does not name %s", tc.args, err, EnvName(flag))
		}
	}
	c, _ := parse(t, nil, map[string]string{"UPDRAFT_SIGNING_KEY": "short"})
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "UPDRAFT_SIGNING_KEY") {
		t.Errorf("short signing key: %v", err)
	}
	if _, err := parse(t, nil, map[string]string{"UPDRAFT_SHUTDOWN_TIMEOUT": "soon"}); err == nil {
		t.Error("a bad UPDRAFT_SHUTDOWN_TIMEOUT was accepted")
	}
}

func TestSigningKeyCreatedOnceWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	c := Default()
	c.DataDir = dir
	k1, err := c.LoadSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 64 {
		t.Errorf("generated key has %d characters, want 64 hex", len(k1))
	}
	st, err := os.Stat(filepath.Join(dir, SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("signing.key mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := c.LoadSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) {
		t.Error("the signing key changed between loads")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only signing.key (no temp files)", len(entries))
	}

	c.SigningKey = "from-the-environment-0123"
	k3, err := c.LoadSigningKey()
	if err != nil || string(k3) != c.SigningKey {
		t.Errorf("UPDRAFT_SIGNING_KEY not preferred: %q %v", k3, err)
	}

	if err := os.WriteFile(filepath.Join(dir, SigningKeyFile), []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.SigningKey = ""
	if _, err := c.LoadSigningKey(); err == nil {
		t.Error("a too-short signing.key was accepted")
	}
}

func TestListenErrorNamesFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	if err == nil {
		t.Fatal("second listen on the same port succeeded")
	}
	msg := ListenError("http", ln.Addr().String(), err).Error()
	want := "--http " + ln.Addr().String() + ": address already in use; choose another with --http or UPDRAFT_HTTP"
	if msg != want {
		t.Errorf("got %q\nwant %q", msg, want)
	}
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	c := Default()
	c.LogFormat = "json"
	c.LogLevel = "warn"
	log, err := c.NewLogger(&b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Errorf("json/warn logger wrote %q", b.String())
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@db:5432/ota?sslmode=disable":        "postgres://u:xxxxx@db:5432/ota?sslmode=disable",
		"s3://b?endpoint=h:9000&access_key=AK&secret_key=SK": "s3://b?access_key=xxxxx&endpoint=h%3A9000&secret_key=xxxxx",
		"sqlite:/data/updraft.db":                            "sqlite:/data/updraft.db",
		"postgres://":                                        "postgres://",
		"file:/srv/blobs":                                    "file:/srv/blobs",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	c := Default()
	c.DBURL = "postgres://u:topsecret@/x"
	c.Complete()
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("Validate error shows the password: %v", err)
	}
}
