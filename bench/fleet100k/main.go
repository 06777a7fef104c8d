// Command fleet100k upgrades a fleet of -devices registered devices (100 000
// by default) with one static job, the way a large fleet reaches one server:
// devices poll the device HTTP API (`updraft sim --transport http`, -sims
// simulator processes, each its own share of the fleet), pull their notice,
// download the package through its signed URL, report progress and their
// new version. It reports the job's wall time (created → completed), the
// server's CPU seconds and its peak RSS during the job.
//
//	go run ./bench/fleet100k                    # 100 000 devices, 4 simulators, SQLite
//	go run ./bench/fleet100k -devices 20000 -sims 2 -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// Target (issue 13): ≤ 5 minutes on the project's 2-core machine. The
// simulators share those cores with the server; their CPU is printed too.
// Registering the devices and waiting for their first version report is
// set-up, not measured.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/client"
)

func main() {
	bin := flag.String("updraft", "", "updraft binary (default: go build ./cmd/updraft)")
	devices := flag.Int("devices", 100_000, "fleet size")
	sims := flag.Int("sims", 4, "simulator processes")
	poll := flag.Duration("poll", 30*time.Second, "device poll interval")
	size := flag.Int("size", 16<<10, "package size in bytes")
	db := flag.String("db", "", "serve --db (default: SQLite in the data directory)")
	limit := flag.Duration("timeout", 20*time.Minute, "give up after this long")
	extra := flag.String("serve-args", "", "extra serve flags, space-separated (e.g. --pprof 127.0.0.1:6061)")
	flag.Parse()
	if err := run(*bin, *devices, *sims, *poll, *size, *db, *extra, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "fleet100k:", err)
		os.Exit(1)
	}
}

func run(bin string, devices, sims int, poll time.Duration, size int, db, extra string, limit time.Duration) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin, err = benchkit.BuildUpdraft(bin, work); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	// Registering the fleet is one management call per device, which the
	// per-key and per-tenant rate limits would pace at a few hundred per
	// second; set-up is not measured, so they are off. The device API's
	// limits stay on.
	args := append([]string{"--rate-limit", "0", "--rate-limit-tenant", "0"}, strings.Fields(extra)...)
	if db != "" {
		args = append(args, "--db", db)
	}
	srv, err := benchkit.StartServer(benchkit.ServerOptions{Bin: bin, DataDir: data, Args: args})
	if err != nil {
		return err
	}
	defer srv.Stop()
	pid := srv.Pid()
	api := client.New(srv.Base, srv.KeyID, srv.Secret)
	product := fmt.Sprintf("fleet%d", time.Now().UnixNano()%1e6)
	content := make([]byte, size)
	_, _ = rand.Read(content)
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: product, Name: product}); err != nil {
		return err
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: product, Name: "fw", Version: "2.0"}, "fw.bin", bytes.NewReader(content))
	if err != nil {
		return err
	}
	fmt.Printf("fleet %d devices over device HTTP (%d simulators, poll %v), package %d bytes, load average %s\n", devices, sims, poll, size, benchkit.LoadAverage())

	// Each simulator registers its share (--create) and then polls.
	t := time.Now()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	for k := 0; k < sims; k++ {
		n := devices / sims
		if k == sims-1 {
			n = devices - n*(sims-1)
		}
		logf, err := os.Create(filepath.Join(work, fmt.Sprintf("sim-%d.log", k)))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "sim", "--server", srv.Base, "--key", srv.KeyID+":"+srv.Secret, "--product", product,
			"--count", strconv.Itoa(n), "--prefix", fmt.Sprintf("s%d-", k), "--version", "1.0", "--transport", "http",
			"--poll", poll.String(), "--create", "--connect-rate", "2000", "--download-conns", "64", "--timeout", limit.String())
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return err
		}
		logf.Close()
		procs = append(procs, cmd)
	}
	for {
		l, err := api.ListDevices(ctx, product, client.DeviceFilter{Module: "default", Versions: []string{"1.0"}, Page: client.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if l.Total >= int64(devices) {
			break
		}
		if time.Since(t) > limit {
			return fmt.Errorf("only %d of %d devices registered and reported within %v (see %s/sim-*.log)", l.Total, devices, limit, work)
		}
		time.Sleep(2 * time.Second)
	}
	fmt.Printf("set-up: %d devices registered and reporting in %.0f s (not measured)\n", devices, time.Since(t).Seconds())

	// Peak RSS from here on: reset the server's high-water mark (root only).
	resetHWM := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	cpu0, _ := benchkit.CPUSeconds(pid)
	simCPU0 := 0.0
	for _, p := range procs {
		c, _ := benchkit.CPUSeconds(p.Process.Pid)
		simCPU0 += c
	}
	no := false
	t = time.Now()
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "fleet", Target: client.JobTarget{All: true}, NeedPush: &no})
	if err != nil {
		return err
	}
	last := time.Now()
	for {
		j, err := api.GetJob(ctx, job.ID)
		if err != nil {
			return err
		}
		if j.Ended() {
			job = j
			break
		}
		if time.Since(t) > limit {
			return fmt.Errorf("job not done after %v: %v", limit, j.Counts)
		}
		if time.Since(last) > 15*time.Second {
			fmt.Fprintf(os.Stderr, "%6.0fs %v (load %s)\n", time.Since(t).Seconds(), j.Counts, benchkit.LoadAverage())
			last = time.Now()
		}
		time.Sleep(time.Second)
	}
	wall := time.Since(t)
	cpu1, _ := benchkit.CPUSeconds(pid)
	simCPU1 := 0.0
	for _, p := range procs {
		c, _ := benchkit.CPUSeconds(p.Process.Pid)
		simCPU1 += c
	}
	peak, _ := benchkit.StatusKB(pid, "VmHWM")
	peakWhat := "during the job"
	if !resetHWM {
		peakWhat = "since start (could not reset VmHWM)"
	}
	fmt.Printf("job              %s: %v\n", job.State, job.Counts)
	fmt.Printf("wall time        %.1f s (job created → completed)   target ≤ 300 s\n", wall.Seconds())
	fmt.Printf("server CPU       %.1f s (%.0f%% of one core; %.3f ms per device)\n", cpu1-cpu0, 100*(cpu1-cpu0)/wall.Seconds(), 1000*(cpu1-cpu0)/float64(devices))
	fmt.Printf("server peak RSS  %d MiB %s\n", peak>>10, peakWhat)
	fmt.Printf("simulators CPU   %.1f s\n", simCPU1-simCPU0)
	fmt.Printf("load average     %s\n", benchkit.LoadAverage())
	if job.Counts["succeeded"] != int64(devices) {
		return fmt.Errorf("%d of %d tasks succeeded", job.Counts["succeeded"], devices)
	}
	return nil
}
