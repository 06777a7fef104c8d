// Command checkin measures P2 of issue 13: a device's HTTP check-in with
// nothing pending (GET /device/v1/update → 204) on a real `updraft serve`,
// against the floor under it, a bare net/http server (a child process of
// this program) that answers every request with the same 204 and the same
// headers. The two are alternated (reference first), each for -duration,
// with the same load generator in this process: -conns keep-alive
// connections, each one device sending a request as soon as the last
// answer arrived. It prints both rates, the ratio of each pair, and the
// median and spread of the ratios.
//
//	go run ./bench/checkin                      # builds ./cmd/updraft
//	go run ./bench/checkin -pairs 5 -duration 10s -conns 64
//
// Target (issue 13): Updraft ≥ 0.5× the bare handler.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

func main() {
	bare := flag.String("bare", "", "internal: serve the bare reference handler on this address with -headers")
	headers := flag.String("headers", "", "internal: JSON of the reference's response headers")
	bin := flag.String("updraft", "", "updraft binary (default: go build ./cmd/updraft)")
	pairs := flag.Int("pairs", 3, "reference/updraft pairs")
	duration := flag.Duration("duration", 5*time.Second, "load per run")
	conns := flag.Int("conns", 64, "concurrent keep-alive connections (one device each)")
	db := flag.String("db", "", "serve --db (default: SQLite in the data directory)")
	extra := flag.String("serve-args", "", "extra serve flags, space-separated")
	flag.Parse()
	if *bare != "" {
		serveBare(*bare, *headers)
		return
	}
	if err := run(*bin, *pairs, *duration, *conns, *db, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "checkin:", err)
		os.Exit(1)
	}
}

// serveBare is the reference: net/http, one handler, no routing, no auth.
func serveBare(addr, headers string) {
	var h map[string]string
	if err := json.Unmarshal([]byte(headers), &h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range h {
			w.Header().Set(k, v)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func run(bin string, pairs int, duration time.Duration, conns int, db, extra string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bench-checkin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin, err = benchkit.BuildUpdraft(bin, work); err != nil {
		return err
	}
	// Each connection is one device asking as fast as it can: the device
	// rate limit (--rate-limit-device) would measure the throttle, not the
	// check-in path.
	args := append([]string{"--rate-limit-device", "0"}, strings.Fields(extra)...)
	if db != "" {
		args = append(args, "--db", db)
	}
	srv, err := benchkit.StartServer(benchkit.ServerOptions{Bin: bin, DataDir: work, Args: args})
	if err != nil {
		return err
	}
	defer srv.Stop()
	product := "checkin" + fmt.Sprint(time.Now().UnixNano()%1e6)
	cfg := sim.Config{Server: srv.Base, KeyID: srv.KeyID, KeySecret: srv.Secret, Product: product, Count: conns,
		Version: "1.0", Transport: "http", Prefix: "sim-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	if err := s.Create(ctx); err != nil {
		return err
	}
	host := strings.TrimPrefix(srv.Base, "http://")
	requests := func() [][]byte {
		out := make([][]byte, conns)
		now := time.Now()
		for i := range out {
			name := cfg.Name(i)
			out[i] = []byte("GET /device/v1/update HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: " +
				wire.Authorization(product, name, sim.Secret(srv.Secret, product, name), now) + "\r\n\r\n")
		}
		return out
	}
	// The reference answers with exactly Updraft's headers (Date aside).
	resp, err := oneRequest(host, requests()[0])
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("updraft answered %s to a check-in with nothing pending, want 204", resp.Status)
	}
	h := map[string]string{}
	for k := range resp.Header {
		if k != "Date" {
			h[k] = resp.Header.Get(k)
		}
	}
	hj, _ := json.Marshal(h)
	bareAddr, err := benchkit.FreeAddr()
	if err != nil {
		return err
	}
	ref := exec.Command(os.Args[0], "-bare", bareAddr, "-headers", string(hj))
	ref.Stderr = os.Stderr
	if err := ref.Start(); err != nil {
		return err
	}
	defer func() { _ = ref.Process.Kill(); _ = ref.Wait() }()
	if err := benchkit.WaitTCP(bareAddr, 10*time.Second); err != nil {
		return err
	}
	fmt.Printf("P2 device HTTP check-in, nothing pending: %d connections, %v per run, %d pairs; updraft headers %s\n", conns, duration, pairs, hj)
	fmt.Printf("load average at start: %s\n", benchkit.LoadAverage())
	// Warm both up (connections, caches, JIT of the page cache).
	if _, err := load(bareAddr, requests(), time.Second); err != nil {
		return err
	}
	if _, err := load(host, requests(), time.Second); err != nil {
		return err
	}
	p, err := benchkit.RunPairs(ctx, pairs,
		func(int) (float64, error) { return load(bareAddr, requests(), duration) },
		func(int) (float64, error) { return load(host, requests(), duration) },
		func(r, u float64) float64 { return u / r })
	if err != nil {
		return err
	}
	fmt.Printf("bare net/http req/s  %s\n", benchkit.Summarize(p.Ref))
	fmt.Printf("updraft req/s        %s\n", benchkit.Summarize(p.Upd))
	fmt.Printf("P2 ratio updraft/bare %s   target ≥ 0.5\n", benchkit.Summarize(p.Ratio))
	fmt.Printf("load average at end: %s\n", benchkit.LoadAverage())
	return nil
}

func oneRequest(addr string, req []byte) (*http.Response, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// load sends reqs[i] over connection i back to back for d and returns the
// rate of 204 answers; any other answer is an error.
func load(addr string, reqs [][]byte, d time.Duration) (float64, error) {
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				once.Do(func() { firstErr = err })
				return
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 4096)
			for time.Now().Before(deadline) {
				if _, err := c.Write(req); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					once.Do(func() { firstErr = fmt.Errorf("%s answered %s", addr, resp.Status) })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
