package server

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestListenFallsBackOnlyFromTheDefault: a taken default port moves to the
// next free one; a taken port the operator chose is an error naming the flag.
func TestListenFallsBackOnlyFromTheDefault(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	ln, err := listen(log, "mqtt", addr, addr) // addr is the default here
	if err != nil {
		t.Fatalf("no fallback from the busy default %s: %v", addr, err)
	}
	defer ln.Close()
	_, busyPort, _ := net.SplitHostPort(addr)
	_, gotPort, _ := net.SplitHostPort(ln.Addr().String())
	b, _ := strconv.Atoi(busyPort)
	g, _ := strconv.Atoi(gotPort)
	if g <= b || g > b+10 {
		t.Fatalf("fell back to port %d, want one of %d..%d", g, b+1, b+10)
	}

	_, err = listen(log, "mqtt", addr, "127.0.0.1:1") // addr is the operator's choice
	if err == nil || !strings.Contains(err.Error(), "--mqtt "+addr+": address already in use; choose another with --mqtt or UPDRAFT_MQTT") {
		t.Fatalf("explicit address in use: got %v", err)
	}
}
