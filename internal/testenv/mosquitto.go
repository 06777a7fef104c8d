package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// PrivateMosquitto starts a Mosquitto of the test's own on a free local
// port and returns its address; it stops with the test. Use it where no
// other test's server may consume the broker: every Updraft server on a
// shared broker answers devices' requests there.
func PrivateMosquitto(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		missing(tb, "the mosquitto binary", "apt-get install -y mosquitto")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(tb.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting mosquitto: %v", err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for end := time.Now().Add(10 * time.Second); !reachable(addr); {
		if time.Now().After(end) {
			tb.Fatalf("mosquitto did not listen on %s within 10 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}
