package sim_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// warnings collects what the simulator tells the operator.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(m string) { w.mu.Lock(); w.msgs = append(w.msgs, m); w.mu.Unlock() }
func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// runFleet runs a two-device fleet against broker for a while (probe bound
// included) and returns the warnings and how many devices connected. With
// wantWarning it waits for the probe's warning (up to a minute: a loaded
// machine may start the probe late) instead of a fixed time.
func runFleet(t *testing.T, s *server.Server, broker string, wantWarning bool) ([]string, int64) {
	t.Helper()
	creds, ok := s.Credentials()
	if !ok {
		t.Fatal("no credentials")
	}
	b := make([]byte, 4)
	rand.Read(b)
	var w warnings
	f, err := sim.New(sim.Config{Server: s.URL(), KeyID: creds.AccessKeyID, KeySecret: creds.SecretAccessKey, MQTT: broker,
		Product: "probe" + hex.EncodeToString(b), Prefix: "probe-" + hex.EncodeToString(b) + "-", Count: 2, Version: "1.0", Create: true,
		ProbeTimeout: 3 * time.Second, Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for f.Stats().Connected < 2 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("timed out waiting for the two devices to connect to %s: %s", broker, f.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The probe answers (or gives up) within its bound.
	if wantWarning {
		for end := time.Now().Add(time.Minute); len(w.all()) == 0 && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
	} else {
		time.Sleep(4 * time.Second)
	}
	cancel()
	if err := testenv.Recv(t, done, time.Minute, "the fleet to stop"); err != nil {
		t.Fatal(err)
	}
	return w.all(), f.Stats().Connected
}

// A fleet on a broker the server does not serve is told so; on the server's
// own broker it is not. The foreign broker is a Mosquitto of the test's own:
// on the suite's shared one, other tests' servers (external-broker mode)
// answer any device's check.
func TestSimWarnsWhenTheBrokerIsNotTheServers(t *testing.T) {
	mosquitto := testenv.PrivateMosquitto(t)
	s := server.StartForTest(t, func(c *config.Config) { c.MQTTAddr = "127.0.0.1:0" })

	got, _ := runFleet(t, s, s.MQTTAddr(), false)
	if len(got) != 0 {
		t.Fatalf("warnings on the server's own broker: %q", got)
	}
	got, _ = runFleet(t, s, mosquitto, true)
	if len(got) != 1 || !strings.Contains(got[0], mosquitto) || !strings.Contains(got[0], "not the server's broker") {
		t.Fatalf("warnings on a foreign broker: %q; want one naming %s", got, mosquitto)
	}
}
