package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/updraft-ota/updraft/internal/api/httpx"
	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/service"
	"github.com/updraft-ota/updraft/internal/testenv"
)

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHealthzAndMetrics(t *testing.T) {
	s := server.StartForTest(t, nil)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the real port", s.Addr())
	}
	resp, body := get(t, s.URL()+"/healthz")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get(httpx.RequestIDHeader) == "" {
		t.Error("no request id on the response")
	}
	get(t, s.URL()+"/no/such/path")

	resp, body = get(t, s.URL()+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`updraft_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`,
		`updraft_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`updraft_http_request_duration_seconds_count{method="GET",route="GET /healthz"} 1`,
		"go_goroutines",
		"process_open_fds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if s.PublicURL() != s.URL() {
		t.Errorf("derived public URL %q, want %q", s.PublicURL(), s.URL())
	}
}

func TestHealthzReportsStoreDown(t *testing.T) {
	s := server.StartForTest(t, nil)
	if err := s.Store().Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.URL()+"/healthz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Errorf("/healthz with the store closed = %d %s", resp.StatusCode, body)
	}
}

func TestPortInUseNamesTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = ln.Addr().String()
	cfg.MQTTAddr = config.Off
	cfg.Stdout = io.Discard
	s, err := server.New(context.Background(), cfg, nil)
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("New succeeded on a port in use")
	}
	want := "--http " + ln.Addr().String() + ": address already in use; choose another with --http or UPDRAFT_HTTP"
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}

// TestFailedStartWritesNothing: a start that cannot get its MQTT port fails
// before the first tenant's key is printed and saved, so the one-time print
// is not spent on a server that never ran.
func TestFailedStartWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MQTTAddr = ln.Addr().String()
	var out strings.Builder
	cfg.Stdout = &out
	s, err := server.New(context.Background(), cfg, nil)
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatal("New succeeded on an MQTT port in use")
	}
	if !strings.Contains(err.Error(), "--mqtt "+ln.Addr().String()+": address already in use") {
		t.Errorf("error %q does not name --mqtt", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, server.CredentialsFile)); !os.IsNotExist(err) {
		t.Errorf("credentials.json written by a failed start (stat: %v)", err)
	}
	if out.Len() != 0 {
		t.Errorf("a failed start printed: %q", out.String())
	}
}

func TestInvalidConfigRefused(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DBURL = "mysql://nope"
	if _, err := server.New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Errorf("New with a bad --db = %v", err)
	}
}

func TestCredentialsWrittenOnceAndDataKept(t *testing.T) {
	dir := t.TempDir()
	var out1 bytes.Buffer
	s := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir; c.Stdout = &out1 })
	creds, ok := s.Credentials()
	if !ok || !s.CreatedTenant() {
		t.Fatal("first start created no credentials")
	}
	path := filepath.Join(dir, server.CredentialsFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant": "default", "access_key_id": creds.AccessKeyID,
		"secret_access_key": creds.SecretAccessKey, "server": "http://" + s.Addr()}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("credentials.json = %v, want %v", m, want)
	}
	if !strings.Contains(out1.String(), creds.SecretAccessKey) || !strings.Contains(out1.String(), path) {
		t.Errorf("the first start did not print the key and the file: %q", out1.String())
	}
	p, err := s.Service().Authenticate(context.Background(), creds.AccessKeyID, creds.SecretAccessKey)
	if err != nil || p.TenantID != "default" {
		t.Fatalf("the printed key does not authenticate: %v", err)
	}
	if _, err := s.Service().CreateProduct(context.Background(), p, ota.Product{Key: "kept", Name: "Kept"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Restart on the same data: no new tenant, no rewrite, no print, data kept.
	var out2 bytes.Buffer
	s2 := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir; c.Stdout = &out2 })
	if s2.CreatedTenant() {
		t.Error("the restart created a tenant again")
	}
	if out2.Len() != 0 {
		t.Errorf("the restart printed %q", out2.String())
	}
	// The restart bound another port (":0"): the file follows it, and
	// keeps the key.
	want2 := creds
	want2.Server = s2.URL()
	if c2, ok := s2.Credentials(); !ok || c2 != want2 {
		t.Errorf("Credentials() after restart = %+v, %v; want %+v", c2, ok, want2)
	}
	if _, err := s2.Service().GetProduct(context.Background(), p, "kept"); err != nil {
		t.Errorf("product lost across the restart: %v", err)
	}
	if n, _ := s2.Store().CountTenants(context.Background()); n != 1 {
		t.Errorf("tenants after restart = %d", n)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left in the data dir: %s", e.Name())
		}
	}
}

func TestBootstrapFromEnvironment(t *testing.T) {
	t.Setenv("UPDRAFT_BOOTSTRAP_TENANT", "acme")
	t.Setenv("UPDRAFT_BOOTSTRAP_ACCESS_KEY", "AKACMEENV01")
	t.Setenv("UPDRAFT_BOOTSTRAP_SECRET_KEY", "env-secret-0123456789")
	s := server.StartForTest(t, func(c *config.Config) {
		// The same path as `updraft serve`: flags bound, env applied.
		fs := pflagSet(c)
		if err := c.ApplyEnv(fs, os.LookupEnv); err != nil {
			t.Fatal(err)
		}
	})
	creds, ok := s.Credentials()
	want := server.Credentials{Tenant: "acme", AccessKeyID: "AKACMEENV01", SecretAccessKey: "env-secret-0123456789", Server: "http://" + s.Addr()}
	if !ok || creds != want {
		t.Fatalf("credentials %+v, want %+v", creds, want)
	}
	resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", "Bearer AKACMEENV01:env-secret-0123456789")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("management API with the env key = %d %s", resp.StatusCode, body)
	}
}

func TestManagementAPIMounted(t *testing.T) {
	s := server.StartForTest(t, nil)
	creds, _ := s.Credentials()
	resp, body := get(t, s.URL()+"/api/v1/products", "Authorization", "Bearer "+creds.AccessKeyID+":"+creds.SecretAccessKey)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/products = %d %s", resp.StatusCode, body)
	}
	// One request id across the server's log, the header and the error body.
	resp, body = get(t, s.URL()+"/api/v1/products", "X-Request-Id", "trace-me-42")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(httpx.RequestIDHeader) != "trace-me-42" ||
		!strings.Contains(body, `"request_id":"trace-me-42"`) {
		t.Errorf("unauthenticated call = %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, body = get(t, s.URL()+"/api/v1/products")
	var eb httpx.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.RequestID == "" || eb.RequestID != resp.Header.Get(httpx.RequestIDHeader) {
		t.Errorf("generated request id: header %q body %s", resp.Header.Get(httpx.RequestIDHeader), body)
	}
}

// A package uploaded through the service downloads through the signed URL the
// server's /blob/ handler serves, with Range.
func TestBlobDownloadThroughSignedURL(t *testing.T) {
	s := server.StartForTest(t, nil)
	ctx := context.Background()
	creds, _ := s.Credentials()
	p := service.Principal{TenantID: creds.Tenant, AccessKeyID: creds.AccessKeyID}
	if _, err := s.Service().CreateProduct(ctx, p, ota.Product{Key: "sensor", Name: "Sensor"}); err != nil {
		t.Fatal(err)
	}
	content := strings.Repeat("0123456789", 1000)
	pkg, err := s.Service().CreatePackage(ctx, p, ota.Package{ProductKey: "sensor", Name: "fw", Version: "2.0"}, "fw.bin", strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Service().PackageURL(ctx, pkg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, s.URL()+"/blob/") {
		t.Fatalf("download URL %q is not under %s/blob/", u, s.URL())
	}
	resp, body := get(t, u)
	if resp.StatusCode != http.StatusOK || body != content {
		t.Fatalf("download = %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = get(t, u, "Range", "bytes=9990-")
	if resp.StatusCode != http.StatusPartialContent || body != content[9990:] {
		t.Errorf("ranged download = %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, u+"x")
	if resp.StatusCode < 400 {
		t.Errorf("a tampered URL was served: %d", resp.StatusCode)
	}
}

// Shutdown lets a download in flight finish.
func TestShutdownDrainsInFlight(t *testing.T) {
	s := server.StartForTest(t, nil)
	ctx := context.Background()
	creds, _ := s.Credentials()
	p := service.Principal{TenantID: creds.Tenant}
	if _, err := s.Service().CreateProduct(ctx, p, ota.Product{Key: "sensor", Name: "Sensor"}); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("updraft!"), 4<<20) // 32 MB: more than socket buffers hold
	pkg, err := s.Service().CreatePackage(ctx, p, ota.Package{ProductKey: "sensor", Name: "big", Version: "2.0"}, "big.bin", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.Service().PackageURL(ctx, pkg)
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 1024)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- s.Shutdown(sctx)
	}()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("download cut by shutdown: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, content) {
		t.Errorf("downloaded %d bytes, want %d", len(got), len(content))
	}
	if err := testenv.Recv(t, done, time.Minute, "Shutdown to return"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get(s.URL() + "/healthz"); err == nil {
		t.Error("the server still answers after Shutdown")
	}
	if err := testenv.Recv(t, s.Err(), time.Minute, "the HTTP server to exit"); err != nil {
		t.Errorf("Err() after Shutdown = %v", err)
	}
}

func TestPostgres(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	ctx := context.Background()
	// A database of its own: the shared test database holds other tests' tenants.
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	name := "updraft_server_" + ota.NewID(time.Now())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	cfgDSN, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	own := strings.Replace(dsn, "/"+cfgDSN.Database+"?", "/"+name+"?", 1)
	if own == dsn {
		t.Fatalf("cannot derive a DSN for database %s from %q", name, dsn)
	}
	dir := t.TempDir()
	s := server.StartForTest(t, func(c *config.Config) { c.DBURL = own; c.DataDir = dir })
	resp, body := get(t, s.URL()+"/healthz")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz on PostgreSQL = %d %s", resp.StatusCode, body)
	}
	creds, ok := s.Credentials()
	if !ok || !s.CreatedTenant() {
		t.Fatal("no tenant bootstrapped on an empty PostgreSQL database")
	}
	if _, err := s.Service().Authenticate(ctx, creds.AccessKeyID, creds.SecretAccessKey); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := server.StartForTest(t, func(c *config.Config) { c.DBURL = own; c.DataDir = dir })
	if s2.CreatedTenant() {
		t.Error("restart on PostgreSQL bootstrapped again")
	}
}

// credentials.json records the addresses the server really bound, MQTT
// included, and a later start on other ports updates them (keeping the key);
// /healthz reports the same MQTT address.
func TestCredentialsRecordBoundAddresses(t *testing.T) {
	dir := t.TempDir()
	start := func() (*server.Server, server.Credentials) {
		s := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir; c.MQTTAddr = "127.0.0.1:0" })
		c, err := server.ReadCredentials(filepath.Join(dir, server.CredentialsFile))
		if err != nil {
			t.Fatal(err)
		}
		if c.Server != s.URL() || c.MQTT != s.MQTTAddr() || c.MQTT == "" {
			t.Fatalf("credentials.json server %q mqtt %q; the server bound %q and %q", c.Server, c.MQTT, s.URL(), s.MQTTAddr())
		}
		resp, body := get(t, s.URL()+"/healthz")
		var h map[string]string
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil || h["mqtt"] != s.MQTTAddr() {
			t.Fatalf("/healthz = %d %s; want mqtt %q", resp.StatusCode, body, s.MQTTAddr())
		}
		return s, c
	}
	s1, c1 := start()
	if err := s1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Hold the first start's ports so the second one cannot get them back.
	for _, addr := range []string{s1.Addr(), s1.MQTTAddr()} {
		if ln, err := net.Listen("tcp", addr); err == nil {
			defer ln.Close()
		}
	}
	_, c2 := start()
	if c2.Server == c1.Server || c2.MQTT == c1.MQTT {
		t.Fatalf("the second start on new ports left credentials.json at %q %q", c2.Server, c2.MQTT)
	}
	if c2.AccessKeyID != c1.AccessKeyID || c2.SecretAccessKey != c1.SecretAccessKey {
		t.Fatal("updating the addresses changed the key")
	}
}

// A second server on the same data directory refuses to start, naming the
// first; once the first stops, the directory is free again.
func TestSecondServerOnSameDataRefused(t *testing.T) {
	dir := t.TempDir()
	first := server.StartForTest(t, func(c *config.Config) { c.DataDir = dir })
	cfg := config.Default()
	cfg.SecretKey = server.TestSecretKey // the first start sealed its key with it
	cfg.DataDir, cfg.HTTPAddr, cfg.MQTTAddr, cfg.Stdout = dir, "127.0.0.1:0", config.Off, io.Discard
	_, err := server.New(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "another updraft serve") || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second server on the same --data: %v; want a refusal naming the running one", err)
	}
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	s.Shutdown(context.Background())
}
