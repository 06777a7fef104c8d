package device

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apidevice "github.com/updraft-ota/updraft/internal/api/device"
	"github.com/updraft-ota/updraft/internal/deviceproto/deviceprototest"
	"github.com/updraft-ota/updraft/internal/mqtt"
	"github.com/updraft-ota/updraft/internal/ota"
)

const waitFor = 10 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startBroker(t *testing.T, f *deviceprototest.Fake, addr string) *mqtt.Broker {
	t.Helper()
	b, err := mqtt.NewBroker(f, mqtt.BrokerOptions{Addr: addr, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func otaNotice(p, d string, task int64, n Notice) ota.Notice {
	return ota.Notice{TaskID: task, ProductKey: p, DeviceName: d, Module: n.Module, Version: n.Version, URL: n.URL,
		Size: n.Size, SHA256: n.SHA256, MD5: n.MD5, SignMethod: ota.SignMethod(n.SignMethod), Sign: n.Sign}
}

// upgrader is the handler of a well-behaved device: download, verify,
// report progress and the new version. calls counts the runs that have
// returned: the server applies the version report before its answer
// reaches the device, so a test that closes the device as soon as it sees
// the new version cancels the report under the handler.
func upgrader(t *testing.T, dev Client, calls *atomic.Int32, got *memFile) Handler {
	return func(ctx context.Context, n Notice) {
		defer calls.Add(1)
		if err := dev.ReportProgress(ctx, Progress{TaskID: n.TaskID, Module: n.Module, Step: 10, Desc: "downloading"}); err != nil {
			t.Errorf("progress: %v", err)
		}
		if err := (&Downloader{Backoff: time.Millisecond}).Download(ctx, n, got); err != nil {
			dev.ReportProgress(ctx, Progress{TaskID: n.TaskID, Step: FailureStep(err), Desc: err.Error()})
			return
		}
		if err := dev.ReportVersion(ctx, n.Module, n.Version); err != nil {
			t.Errorf("version: %v", err)
		}
	}
}

func TestMQTTUpgrade(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s3cret")
	pkg := newPkgServer(t, 300_000)
	pkg.cuts, pkg.cutAt = 1, 100_000 // the download is interrupted once
	f.SetPending(otaNotice("p", "d", 11, pkg.notice()))
	b := startBroker(t, f, "127.0.0.1:0")

	dev, err := NewMQTT(MQTTConfig{Config: Config{Product: "p", Name: "d", Secret: "s3cret", Versions: map[string]string{"default": "1.0"}, Logger: quiet()},
		Broker: b.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var got memFile
	dev.OnNotice(upgrader(t, dev, &calls, &got))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()

	eventually(t, "new version reported", func() bool {
		v := f.Versions()
		return len(v) == 2 && v[1].Version == "2.0"
	})
	eventually(t, "the handler to return", func() bool { return calls.Load() >= 1 })
	if v := f.Versions(); v[0] != (deviceprototest.VersionCall{Device: ref, Module: "default", Version: "1.0"}) {
		t.Fatalf("first report %+v", v[0])
	}
	if !bytes.Equal(got.Bytes(), pkg.content) {
		t.Fatal("downloaded bytes differ")
	}
	if p := f.Progress(); len(p) != 1 || p[0].Progress.TaskID != 11 || p[0].Progress.Step != 10 {
		t.Fatalf("progress %+v", p)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
	if on, _ := f.Online(ref); !on {
		t.Fatal("device not online")
	}

	// A pushed notice (the next job) arrives on the open connection.
	n2 := otaNotice("p", "d", 12, pkg.notice())
	n2.Version = "3.0"
	if err := b.Notify(ctx, []ota.Notice{n2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second upgrade", func() bool { v := f.Versions(); return len(v) == 3 && v[2].Version == "3.0" })

	// Check asks explicitly.
	if n, err := dev.Check(ctx, ""); err != nil || n != nil {
		t.Fatalf("check = %+v, %v", n, err)
	}
	f.SetPending(otaNotice("p", "d", 13, pkg.notice()))
	if n, err := dev.Check(ctx, "default"); err != nil || n == nil || n.TaskID != 13 {
		t.Fatalf("check = %+v, %v", n, err)
	}
}

func TestMQTTReconnectsAndReportsAgain(t *testing.T) {
	f := deviceprototest.New()
	ref := f.AddDevice("p", "d", "s")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := startBroker(t, f, addr)

	var connects, lost atomic.Int32
	dev, err := NewMQTT(MQTTConfig{Config: Config{Product: "p", Name: "d", Secret: "s", Versions: map[string]string{"default": "1.0", "modem": "7"}, Logger: quiet()},
		Broker: addr, MaxReconnectInterval: 100 * time.Millisecond, ConnectTimeout: 2 * time.Second,
		OnConnect: func() { connects.Add(1) }, OnConnectionLost: func(error) { lost.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int64
	dev.OnNotice(func(_ context.Context, n Notice) { mu.Lock(); seen = append(seen, n.TaskID); mu.Unlock() })
	if err := dev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	eventually(t, "two versions", func() bool { return len(f.Versions()) == 2 })

	// The server goes away and comes back on the same address, with an
	// upgrade waiting for the device.
	b.Close()
	eventually(t, "connection lost", func() bool { return lost.Load() == 1 })
	f.SetPending(ota.Notice{TaskID: 77, ProductKey: "p", DeviceName: "d", Module: "modem", Version: "8", URL: "http://x"})
	startBroker(t, f, addr)
	eventually(t, "reconnected", func() bool { return connects.Load() == 2 })
	eventually(t, "versions reported again", func() bool { return len(f.Versions()) == 4 })
	eventually(t, "pending notice after reconnect", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 && seen[0] == 77 })
	if on, n := f.Online(ref); !on || n != 2 {
		t.Fatalf("online=%v connects=%d", on, n)
	}
}

func TestMQTTResendsWhenServerCannotTakeReport(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	b := startBroker(t, f, "127.0.0.1:0")
	dev, err := NewMQTT(MQTTConfig{Config: Config{Product: "p", Name: "d", Secret: "s", Logger: quiet()},
		Broker: b.Addr().String(), AckTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	// The store is down for the first try: the broker withholds the PUBACK,
	// the device sends the report again, and it is recorded.
	f.FailNext(&ota.Error{Code: ota.CodeUnavailable, Message: "db down"})
	if err := dev.ReportVersion(context.Background(), "", "5.0"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "report recorded", func() bool { return len(f.Versions()) >= 1 })
	for _, v := range f.Versions() {
		if v.Version != "5.0" {
			t.Fatalf("versions %+v", f.Versions())
		}
	}
}

func TestMQTTRefusesBadSecret(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "right")
	b := startBroker(t, f, "127.0.0.1:0")
	dev, _ := NewMQTT(MQTTConfig{Config: Config{Product: "p", Name: "d", Secret: "wrong", Logger: quiet()}, Broker: b.Addr().String()})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := dev.Start(ctx); err == nil {
		dev.Close()
		t.Fatal("connected with a wrong secret")
	}
}

func TestHTTPUpgrade(t *testing.T) {
	f := deviceprototest.New()
	f.AddDevice("p", "d", "s")
	pkg := newPkgServer(t, 50_000)
	mux := http.NewServeMux()
	mux.Handle(apidevice.Prefix+"/", apidevice.New(f, apidevice.Options{Log: quiet(), PollInterval: time.Second}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dev, err := NewHTTP(HTTPConfig{Config: Config{Product: "p", Name: "d", Secret: "s", Versions: map[string]string{"default": "1.0"}, Logger: quiet()},
		Server: srv.URL, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var got memFile
	dev.OnNotice(upgrader(t, dev, &calls, &got))
	if err := dev.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	eventually(t, "initial version", func() bool { return len(f.Versions()) == 1 })

	f.SetPending(otaNotice("p", "d", 5, pkg.notice()))
	eventually(t, "upgrade", func() bool { v := f.Versions(); return len(v) == 2 && v[1].Version == "2.0" })
	eventually(t, "the handler to return", func() bool { return calls.Load() >= 1 })
	if !bytes.Equal(got.Bytes(), pkg.content) {
		t.Fatal("bytes differ")
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
	if n, err := dev.Check(context.Background(), ""); err != nil || n != nil {
		t.Fatalf("check after upgrade = %+v, %v", n, err)
	}

	bad, _ := NewHTTP(HTTPConfig{Config: Config{Product: "p", Name: "d", Secret: "wrong", Logger: quiet()}, Server: srv.URL})
	err = bad.ReportVersion(context.Background(), "", "1")
	if e, ok := err.(*APIError); !ok || e.Status != 401 || e.Body.Code != "unauthenticated" {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestDuplicateNoticesRunOnce(t *testing.T) {
	d := newDispatcher()
	release := make(chan struct{})
	var calls atomic.Int32
	d.setHandler(func(context.Context, Notice) { calls.Add(1); <-release })
	n := Notice{TaskID: 1, Attempt: 1}
	if !d.deliver(n) || d.deliver(n) {
		t.Fatal("duplicate of a running notice delivered")
	}
	close(release)
	eventually(t, "handler done", func() bool { return !d.busy("default") && calls.Load() == 1 })
	if d.deliver(n) {
		t.Fatal("a late copy of a finished attempt was delivered again")
	}
	if !d.deliver(Notice{TaskID: 1, Attempt: 2}) {
		t.Fatal("a retry (new attempt) was not delivered")
	}
	d.close()
	if calls.Load() != 2 {
		t.Fatalf("handler ran %d times", calls.Load())
	}
}

// TestRetryArrivingDuringHandlerRuns: the server retries as soon as the device
// reports a failure, so the retry's notice can arrive while the failed
// attempt's handler is still returning. It must run after it, not be dropped.
func TestRetryArrivingDuringHandlerRuns(t *testing.T) {
	d := newDispatcher()
	release := make(chan struct{})
	var mu sync.Mutex
	var ran []int
	d.setHandler(func(_ context.Context, n Notice) {
		mu.Lock()
		ran = append(ran, n.Attempt)
		mu.Unlock()
		if n.Attempt == 1 {
			<-release
		}
	})
	if !d.deliver(Notice{TaskID: 1, Attempt: 1}) {
		t.Fatal("first notice not delivered")
	}
	if !d.deliver(Notice{TaskID: 1, Attempt: 2}) {
		t.Fatal("the retry arriving during attempt 1 was dropped")
	}
	if d.deliver(Notice{TaskID: 1, Attempt: 2}) || d.deliver(Notice{TaskID: 1, Attempt: 1}) {
		t.Fatal("a copy was accepted while the retry waits")
	}
	close(release)
	eventually(t, "both attempts ran", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 2
	})
	d.close()
	mu.Lock()
	defer mu.Unlock()
	if ran[0] != 1 || ran[1] != 2 {
		t.Fatalf("ran attempts %v, want [1 2]", ran)
	}
}
