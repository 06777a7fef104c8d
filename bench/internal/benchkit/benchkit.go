// Package benchkit holds what the bench/ programs share: starting a real
// `updraft serve` process, reading a process's CPU time and memory from
// /proc, alternated reference/Updraft pairs and their median and spread, and
// a minimal MQTT 3.1.1 client cheap enough to hold 10 000 connections in one
// process.
package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// BuildUpdraft builds ./cmd/updraft into dir unless bin is set, and returns
// the binary's path. The bench programs run from the repository root.
func BuildUpdraft(bin, dir string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	out := filepath.Join(dir, "updraft")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/updraft")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building updraft (run from the repository root, or pass -updraft): %w", err)
	}
	return out, nil
}

// Server is a running `updraft serve`.
type Server struct {
	Cmd     *exec.Cmd
	Base    string // http://host:port
	MQTT    string // host:port of the embedded broker ("" when off)
	KeyID   string
	Secret  string
	DataDir string
}

// ServerOptions say how to start the server.
type ServerOptions struct {
	Bin     string
	DataDir string   // reused between starts: devices registered once stay
	MQTT    bool     // start the embedded broker
	Args    []string // extra serve flags
	Env     []string
}

// BenchKey is the access key every bench server is bootstrapped with.
const (
	BenchKeyID  = "BENCHKEY"
	BenchSecret = "bench-secret-0123456789"
)

// StartServer starts `updraft serve` and waits for /healthz.
func StartServer(o ServerOptions) (*Server, error) {
	httpAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{Base: "http://" + httpAddr, KeyID: BenchKeyID, Secret: BenchSecret, DataDir: o.DataDir}
	args := []string{"serve", "--data", o.DataDir, "--http", httpAddr, "--log-level", "warn"}
	if o.MQTT {
		if s.MQTT, err = FreeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--mqtt", s.MQTT)
	} else {
		args = append(args, "--mqtt", "off")
	}
	args = append(args, o.Args...)
	logf, err := os.OpenFile(filepath.Join(o.DataDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = append(append(os.Environ(), "UPDRAFT_BOOTSTRAP_ACCESS_KEY="+BenchKeyID, "UPDRAFT_BOOTSTRAP_SECRET_KEY="+BenchSecret), o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	logf.Close()
	s.Cmd = cmd
	if err := WaitHealthy(s.Base, 60*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w (see %s)", err, filepath.Join(o.DataDir, "server.log"))
	}
	return s, nil
}

// Pid is the server's process id.
func (s *Server) Pid() int { return s.Cmd.Process.Pid }

// Stop ends the server (SIGTERM, then SIGKILL after 10 s).
func (s *Server) Stop() {
	if s == nil || s.Cmd == nil || s.Cmd.Process == nil {
		return
	}
	_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.Cmd.Process.Kill()
		<-done
	}
}

// WaitHealthy polls base/healthz until it answers 200.
func WaitHealthy(base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the server did not become healthy")
}

// WaitTCP waits until something accepts connections on addr.
func WaitTCP(addr string, limit time.Duration) error {
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

// LookDaemon finds a server binary the benchmarks start: on PATH, then in
// /usr/sbin, where Debian puts daemons outside a non-root PATH. pkg is the
// Debian package that installs it, for the error.
func LookDaemon(bin, pkg string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	if p := "/usr/sbin/" + filepath.Base(bin); !strings.Contains(bin, "/") {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install it (apt-get install %s)", bin, pkg)
}

// Mosquitto is a private Mosquitto broker.
type Mosquitto struct {
	Cmd  *exec.Cmd
	Addr string
}

// StartMosquitto starts a private Mosquitto on a free loopback port with
// extra configuration lines (no persistence, anonymous, no log).
func StartMosquitto(bin, dir string, extra ...string) (*Mosquitto, error) {
	if bin == "" {
		bin = "mosquitto"
	}
	bin, err := LookDaemon(bin, "mosquitto")
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto-"+port+".conf")
	text := "listener " + port + " 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n" + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting mosquitto (%s): %w", bin, err)
	}
	m := &Mosquitto{Cmd: cmd, Addr: addr}
	if err := WaitTCP(addr, 10*time.Second); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// Stop kills the broker.
func (m *Mosquitto) Stop() {
	if m == nil || m.Cmd.Process == nil {
		return
	}
	_ = m.Cmd.Process.Kill()
	_ = m.Cmd.Wait()
}

// statFields are /proc/PID/stat's fields after the command name (which is
// in parentheses and may hold spaces): [0] state, [1] ppid, [11] utime,
// [12] stime.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:])), nil
}

// CPUSeconds is a process's user+system CPU time (/proc/PID/stat, in
// USER_HZ = 100 ticks per second on Linux).
func CPUSeconds(pid int) (float64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil
}

// TreeCPUSeconds is CPUSeconds of pid and of its live child processes
// (nginx's workers under its master).
func TreeCPUSeconds(pid int) (float64, error) {
	total, err := CPUSeconds(pid)
	if err != nil {
		return 0, err
	}
	dirs, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(pid)
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if f, err := statFields(child); err == nil && len(f) > 1 && f[1] == parent {
			c, _ := CPUSeconds(child)
			total += c
		}
	}
	return total, nil
}

// StatusKB returns one /proc/PID/status field in KiB ("VmRSS", "VmHWM").
func StatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// LoadAverage is the first field of /proc/loadavg, to print with results:
// other work on the machine skews absolute figures, not paired ratios.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// Summary is the median and spread of a series.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, min and max of xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

func (s Summary) String() string {
	return fmt.Sprintf("%.3g (%.3g–%.3g, n=%d)", s.Median, s.Min, s.Max, s.N)
}

// Pairs runs reference and updraft alternately, pairs times, and collects
// ratio(ref, upd) of each pair. Both functions return the pair's figure
// (e.g. req/s, seconds, KB).
type Pairs struct {
	Ref, Upd, Ratio []float64
}

// Run alternates ref and upd n times (ref first in each pair).
func RunPairs(ctx context.Context, n int, ref, upd func(i int) (float64, error), ratio func(ref, upd float64) float64) (Pairs, error) {
	var p Pairs
	for i := 0; i < n; i++ {
		r, err := ref(i)
		if err != nil {
			return p, fmt.Errorf("reference, pair %d: %w", i+1, err)
		}
		u, err := upd(i)
		if err != nil {
			return p, fmt.Errorf("updraft, pair %d: %w", i+1, err)
		}
		p.Ref, p.Upd = append(p.Ref, r), append(p.Upd, u)
		p.Ratio = append(p.Ratio, ratio(r, u))
		fmt.Fprintf(os.Stderr, "pair %d: reference %.4g  updraft %.4g  ratio %.3f  (load %s)\n", i+1, r, u, ratio(r, u), LoadAverage())
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
	}
	return p, nil
}

// SaveURL writes the body of a GET to path.
func SaveURL(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
