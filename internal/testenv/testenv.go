// Package testenv finds the external services tests run against (PostgreSQL,
// an S3-compatible server, Mosquitto). Under CI=true a missing service fails
// the test, never skips it: .ci/run installs and starts them all.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CI reports whether tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// missing fails under CI and skips otherwise.
func missing(tb testing.TB, what, hint string) {
	tb.Helper()
	if CI() {
		tb.Fatalf("%s is required under CI=true but is not reachable: %s", what, hint)
	}
	tb.Skipf("%s not reachable (%s); set CI=true to make this a failure", what, hint)
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// PostgresDSN returns the DSN of the test PostgreSQL server
// (UPDRAFT_TEST_POSTGRES, default the local trust-auth server's database test).
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := env("UPDRAFT_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if !reachable(env("UPDRAFT_TEST_POSTGRES_ADDR", "127.0.0.1:5432")) {
		missing(tb, "PostgreSQL", "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
	}
	return dsn
}

// S3 describes the test S3-compatible server.
type S3 struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Region    string
}

// S3Server returns the test S3 server (UPDRAFT_TEST_S3_ENDPOINT, _ACCESS_KEY,
// _SECRET_KEY; defaults match .ci/s3.sh).
func S3Server(tb testing.TB) S3 {
	tb.Helper()
	s := S3{
		Endpoint:  env("UPDRAFT_TEST_S3_ENDPOINT", "127.0.0.1:7070"),
		AccessKey: env("UPDRAFT_TEST_S3_ACCESS_KEY", "updraft"),
		SecretKey: env("UPDRAFT_TEST_S3_SECRET_KEY", "updraft-secret"),
		Region:    env("UPDRAFT_TEST_S3_REGION", "us-east-1"),
	}
	if !reachable(s.Endpoint) {
		missing(tb, "the S3 test server", "run: bash .ci/s3.sh")
	}
	return s
}

// MosquittoAddr returns the address of the real Mosquitto broker
// (UPDRAFT_TEST_MOSQUITTO, default 127.0.0.1:1883).
func MosquittoAddr(tb testing.TB) string {
	tb.Helper()
	addr := env("UPDRAFT_TEST_MOSQUITTO", "127.0.0.1:1883")
	if !reachable(addr) {
		missing(tb, "Mosquitto", "start it with: mosquitto -d -c /etc/mosquitto/mosquitto.conf")
	}
	return addr
}

// Chromium returns the path of the headless browser for browser tests
// (UPDRAFT_TEST_CHROMIUM, default Debian's /usr/bin/chromium, which .ci/run
// installs).
func Chromium(tb testing.TB) string {
	tb.Helper()
	path := env("UPDRAFT_TEST_CHROMIUM", "/usr/bin/chromium")
	if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		missing(tb, "Chromium ("+path+")", "apt-get install -y chromium, or set UPDRAFT_TEST_CHROMIUM")
	}
	return path
}

// NodePackage returns the path of node for a test that runs a Node script
// from dir, once the npm package pkg is installed in dir/node_modules
// (.ci/run installs it with npm ci from dir's package-lock.json).
func NodePackage(tb testing.TB, dir, pkg string) string {
	tb.Helper()
	node, err := exec.LookPath(env("UPDRAFT_TEST_NODE", "node"))
	if err != nil {
		missing(tb, "node", "apt-get install -y nodejs, or set UPDRAFT_TEST_NODE")
		return ""
	}
	if st, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil || st.IsDir() {
		missing(tb, "the npm package "+pkg, "run: (cd "+dir+" && npm ci --ignore-scripts)")
	}
	return node
}
