// Command brokermem measures P7 of issue 13: the memory the embedded MQTT
// broker of a real `updraft serve` holds per connected idle device, against
// a private Mosquitto holding the same clients (same client ids, same
// subscription: each device's notice topic at QoS 1). Each run starts a
// fresh broker process, reads its RSS, connects -devices bare MQTT clients
// from this process, waits -settle, reads the RSS again:
// (after - before) / devices. Mosquitto and Updraft alternate, -pairs times.
//
//	go run ./bench/brokermem                    # 10 000 devices, 3 pairs
//	go run ./bench/brokermem -devices 5000 -pairs 5
//
// The devices are registered once (not measured). Target (issue 13):
// ≤ 4 KB per device.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
)

func main() {
	bin := flag.String("updraft", "", "updraft binary (default: go build ./cmd/updraft)")
	mosq := flag.String("mosquitto-bin", "mosquitto", "Mosquitto binary")
	devices := flag.Int("devices", 10_000, "connected idle devices")
	pairs := flag.Int("pairs", 3, "mosquitto/updraft pairs")
	settle := flag.Duration("settle", 3*time.Second, "wait after the last connect before reading RSS")
	extra := flag.String("serve-args", "", "extra serve flags, space-separated")
	profile := flag.String("profile", "", "save the server's heap profile (heap-N.pprof) and goroutine dump after each Updraft run in this directory (runs it with --pprof)")
	flag.Parse()
	if err := run(*bin, *mosq, *devices, *pairs, *settle, *extra, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "brokermem:", err)
		os.Exit(1)
	}
}

func run(bin, mosqBin string, devices, pairs int, settle time.Duration, extra, profile string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bench-brokermem-")
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
	fleet := benchkit.Fleet{Product: fmt.Sprintf("mem%d", time.Now().UnixNano()%1e6), Count: devices, Seed: "brokermem"}
	opts := benchkit.ServerOptions{Bin: bin, DataDir: data, MQTT: true, Args: strings.Fields(extra)}
	pprofAddr := ""
	if profile != "" {
		if pprofAddr, err = benchkit.FreeAddr(); err != nil {
			return err
		}
	}
	srv, err := benchkit.StartServer(opts)
	if err != nil {
		return err
	}
	t := time.Now()
	err = fleet.Register(ctx, srv.Base)
	srv.Stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "registered %d devices in %.1f s\n", devices, time.Since(t).Seconds())
	fmt.Printf("P7 broker memory per connected idle device: %d devices, %d pairs, settle %v\n", devices, pairs, settle)
	fmt.Printf("load average at start: %s\n", benchkit.LoadAverage())

	run := 0
	measure := func(pid int, addr string, anonymous bool) (float64, error) {
		time.Sleep(time.Second)
		before, err := benchkit.StatusKB(pid, "VmRSS")
		if err != nil {
			return 0, err
		}
		t := time.Now()
		conns, err := fleet.ConnectAll(addr, benchkit.ConnectOptions{Anonymous: anonymous})
		if err != nil {
			return 0, err
		}
		defer benchkit.CloseAll(conns)
		connected := time.Since(t)
		time.Sleep(settle)
		after, err := benchkit.StatusKB(pid, "VmRSS")
		if err != nil {
			return 0, err
		}
		perDevice := float64(after-before) * 1024 / float64(devices) / 1000 // KB (10^3 bytes) per device
		if !anonymous && pprofAddr != "" {
			run++
			for name, path := range map[string]string{fmt.Sprintf("heap-%d.pprof", run): "heap", fmt.Sprintf("goroutine-%d.txt", run): "goroutine?debug=1", fmt.Sprintf("memstats-%d.txt", run): "heap?debug=1"} {
				if err := benchkit.SaveURL("http://"+pprofAddr+"/debug/pprof/"+path, filepath.Join(profile, name)); err != nil {
					return 0, err
				}
			}
		}
		fmt.Fprintf(os.Stderr, "  pid %d: RSS %d → %d KiB, connected in %.1f s: %.2f KB per device\n", pid, before, after, connected.Seconds(), perDevice)
		return perDevice, nil
	}
	p, err := benchkit.RunPairs(ctx, pairs,
		func(int) (float64, error) {
			m, err := benchkit.StartMosquitto(mosqBin, work)
			if err != nil {
				return 0, err
			}
			defer m.Stop()
			return measure(m.Cmd.Process.Pid, m.Addr, true)
		},
		func(int) (float64, error) {
			o := opts
			if pprofAddr != "" {
				o.Args = append(o.Args, "--pprof", pprofAddr)
			}
			srv, err := benchkit.StartServer(o)
			if err != nil {
				return 0, err
			}
			defer srv.Stop()
			return measure(srv.Pid(), srv.MQTT, false)
		},
		func(r, u float64) float64 { return u / r })
	if err != nil {
		return err
	}
	fmt.Printf("mosquitto KB/device  %s\n", benchkit.Summarize(p.Ref))
	fmt.Printf("updraft KB/device    %s   target ≤ 4 KB\n", benchkit.Summarize(p.Upd))
	fmt.Printf("P7 ratio updraft/mosquitto %s\n", benchkit.Summarize(p.Ratio))
	fmt.Printf("load average at end: %s\n", benchkit.LoadAverage())
	return nil
}
