package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
)

// TestSecretKey is the secret key of StartForTest's servers.
const TestSecretKey = "test-secret-key-0123456789abcdef0123456789abcdef"

// StartForTest runs a real server in-process for end-to-end tests: a temporary
// data directory, SQLite, file blobs, HTTP on 127.0.0.1:0, MQTT off (mutate
// may change any of it, e.g. set MQTTAddr to "127.0.0.1:0"). The server is shut
// down when the test ends; its log is printed only if the test failed.
// Environment variables are not read: the test controls the configuration.
func StartForTest(t testing.TB, mutate func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MQTTAddr = config.Off
	cfg.LogLevel = "debug"
	cfg.Stdout = io.Discard
	cfg.ShutdownTimeout = 10 * time.Second
	// One secret key for every test server, as replicas of one database
	// must share it (a test of the generated key file sets it to "").
	cfg.SecretKey = TestSecretKey
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	level, err := config.ParseLevel(cfg.LogLevel)
	if err != nil {
		t.Fatalf("StartForTest: %v", err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("StartForTest: %v\n%s", err, logs.String())
	}
	if err := s.Start(); err != nil {
		_ = s.Shutdown(ctx)
		t.Fatalf("StartForTest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s
}

// syncBuffer is a log sink that background goroutines may write to safely.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
