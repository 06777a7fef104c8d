package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestServeHelperProcess is not a test: it is the updraft binary, run by the
// tests below as a child process (the test binary re-executes itself), so
// that `serve` gets real signals and a real exit code.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv("UPDRAFT_TEST_RUN_MAIN") != "1" {
		t.Skip("helper process for the cmd tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"updraft"}, args...)
	main()
	os.Exit(0)
}

// updraft returns a command running the updraft CLI with args.
func updraft(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestServeHelperProcess$", "--"}, args...)...)
	cmd.Env = append(cleanEnv(), append(env, "UPDRAFT_TEST_RUN_MAIN=1")...)
	return cmd
}

// cleanEnv is the environment without UPDRAFT_* settings of the caller's shell.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UPDRAFT_") {
			out = append(out, kv)
		}
	}
	return out
}

// startServe runs `updraft serve` and waits for its "updraft serving" log line.
func startServe(t *testing.T, env []string, args ...string) (cmd *exec.Cmd, addr string, stdout *outputBuffer, stderr *syncLines) {
	t.Helper()
	cmd = updraft(t, env, append([]string{"serve", "--mqtt", "off", "--log-format", "json"}, args...)...)
	stdout = &outputBuffer{}
	cmd.Stdout = stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	stderr = &syncLines{ch: make(chan string, 1000)}
	go stderr.read(pipe)
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-stderr.ch:
			if !ok {
				t.Fatalf("serve exited before serving:\n%s", stderr.all())
			}
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "updraft serving" {
				stderr.serving = rec
				return cmd, rec["http"].(string), stdout, stderr
			}
		case <-deadline:
			t.Fatalf("serve did not start within 60s:\n%s", stderr.all())
		}
	}
}

// syncLines reads a process's stderr: lines go to ch as they come (for
// waiting on one) and are kept for all.
// outputBuffer collects a child's stdout, which exec copies in from its own
// goroutine: reads are locked, and waitFor gives the copy time to catch up
// with what the child has already printed.
type outputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *outputBuffer) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor reports whether the output contains s within 5 s.
func (o *outputBuffer) waitFor(s string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(o.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

type syncLines struct {
	ch      chan string
	lines   []string
	serving map[string]any // the "updraft serving" log record
}

func (s *syncLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s.lines = append(s.lines, sc.Text())
		select {
		case s.ch <- sc.Text():
		default:
		}
	}
	close(s.ch)
}

// all drains what is left; call it only once the process has exited.
func (s *syncLines) all() string {
	for range s.ch {
	}
	return strings.Join(s.lines, "\n")
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the process did not exit within 60s")
		return -1
	}
}

func TestServeRunsAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd, addr, stdout, stderr := startServe(t, nil, "--data", dir, "--http", "127.0.0.1:0")
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd); code != 0 {
		t.Errorf("exit code %d after SIGTERM\n%s", code, stderr.all())
	}
	logs := stderr.all()
	if !strings.Contains(logs, "updraft stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		Secret string `json:"secret_access_key"`
		Server string `json:"server"`
	}
	if err := json.Unmarshal(raw, &creds); err != nil || creds.Server != "http://"+addr {
		t.Errorf("credentials.json %s (%v)", raw, err)
	}
	if !stdout.waitFor(creds.Secret) {
		t.Errorf("the key was not printed on first start: %q", stdout.String())
	}
}

// SIGTERM stops serve within its bound even with device connections open,
// including one that never sent CONNECT (mochi's shutdown, which the
// embedded broker once used, waited for such a socket forever).
func TestServeStopsWithinBoundWithDevicesConnected(t *testing.T) {
	dir := t.TempDir()
	cmd, _, _, stderr := startServe(t, []string{"UPDRAFT_SHUTDOWN_TIMEOUT=2s"}, "--data", dir, "--http", "127.0.0.1:0", "--mqtt", "127.0.0.1:0")
	mqttAddr, _ := stderr.serving["mqtt"].(string)
	if mqttAddr == "" {
		t.Fatalf("no MQTT address in the serving log record %v", stderr.serving)
	}
	for range 3 {
		c, err := net.Dial("tcp", mqttAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd)
	took := time.Since(start)
	logs := stderr.all()
	if code != 0 || !strings.Contains(logs, "updraft stopped") {
		t.Fatalf("exit code %d after SIGTERM, want 0 and a clean stop in the log:\n%s", code, logs)
	}
	// The bound is the drain (2s) plus stopGrace; a clean stop is far inside it.
	if limit := 2*time.Second + stopGrace; took > limit {
		t.Errorf("serve took %v to stop after SIGTERM, more than its bound %v", took, limit)
	}
}

func TestServePortInUseAndFlagBeatsEnv(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().String()

	// From the environment: refused, naming the flag and the variable.
	var stderr bytes.Buffer
	cmd := updraft(t, []string{"UPDRAFT_HTTP=" + busy}, "serve", "--mqtt", "off", "--data", t.TempDir())
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	want := "--http " + busy + ": address already in use; choose another with --http or UPDRAFT_HTTP"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}

	// The flag wins over the variable.
	cmd2, addr, _, _ := startServe(t, []string{"UPDRAFT_HTTP=" + busy}, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	if addr == busy {
		t.Error("the env address was used despite --http")
	}
	cmd2.Process.Signal(os.Interrupt)
	if code := waitExit(t, cmd2); code != 0 {
		t.Errorf("exit code %d after SIGINT", code)
	}
}

func TestServeRejectsBadFlag(t *testing.T) {
	var stderr bytes.Buffer
	cmd := updraft(t, nil, "serve", "--db", "mysql://x", "--data", t.TempDir())
	cmd.Stderr = &stderr
	cmd.Run()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "UPDRAFT_DB") {
		t.Errorf("exit %d, stderr %q", cmd.ProcessState.ExitCode(), stderr.String())
	}
}

func TestMigrate(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "sub", "x.db")
	out, err := updraft(t, nil, "migrate", "--db", db).Output()
	if err != nil {
		t.Fatalf("migrate: %v %s", err, out)
	}
	re := regexp.MustCompile(`^schema version (\d+) \(latest (\d+)\): applied (\d+) migration\(s\)\n`)
	m := re.FindStringSubmatch(string(out))
	if m == nil || m[1] != m[2] || m[1] != m[3] || m[1] == "0" {
		t.Fatalf("first migrate printed %q", out)
	}
	out, err = updraft(t, []string{"UPDRAFT_DB=" + db}, "migrate").Output()
	if err != nil || !strings.HasPrefix(string(out), "schema version "+m[1]+" (latest "+m[1]+"): nothing to apply") {
		t.Errorf("second migrate (db from env) printed %q, %v", out, err)
	}
}

func TestVersion(t *testing.T) {
	out, err := updraft(t, nil, "version").Output()
	if err != nil || !regexp.MustCompile(`^updraft \S+ .*go1\.\d+`).Match(out) {
		t.Errorf("version printed %q, %v", out, err)
	}
}
