package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

func TestPprofOnItsOwnListenerOnly(t *testing.T) {
	s := server.StartForTest(t, func(c *config.Config) { c.PprofAddr = "127.0.0.1:0" })
	addr := s.PprofAddr()
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("PprofAddr() = %q, want the real port", addr)
	}
	resp, body := get(t, "http://"+addr+"/debug/pprof/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index = %d %.200s", resp.StatusCode, body)
	}
	resp, body = get(t, "http://"+addr+"/debug/pprof/heap?debug=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("heap profile = %d %.200s", resp.StatusCode, body)
	}
	// Never on the public listener.
	if resp, _ := get(t, s.URL()+"/debug/pprof/"); resp.StatusCode == http.StatusOK {
		t.Fatalf("/debug/pprof/ on --http answered %d", resp.StatusCode)
	}
}

func TestPprofOffByDefault(t *testing.T) {
	if got := config.Default().PprofAddr; got != "" {
		t.Fatalf("default --pprof = %q, want off", got)
	}
	s := server.StartForTest(t, nil)
	if got := s.PprofAddr(); got != "" {
		t.Fatalf("PprofAddr() = %q without --pprof", got)
	}
	if resp, _ := get(t, s.URL()+"/debug/pprof/"); resp.StatusCode == http.StatusOK {
		t.Fatalf("/debug/pprof/ answered %d without --pprof", resp.StatusCode)
	}
}

func TestPprofAddressErrorsNameTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for addr, want := range map[string]string{
		ln.Addr().String(): "--pprof " + ln.Addr().String() + ": address already in use; choose another with --pprof or UPDRAFT_PPROF",
		"localhost":        `--pprof "localhost": use host:port`,
	} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.MQTTAddr = config.Off
		cfg.Stdout = io.Discard
		cfg.PprofAddr = addr
		s, err := server.New(context.Background(), cfg, nil)
		if err == nil {
			s.Shutdown(context.Background())
			t.Fatalf("New with --pprof %s succeeded", addr)
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--pprof %s: error %q\nwant prefix %q", addr, err, want)
		}
	}
}
