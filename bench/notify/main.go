// Command notify measures P4 of issue 13: notifying -devices online devices
// of one new job, from the job's creation (POST /api/v1/jobs) to the last
// device's notice received, on a real `updraft serve` with its embedded
// broker (or, with -via-mosquitto, with a private Mosquitto as its external
// broker), against the floor under it: a raw Mosquitto fan-out of the same
// number of QoS 1 messages, one to each of as many subscribers, from one
// pipelined publisher (first publish → last message received). Each run
// uses a fresh broker/server process; the devices are bare MQTT clients in
// this process (registered once; not measured), subscribed to their notice
// topic. Reference and Updraft alternate, -pairs times.
//
//	go run ./bench/notify                       # 10 000 devices, 3 pairs
//	go run ./bench/notify -via-mosquitto
//
// Target (issue 13): Updraft ≤ 2× the raw fan-out.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

func main() {
	bin := flag.String("updraft", "", "updraft binary (default: go build ./cmd/updraft)")
	mosqBin := flag.String("mosquitto-bin", "mosquitto", "Mosquitto binary")
	devices := flag.Int("devices", 10_000, "online devices")
	pairs := flag.Int("pairs", 3, "reference/updraft pairs")
	viaMosq := flag.Bool("via-mosquitto", false, "run Updraft on a private Mosquitto (external broker) instead of its embedded one")
	extra := flag.String("serve-args", "", "extra serve flags, space-separated")
	flag.Parse()
	if err := run(*bin, *mosqBin, *devices, *pairs, *viaMosq, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "notify:", err)
		os.Exit(1)
	}
}

// tracker records the first notice of each device and when the last one
// arrived.
type tracker struct {
	got  []atomic.Bool
	n    atomic.Int64
	mu   sync.Mutex
	last time.Time
	done chan struct{}
}

func newTracker(n int) *tracker {
	return &tracker{got: make([]atomic.Bool, n), done: make(chan struct{})}
}

func (t *tracker) see(i int) {
	if t.got[i].Swap(true) {
		return
	}
	if t.n.Add(1) == int64(len(t.got)) {
		t.mu.Lock()
		t.last = time.Now()
		t.mu.Unlock()
		close(t.done)
	}
}

func (t *tracker) wait(start time.Time, limit time.Duration) (float64, error) {
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.last.Sub(start).Seconds(), nil
	case <-time.After(limit):
		return 0, fmt.Errorf("%d of %d devices got their message within %v", t.n.Load(), len(t.got), limit)
	}
}

func run(bin, mosqBin string, devices, pairs int, viaMosq bool, extra string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bench-notify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin, err = benchkit.BuildUpdraft(bin, work); err != nil {
		return err
	}
	data := work + "/data"
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	fleet := benchkit.Fleet{Product: fmt.Sprintf("ntf%d", time.Now().UnixNano()%1e6), Count: devices, Seed: "notify"}
	opts := benchkit.ServerOptions{Bin: bin, DataDir: data, MQTT: !viaMosq, Args: strings.Fields(extra)}
	srv, err := benchkit.StartServer(opts)
	if err != nil {
		return err
	}
	api := client.New(srv.Base, srv.KeyID, srv.Secret)
	t := time.Now()
	err = fleet.Register(ctx, srv.Base)
	var pkg client.Package
	if err == nil {
		content := make([]byte, 1<<20)
		_, _ = rand.Read(content)
		pkg, err = api.UploadPackage(ctx, client.PackageMetadata{Product: fleet.Product, Name: "fw", Version: "2.0"}, "fw.bin", bytes.NewReader(content))
	}
	srv.Stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "registered %d devices and a package in %.1f s\n", devices, time.Since(t).Seconds())
	side := "embedded broker"
	if viaMosq {
		side = "private Mosquitto as external broker"
	}
	fmt.Printf("P4 notify %d online devices: job created → last notice received (updraft on its %s) vs raw Mosquitto fan-out, %d pairs\n", devices, side, pairs)
	fmt.Printf("load average at start: %s\n", benchkit.LoadAverage())
	payload := bytes.Repeat([]byte("x"), 200)

	reference := func(int) (float64, error) {
		m, err := benchkit.StartMosquitto(mosqBin, work)
		if err != nil {
			return 0, err
		}
		defer m.Stop()
		tr := newTracker(devices)
		conns, err := fleet.ConnectAll(m.Addr, benchkit.ConnectOptions{Anonymous: true, OnNotice: tr.see})
		if err != nil {
			return 0, err
		}
		defer benchkit.CloseAll(conns)
		time.Sleep(time.Second)
		pub, err := benchkit.DialMQTT(m.Addr, fmt.Sprintf("bench-publisher-%d", time.Now().UnixNano()), "", "")
		if err != nil {
			return 0, err
		}
		defer pub.Close()
		// A window of 1000 unacknowledged QoS 1 publishes, like a pipelined client.
		window := make(chan struct{}, 1000)
		go func() { _ = pub.Listen(nil, func() { <-window }) }()
		start := time.Now()
		for i := 0; i < devices; i++ {
			window <- struct{}{}
			if err := pub.Publish(wire.Topic(fleet.Product, fleet.Name(i), wire.TopicNotice), 1, payload); err != nil {
				return 0, err
			}
		}
		return tr.wait(start, 2*time.Minute)
	}
	updraft := func(int) (float64, error) {
		o := opts
		var m *benchkit.Mosquitto
		addr := ""
		if viaMosq {
			if m, err = benchkit.StartMosquitto(mosqBin, work, "max_queued_messages 0", "max_inflight_messages 100"); err != nil {
				return 0, err
			}
			defer m.Stop()
			id := fmt.Sprintf("updraft-bench-%d", time.Now().UnixNano())
			o.Args = append(o.Args, "--mqtt-broker", fmt.Sprintf("mqtt://%s?client_id=%s&group=%s", m.Addr, id, id))
			addr = m.Addr
		}
		srv, err := benchkit.StartServer(o)
		if err != nil {
			return 0, err
		}
		defer srv.Stop()
		if addr == "" {
			addr = srv.MQTT
		}
		tr := newTracker(devices)
		conns, err := fleet.ConnectAll(addr, benchkit.ConnectOptions{Version: "1.0", OnNotice: tr.see, ReportOnline: viaMosq})
		if err != nil {
			return 0, err
		}
		defer benchkit.CloseAll(conns)
		api := client.New(srv.Base, srv.KeyID, srv.Secret)
		deadline := time.Now().Add(2 * time.Minute)
		for {
			l, err := api.ListDevices(ctx, fleet.Product, client.DeviceFilter{Module: "default", Versions: []string{"1.0"}, Page: client.Page{Limit: 1}})
			if err != nil {
				return 0, err
			}
			if l.Total == int64(devices) {
				break
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("the server saw the version of %d of %d devices", l.Total, devices)
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(time.Second)
		start := time.Now()
		job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "notify", Target: client.JobTarget{All: true}, MaxConcurrency: devices})
		if err != nil {
			return 0, err
		}
		secs, err := tr.wait(start, 3*time.Minute)
		if _, cerr := api.CancelJob(ctx, job.ID); cerr != nil && err == nil {
			err = fmt.Errorf("canceling the job for the next run: %w", cerr)
		}
		return secs, err
	}
	p, err := benchkit.RunPairs(ctx, pairs, reference, updraft, func(r, u float64) float64 { return u / r })
	if err != nil {
		return err
	}
	fmt.Printf("raw mosquitto fan-out s  %s\n", benchkit.Summarize(p.Ref))
	fmt.Printf("updraft job → last s     %s\n", benchkit.Summarize(p.Upd))
	fmt.Printf("P4 ratio updraft/raw %s   target ≤ 2\n", benchkit.Summarize(p.Ratio))
	fmt.Printf("load average at end: %s\n", benchkit.LoadAverage())
	return nil
}
