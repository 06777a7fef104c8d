// Command rollout measures an end-to-end rollout: a real `updraft serve`
// process, N simulated devices (internal/sim, in this process) on the
// embedded broker or on Mosquitto, one upgrade job on all of them. It
// reports the job's wall time, the server's CPU seconds during the job (P5
// of issue 13: per device upgraded, target ≤ 0.5 ms), and the server's peak
// RSS (VmHWM: connections included).
//
//	go build -o /tmp/updraft ./cmd/updraft
//	go run ./bench/rollout -updraft /tmp/updraft -count 10000 -size 1048576 -runs 3
//	go run ./bench/rollout -updraft /tmp/updraft -count 10000 -size 1048576 -mosquitto-bin mosquitto
//
// -mosquitto-bin starts a private Mosquitto tuned for a connect storm
// (max_queued_messages 0 = unbounded, max_inflight_messages 100): with the
// defaults (1000 queued per consumer session) a broker drops device
// messages the server has not consumed yet when 10 000 devices connect within
// seconds. -mosquitto uses an existing broker as it is.
//
// After the job it measures P5's floor (floor.go): nginx, Mosquitto and
// SQLite doing the same work per device, with nothing of Updraft between
// them, and prints P5 as a ratio to it too; -floor=false skips that, and
// -nginx names the nginx binary (bash bench/download.sh installs it). -runs
// N repeats rollout and floor N times and prints the median and spread.
//
// -idle 10s first measures the server's CPU with the fleet connected and no
// job (keep-alives, presence), to tell the fleet's standing cost from what
// the job adds.
//
// The server logs to <data>/server.log; the data directory is removed at the
// end unless -keep.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/updraft-ota/updraft/bench/internal/benchkit"
	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/sim"
)

func main() {
	bin := flag.String("updraft", "updraft", "the updraft binary to run as the server")
	count := flag.Int("count", 10_000, "devices")
	size := flag.Int("size", 1<<20, "package size in bytes")
	concurrency := flag.Int("concurrency", 0, "job max concurrency (default: count)")
	mosq := flag.String("mosquitto", "", "use this Mosquitto (host:port) instead of the embedded broker")
	mosqBin := flag.String("mosquitto-bin", "", "start a private, tuned Mosquitto from this binary and use it")
	conns := flag.Int("download-conns", 256, "simulated devices' concurrent download connections")
	progressEvery := flag.Int("progress-every", 0, "simulated devices report download progress every this many percent (0: at the start and once installed)")
	keep := flag.Bool("keep", false, "keep the data directory")
	pprofAddr := flag.String("pprof", "", "serve the server's net/http/pprof on this address (serve --pprof)")
	idle := flag.Duration("idle", 0, "before the job, measure the server's CPU with every device connected and nothing to do for this long")
	withFloor := flag.Bool("floor", true, "after the job, measure P5's floor: nginx, Mosquitto and SQLite doing the same work per device (floor.go)")
	nginxBin := flag.String("nginx", "nginx", "the nginx binary for the floor")
	runs := flag.Int("runs", 1, "rollouts (each with its floor) in a row; more than one prints the median and spread of P5, the floor and their ratio")
	flag.Parse()
	if *concurrency == 0 {
		*concurrency = *count
	}
	if *withFloor {
		// Before the rollout, not after it: a missing tool fails at once.
		if _, err := benchkit.LookNginx(*nginxBin); err != nil {
			fmt.Fprintln(os.Stderr, "rollout: the floor needs nginx:", err, "(or pass -floor=false)")
			os.Exit(1)
		}
	} else {
		*nginxBin = ""
	}
	var p5s, floors, ratios []float64
	for i := range max(1, *runs) {
		if *runs > 1 {
			fmt.Printf("run %d of %d\n", i+1, *runs)
		}
		var r result
		if err := run(*bin, *count, *size, *concurrency, *mosq, *mosqBin, *conns, *progressEvery, *keep, *pprofAddr, *idle, *nginxBin, &r); err != nil {
			fmt.Fprintln(os.Stderr, "rollout:", err)
			os.Exit(1)
		}
		p5s = append(p5s, 1000*r.p5)
		if r.floor > 0 {
			floors, ratios = append(floors, 1000*r.floor), append(ratios, r.p5/r.floor)
		}
	}
	if *runs > 1 {
		fmt.Printf("%-17sP5 %s ms per device (target ≤ 0.5)\n", fmt.Sprintf("over %d runs", *runs), benchkit.Summarize(p5s))
		if len(floors) > 0 {
			fmt.Printf("%-17sfloor %s ms; updraft / floor %s\n", "", benchkit.Summarize(floors), benchkit.Summarize(ratios))
		}
	}
}

// result is what one run measured: CPU seconds per device upgraded, and
// the floor's (0 without one).
type result struct {
	p5, floor float64
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// run runs the rollout and, when nginxBin is set, measures its floor, into out.
func run(bin string, count, size, concurrency int, mosq, mosqBin string, conns, progressEvery int, keep bool, pprofAddr string, idle time.Duration, nginxBin string, out *result) error {
	ctx := context.Background()
	data, err := os.MkdirTemp("", "updraft-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(data)
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	mqttAddr, err := freeAddr()
	if err != nil {
		return err
	}
	var mosqPid int
	if mosqBin != "" {
		if mosq, err = freeAddr(); err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(mosq)
		conf := filepath.Join(data, "mosquitto.conf")
		err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"+
			"max_queued_messages 0\nmax_inflight_messages 100\nlog_dest none\n"), 0o644)
		if err != nil {
			return err
		}
		m := exec.Command(mosqBin, "-c", conf)
		if err := m.Start(); err != nil {
			return err
		}
		defer func() { _ = m.Process.Kill(); _ = m.Wait() }()
		mosqPid = m.Process.Pid
		if err := waitTCP(mosq, 10*time.Second); err != nil {
			return err
		}
	}
	keyID, secret := "BENCHKEY", "bench-secret-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	// --rate-limit 0: registering the fleet is setup, not what is measured,
	// and at the default 200 calls/s per key it alone took 50 s.
	args := []string{"serve", "--data", data, "--http", httpAddr, "--log-level", "warn", "--rate-limit", "0"}
	if pprofAddr != "" {
		args = append(args, "--pprof", pprofAddr)
	}
	broker := "embedded"
	devicesBroker := mqttAddr
	if mosq != "" {
		id := "updraft-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		args = append(args, "--mqtt", "off", "--mqtt-broker", fmt.Sprintf("mqtt://%s?client_id=%s&group=%s", mosq, id, id))
		broker, devicesBroker = "mosquitto "+mosq, mosq
	} else {
		args = append(args, "--mqtt", mqttAddr)
	}
	logf, err := os.Create(filepath.Join(data, "server.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "UPDRAFT_BOOTSTRAP_ACCESS_KEY="+keyID, "UPDRAFT_BOOTSTRAP_SECRET_KEY="+secret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	stopServer := sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	defer stopServer()
	base := "http://" + httpAddr
	if err := waitHealthy(base, 30*time.Second); err != nil {
		return err
	}
	pid := cmd.Process.Pid

	s, err := sim.New(sim.Config{
		Server: base, KeyID: keyID, KeySecret: secret, MQTT: devicesBroker, Product: "bench", Count: count,
		Version: "1.0", DownloadConns: conns, ProgressEvery: progressEvery, ConnectRate: 2000,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	step := func(what string, start time.Time) {
		fmt.Fprintf(os.Stderr, "%-28s %6.1fs   %s\n", what, time.Since(start).Seconds(), s.Stats())
	}
	t := time.Now()
	if err := s.Create(ctx); err != nil {
		return err
	}
	step("registered devices", t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	stopSim := sync.OnceFunc(func() { stop(); <-done })
	defer stopSim()
	t = time.Now()
	for s.Stats().Connected < int64(count) {
		if time.Since(t) > 5*time.Minute {
			return fmt.Errorf("devices did not connect: %s", s.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	step("connected", t)
	api := client.New(base, keyID, secret)
	t = time.Now()
	for n := 0; n < count; {
		if time.Since(t) > 5*time.Minute {
			return fmt.Errorf("the server sees %d of %d devices", n, count)
		}
		time.Sleep(500 * time.Millisecond)
		if n, err = reported(ctx, api, count); err != nil {
			return err
		}
	}
	step("versions reported", t)
	idleRSS, _ := procStatus(pid, "VmRSS")
	idleCPU := -1.0
	if idle > 0 {
		c0, _ := benchkit.CPUSeconds(pid)
		time.Sleep(idle)
		c1, _ := benchkit.CPUSeconds(pid)
		idleCPU = (c1 - c0) / idle.Seconds()
	}

	content := make([]byte, size)
	rand.Read(content)
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: "bench", Name: "bench-fw", Version: "2.0"}, "fw.bin", bytes.NewReader(content))
	if err != nil {
		return err
	}
	cpu0, err := benchkit.CPUSeconds(pid)
	if err != nil {
		return err
	}
	self0, _ := benchkit.CPUSeconds(os.Getpid())
	t = time.Now()
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "bench", Target: client.JobTarget{All: true}, MaxConcurrency: concurrency})
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
		if time.Since(t) > 30*time.Minute {
			return fmt.Errorf("job not done after 30 minutes: %v", j.Counts)
		}
		if time.Since(last) > 5*time.Second {
			step("rolling out", t)
			last = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	wall := time.Since(t)
	cpu1, _ := benchkit.CPUSeconds(pid)
	self1, _ := benchkit.CPUSeconds(os.Getpid())
	step("job "+job.State, t)
	peak, _ := procStatus(pid, "VmHWM")
	fmt.Printf("broker           %s\n", broker)
	fmt.Printf("devices          %d (job concurrency %d, package %d bytes, %d download connections, progress every %d %%)\n", count, concurrency, size, conns, progressEvery)
	fmt.Printf("job              %s: %v\n", job.State, job.Counts)
	fmt.Printf("wall time        %.1f s (job created → completed)\n", wall.Seconds())
	fmt.Printf("server CPU       %.1f s during the job (%.0f%% of one core)\n", cpu1-cpu0, 100*(cpu1-cpu0)/wall.Seconds())
	if n := job.Counts["succeeded"]; n > 0 {
		fmt.Printf("P5 server CPU per device upgraded: %.3f ms (target ≤ 0.5 ms; load average %s)\n", 1000*(cpu1-cpu0)/float64(n), loadAverage())
	}
	simPeak, _ := procStatus(os.Getpid(), "VmHWM")
	fmt.Printf("simulator        %.1f s CPU during the job; peak RSS %s\n", self1-self0, simPeak)
	fmt.Printf("server RSS       %s idle with every device connected; peak %s\n", idleRSS, peak)
	if idleCPU >= 0 {
		fmt.Printf("server idle CPU  %.1f%% of one core with every device connected and no job (%.1f s of the job's CPU at that rate)\n", 100*idleCPU, idleCPU*wall.Seconds())
	}
	if mosqPid != 0 {
		mpeak, _ := procStatus(mosqPid, "VmHWM")
		mcpu, _ := benchkit.CPUSeconds(mosqPid)
		fmt.Printf("mosquitto        peak RSS %s, %.1f s CPU in all\n", mpeak, mcpu)
	}
	succeeded := job.Counts["succeeded"]
	if succeeded != int64(count) {
		return fmt.Errorf("%d of %d tasks succeeded", succeeded, count)
	}
	out.p5 = (cpu1 - cpu0) / float64(succeeded)
	if nginxBin == "" {
		return nil
	}
	stopSim()
	stopServer()
	fmt.Fprintln(os.Stderr, "measuring the floor: nginx, Mosquitto, SQLite doing the same work per device")
	f, err := measureFloor(ctx, count, size, conns, nginxBin, mosqBin)
	if err != nil {
		return err
	}
	total, brokerNote := f.download+f.broker+f.database, ""
	if mosq != "" {
		// The broker ran outside the server: its CPU is on neither side.
		total, brokerNote = f.download+f.database, " (not counted: the rollout's broker was external)"
	}
	fmt.Printf("P5 floor         %.3f ms per device: download (nginx) %.3f + broker (Mosquitto, 4 messages)%s %.3f + database (SQLite, 3 reports, %d per transaction) %.3f\n",
		1000*total, 1000*f.download, brokerNote, 1000*f.broker, groupedReports, 1000*f.database)
	fmt.Printf("                 (the database with one transaction per report: %.3f)\n", 1000*f.databaseAlone)
	fmt.Printf("P5 ratio         updraft / floor = %.2f\n", out.p5/total)
	out.floor = total
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// reported counts the devices whose version the server has.
func reported(ctx context.Context, api *client.Client, count int) (int, error) {
	l, err := api.ListDevices(ctx, "bench", client.DeviceFilter{Module: "default", Versions: []string{"1.0"}, Page: client.Page{Limit: 1}})
	if err != nil {
		return 0, err
	}
	return int(l.Total), nil
}

func waitTCP(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func waitHealthy(base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the server did not become healthy (see server.log)")
}

// procStatus returns one field of /proc/PID/status ("VmHWM" → "123456 kB").
func procStatus(pid int, field string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return fmt.Sprintf("%d MB", kb/1024), nil
		}
	}
	return "", fmt.Errorf("%s not in /proc/%d/status", field, pid)
}
