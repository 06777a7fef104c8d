// Command download measures P1 of issue 13: downloading a package through
// its signed URL from a real `updraft serve` (file blob store) against nginx
// serving the same bytes from a plain directory (sendfile on, access log off,
// one worker per core), both driven by wrk on the same machine, alternated
// -pairs times for each connection count.
//
//	bash bench/download.sh                      # installs nginx-light and wrk if missing
//	go run ./bench/download -size-mb 100 -conns 16,64 -pairs 3 -duration 10s
//
// Target (issue 13): Updraft ≥ 0.9× nginx. Each run also reads each
// server's CPU time (nginx: master and workers) and prints the CPU
// milliseconds per MiB served, and that ratio: what a download adds to a
// rollout's CPU (P5). Small packages show the per-request costs:
//
//	go run ./bench/download -size-mb 1 -conns 256
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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/client"
)

func main() {
	bin := flag.String("updraft", "", "updraft binary (default: go build ./cmd/updraft)")
	nginx := flag.String("nginx", "nginx", "nginx binary")
	wrk := flag.String("wrk", "wrk", "wrk binary")
	sizeMB := flag.Int("size-mb", 100, "package size in MiB")
	connList := flag.String("conns", "16,64", "wrk connection counts, comma-separated")
	pairs := flag.Int("pairs", 3, "nginx/updraft pairs per connection count")
	duration := flag.Duration("duration", 10*time.Second, "wrk duration per run")
	pprofAddr := flag.String("pprof", "", "serve the server's net/http/pprof on this address (serve --pprof)")
	flag.Parse()
	if err := run(*bin, *nginx, *wrk, *sizeMB, *connList, *pairs, *duration, *pprofAddr); err != nil {
		fmt.Fprintln(os.Stderr, "download:", err)
		os.Exit(1)
	}
}

func run(bin, nginxBin, wrkBin string, sizeMB int, connList string, pairs int, duration time.Duration, pprofAddr string) error {
	ctx := context.Background()
	if _, err := benchkit.LookNginx(nginxBin); err != nil {
		return err
	}
	if _, err := exec.LookPath(wrkBin); err != nil {
		return fmt.Errorf("%s not found: install it (apt-get install wrk) or run bash bench/download.sh", wrkBin)
	}
	work, err := os.MkdirTemp("", "bench-download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// nginx's workers drop root to its default user: let them read the file.
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	if bin, err = benchkit.BuildUpdraft(bin, work); err != nil {
		return err
	}
	content := make([]byte, sizeMB<<20)
	_, _ = rand.Read(content)
	root := filepath.Join(work, "www")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "fw.bin"), content, 0o644); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	var args []string
	if pprofAddr != "" {
		args = []string{"--pprof", pprofAddr}
	}
	srv, err := benchkit.StartServer(benchkit.ServerOptions{Bin: bin, DataDir: data, Args: args})
	if err != nil {
		return err
	}
	defer srv.Stop()
	api := client.New(srv.Base, srv.KeyID, srv.Secret)
	if _, err := api.CreateProduct(ctx, client.ProductCreate{Key: "dl", Name: "dl"}); err != nil {
		return err
	}
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "dl", Name: "fw", Version: "2.0"}, "fw.bin", bytes.NewReader(content))
	if err != nil {
		return err
	}
	updURL, err := api.PackageURL(ctx, pkg.ID)
	if err != nil {
		return err
	}
	ng, err := benchkit.StartNginx(nginxBin, work, root)
	if err != nil {
		return err
	}
	defer ng.Stop()
	ngURL := "http://" + ng.Addr + "/fw.bin"
	fmt.Printf("P1 download %d MiB through the signed URL vs nginx, wrk %v per run, %d pairs; load average %s\n", sizeMB, duration, pairs, benchkit.LoadAverage())
	for _, cs := range strings.Split(connList, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(cs))
		if err != nil {
			return fmt.Errorf("-conns: %w", err)
		}
		// CPU per MiB served, each side's own processes (nginx: master and
		// workers; the kernel's work for sendfile counts on both): the
		// cost a download adds to a rollout (P5), beside the throughput.
		var ngCPU, updCPU []float64
		p, err := benchkit.RunPairs(ctx, pairs,
			func(int) (float64, error) {
				r, err := measureWrk(wrkBin, ngURL, c, duration, func() float64 { c, _ := benchkit.TreeCPUSeconds(ng.Pid()); return c })
				ngCPU = append(ngCPU, r.cpuPerMiB)
				return r.mbps, err
			},
			func(int) (float64, error) {
				r, err := measureWrk(wrkBin, updURL, c, duration, func() float64 { c, _ := benchkit.CPUSeconds(srv.Pid()); return c })
				updCPU = append(updCPU, r.cpuPerMiB)
				return r.mbps, err
			},
			func(r, u float64) float64 { return u / r })
		if err != nil {
			return err
		}
		cpuRatio := make([]float64, len(ngCPU))
		for i := range ngCPU {
			cpuRatio[i] = updCPU[i] / ngCPU[i]
		}
		fmt.Printf("%d connections: nginx MB/s %s; updraft MB/s %s\n", c, benchkit.Summarize(p.Ref), benchkit.Summarize(p.Upd))
		fmt.Printf("%d connections: CPU ms per MiB served: nginx %s; updraft %s; updraft/nginx %s\n", c, benchkit.Summarize(ngCPU), benchkit.Summarize(updCPU), benchkit.Summarize(cpuRatio))
		fmt.Printf("P1 ratio updraft/nginx at %d connections: %s   target ≥ 0.9\n", c, benchkit.Summarize(p.Ratio))
	}
	return nil
}

var (
	transfer = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMG]?B)`)
	read     = regexp.MustCompile(`requests in [0-9.]+[a-z]+, ([0-9.]+)([KMG]?B) read`)
)

type wrkResult struct {
	mbps      float64 // MiB/s
	cpuPerMiB float64 // the server's CPU milliseconds per MiB served
}

// measureWrk runs wrk and reads the server's CPU (cpu, in seconds) around it.
func measureWrk(bin, url string, conns int, d time.Duration, cpu func() float64) (wrkResult, error) {
	c0 := cpu()
	out, err := runWrk(bin, url, conns, d)
	c1 := cpu()
	if err != nil {
		return wrkResult{}, err
	}
	mbps, err := mib(transfer.FindSubmatch(out), out)
	if err != nil {
		return wrkResult{}, err
	}
	total, err := mib(read.FindSubmatch(out), out)
	if err != nil {
		return wrkResult{}, err
	}
	return wrkResult{mbps: mbps, cpuPerMiB: 1000 * (c1 - c0) / total}, nil
}

// mib converts a wrk quantity ("1.2GB") to MiB.
func mib(m [][]byte, out []byte) (float64, error) {
	if m == nil {
		return 0, fmt.Errorf("unexpected wrk output: %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	switch string(m[2]) {
	case "KB":
		v /= 1024
	case "GB":
		v *= 1024
	case "B":
		v /= 1 << 20
	}
	return v, nil
}

// runWrk runs wrk and returns its output; any non-2xx answer is an error.
func runWrk(bin, url string, conns int, d time.Duration) ([]byte, error) {
	threads := 2
	if conns < threads {
		threads = conns
	}
	out, err := exec.Command(bin, "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+d.String(), "--timeout", "60s", url).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) {
		return nil, fmt.Errorf("wrk saw errors: %s", out)
	}
	return out, nil
}
