package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/internal/ota"
	"github.com/updraft-ota/updraft/internal/sim"
	"github.com/updraft-ota/updraft/internal/store"
	"github.com/updraft-ota/updraft/internal/store/postgres"
	"github.com/updraft-ota/updraft/internal/store/secrets"
	"github.com/updraft-ota/updraft/internal/testenv"
)

// Issue 8's scale-out test: `updraft serve` replicas as separate processes
// on one PostgreSQL schema and a real Mosquitto, 3 000 simulated devices on
// Mosquitto, one job with max_concurrency 200, and one replica killed with
// SIGKILL three times during the rollout (restarted each time). Operators
// and downloads reach the replicas through a round-robin load balancer, as
// in a real deployment; devices talk to Mosquitto only.

const (
	replicaCap = 200 // the job's max_concurrency
	// replicaFleetFactor × fleetSize devices: 3 000 (600 under -race).
	replicaFleetFactor = 3
	// replicaConsumers per replica: each is a session with its own queue at
	// the broker (Mosquitto's default max_queued_messages 1000 each).
	replicaConsumers = 16
)

// updraftBinary is the binary built once for every test of the package
// (removed by TestMain).
var updraftBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if updraftBinary.dir != "" {
		os.RemoveAll(updraftBinary.dir)
	}
	os.Exit(code)
}

// buildUpdraft builds cmd/updraft once and returns its path.
func buildUpdraft(t *testing.T) string {
	t.Helper()
	b := &updraftBinary
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "updraft-e2e-bin-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "updraft")
		cmd := exec.Command("go", "build", "-o", b.path, "github.com/updraft-ota/updraft/cmd/updraft")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build ./cmd/updraft: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// freeAddr returns a 127.0.0.1 address with a port free at the moment: a
// replica restarted after kill -9 comes back on the same address, as a pod
// behind a fixed service would.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// replica is one `updraft serve` process, restartable on the same flags.
type replica struct {
	t    *testing.T
	name string
	bin  string
	addr string
	args []string
	env  []string
	log  string // its stdout and stderr, appended across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (r *replica) start() {
	r.t.Helper()
	f, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	fmt.Fprintf(f, "\n=== %s start %s\n", r.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, append([]string{"serve"}, r.args...)...)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		r.t.Fatalf("start %s: %v", r.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	r.waitHealthy()
}

// waitHealthy waits for /healthz to answer 200 (the store answers and the
// listeners are up).
func (r *replica) waitHealthy() {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-r.done:
			r.t.Fatalf("%s exited while starting:\n%s", r.name, tail(r.log, 30))
		default:
		}
		resp, err := hc.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s not healthy within a minute (%v):\n%s", r.name, err, tail(r.log, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill9 kills the process with SIGKILL (no shutdown path runs) and waits
// until it is gone.
func (r *replica) kill9() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		r.t.Fatalf("kill -9 %s: %v", r.name, err)
	}
	testenv.Within(r.t, 30*time.Second, r.name+" to exit after SIGKILL", func() { <-done })
}

// stop ends the process gracefully (SIGINT), or kills it after 20 s.
func (r *replica) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// balancer is the load balancer in front of the replicas: round robin over
// the live ones; a request that cannot reach one (connection refused while
// it restarts) is tried on the next.
type balancer struct {
	backends []*replica
	next     atomic.Uint64
	cut      atomic.Int64 // requests that failed at a replica (502)
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	var lastErr error
	start := b.next.Add(1)
	for i := range len(b.backends) {
		r := b.backends[(int(start)+i)%len(b.backends)]
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = r.addr, r.addr
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return http.DefaultTransport.RoundTrip(out) // not replayable: one try
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			out.Body = body
		}
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // the request may have reached the replica: not retried
		}
	}
	return nil, lastErr
}

// serveBalancer starts the load balancer and returns its base URL.
func serveBalancer(t *testing.T, b *balancer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "replicas"})
			pr.Out.Host = pr.In.Host
		},
		Transport: b,
		// Requests cut by a kill -9 answer 502 and are counted; the
		// devices' downloaders retry them.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			b.cut.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// topicMonitor watches every topic on Mosquitto (# does not match topics
// starting with $, so Huawei's $oc/… is subscribed to as well) and counts,
// for one product, notices on its own protocol's topics and any message on
// another protocol's topics.
type topicMonitor struct {
	product string
	c       paho.Client

	mu       sync.Mutex
	notices  map[string]int // native notices per device
	foreign  int
	examples []string
}

func newTopicMonitor(t *testing.T, addr, product string) *topicMonitor {
	t.Helper()
	m := &topicMonitor{product: product, notices: map[string]int{}}
	own := "updraft/v1/" + product + "/"
	handler := func(_ paho.Client, msg paho.Message) {
		topic := msg.Topic()
		if !strings.Contains(topic, product) {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if strings.HasPrefix(topic, own) {
			if rest, ok := strings.CutSuffix(strings.TrimPrefix(topic, own), "/notice"); ok {
				m.notices[rest]++
			}
			return
		}
		m.foreign++
		if len(m.examples) < 5 {
			m.examples = append(m.examples, topic)
		}
	}
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("e2e-monitor-" + randomHex(4)).SetCleanSession(true).
		SetOrderMatters(false)
	m.c = paho.NewClient(o)
	if tok := m.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor connect to Mosquitto %s: %v", addr, tok.Error())
	}
	tok := m.c.SubscribeMultiple(map[string]byte{"#": 0, "$oc/#": 0}, handler)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("monitor subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { m.c.Disconnect(100) })
	return m
}

func (m *topicMonitor) figures() (foreign int, examples []string, notices, devices, repeated int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.notices {
		notices += n
		if n > 1 {
			repeated++
		}
	}
	return m.foreign, append([]string(nil), m.examples...), notices, len(m.notices), repeated
}

// activeSampler reads the job's dispatched tasks (notified + in progress,
// what max_concurrency caps) from the database every 150 ms.
type activeSampler struct {
	samples, over, max atomic.Int64
	stop               context.CancelFunc
	done               chan struct{}
}

func sampleActive(st store.Store, jobID string, limit int64) *activeSampler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &activeSampler{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for {
			if c, err := st.CountTasks(ctx, jobID); err == nil {
				d := c.Dispatched()
				s.samples.Add(1)
				if d > limit {
					s.over.Add(1)
				}
				for {
					m := s.max.Load()
					if d <= m || s.max.CompareAndSwap(m, d) {
						break
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *activeSampler) end() {
	s.stop()
	<-s.done
}

// replicaRun is the outcome of one scenario.
type replicaRun struct {
	wall       time.Duration
	kills      int
	maxActive  int64
	samples    int64
	over       int64
	stuck      int
	duplicates int64
}

// TestReplicasKill9 runs the scenario with two replicas (one killed three
// times) and with one replica, and compares their wall times.
func TestReplicasKill9(t *testing.T) {
	mosq := testenv.MosquittoAddr(t)
	dsn := testenv.PostgresDSN(t)
	bin := buildUpdraft(t)
	n := fleetSize * replicaFleetFactor
	var two, one replicaRun
	t.Run("two replicas, kill -9 ×3", func(t *testing.T) { two = runReplicas(t, bin, dsn, mosq, n, 2, 3) })
	t.Run("one replica", func(t *testing.T) { one = runReplicas(t, bin, dsn, mosq, n, 1, 0) })
	t.Logf("%d devices, max_concurrency %d: two replicas with %d kills %v (max active %d in %d samples); one replica %v (max active %d in %d samples)",
		n, replicaCap, two.kills, two.wall.Round(time.Millisecond), two.maxActive, two.samples,
		one.wall.Round(time.Millisecond), one.maxActive, one.samples)
}

func runReplicas(t *testing.T, bin, dsn, mosq string, n, replicas, kills int) replicaRun {
	ctx := context.Background()
	schemaDSN := postgres.TestSchemaDSN(t, dsn)
	secretKey, signingKey := randomHex(32), randomHex(32)
	keyID, keySecret := "AKE2E"+strings.ToUpper(randomHex(6)), randomHex(20)
	blobDir := t.TempDir()
	bal := &balancer{}
	public := serveBalancer(t, bal)
	run := randomHex(4)
	// One client_id for every replica, as in production: each replica
	// leases a numbered slot ({client_id}-s{slot}-c{i}); a replica restarted
	// after kill -9 takes a vacant slot, and a live one drains a slot nobody
	// takes. The sessions of every slot are wiped when the test ends.
	clientID := "updraft-e2e-" + run
	t.Cleanup(func() { wipeSessions(t, mosq, clientID, replicaConsumers) })
	var reps []*replica
	for i := range replicas {
		addr := freeAddr(t)
		r := &replica{t: t, name: fmt.Sprintf("replica %d", i), bin: bin, addr: addr, log: filepath.Join(t.TempDir(), "serve.log"),
			args: []string{"--data", t.TempDir(), "--http", addr, "--db", schemaDSN, "--blob", "file:" + blobDir,
				"--public-url", public, "--log-level", "warn", "--console", "false",
				"--mqtt-broker", fmt.Sprintf("mqtt://%s?client_id=%s&group=e2e%s&consumers=%d", mosq, clientID, run, replicaConsumers)},
			env: []string{"UPDRAFT_SECRET_KEY=" + secretKey, "UPDRAFT_SIGNING_KEY=" + signingKey,
				"UPDRAFT_BOOTSTRAP_TENANT=e2e", "UPDRAFT_BOOTSTRAP_ACCESS_KEY=" + keyID, "UPDRAFT_BOOTSTRAP_SECRET_KEY=" + keySecret}}
		reps = append(reps, r)
		// Cleanups run last in, first out: the process stops before the
		// sessions are wiped and before the schema is dropped.
		t.Cleanup(r.stop)
		r.start() // one after the other: the first migrates and bootstraps
	}
	bal.backends = reps
	defer func() {
		if t.Failed() {
			for i, r := range reps {
				// Kept past the test (t.TempDir goes): the whole log of a
				// failed run is what explains it.
				kept := filepath.Join(os.TempDir(), fmt.Sprintf("updraft-e2e-replicas-%s-r%d.log", run, i))
				if b, err := os.ReadFile(r.log); err == nil && os.WriteFile(kept, b, 0o600) == nil {
					t.Logf("%s log kept in %s; last lines:\n%s", r.name, kept, tail(r.log, 60))
				}
			}
		}
	}()

	box, err := secrets.New(secretKey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, schemaDSN, store.Options{Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api := client.New(public, keyID, keySecret)

	product := "rep" + randomHex(4)
	mon := newTopicMonitor(t, mosq, product)
	f, err := sim.New(sim.Config{Server: public, KeyID: keyID, KeySecret: keySecret, MQTT: mosq, Product: product, Count: n,
		Version: "1.0", ConnectRate: 1000, AckTimeout: 10 * time.Second,
		// With an external broker devices do not see a replica die: a
		// notice claimed by the killed replica but never published reaches
		// its device through the device's own periodic check.
		CheckInterval: 10 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Create(ctx); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(ctx)
	fdone := make(chan error, 1)
	go func() { fdone <- f.Run(fctx) }()
	t.Cleanup(func() { fcancel(); <-fdone })
	online := func() int64 {
		_, total, err := st.ListDevices(ctx, store.DeviceFilter{ProductKey: product, Online: ptr(true)}, store.Page{Limit: 1}, true)
		if err != nil {
			t.Fatal(err)
		}
		return total
	}
	waitFor(t, 3*time.Minute, "every device online at the server", func() bool { return online() == int64(n) },
		func() string { return fmt.Sprintf("%d online; fleet %s", online(), f.Stats()) })

	content := make([]byte, 16<<10)
	rand.Read(content)
	pkg, err := api.UploadPackage(ctx, client.PackageMetadata{Product: product, Name: "fw-2", Version: "2.0"}, "fw-2.bin",
		bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	job, err := api.CreateJob(ctx, client.JobCreate{PackageID: pkg.ID, Name: "replicas", Target: client.JobTarget{All: true},
		MaxConcurrency: replicaCap, TimeoutSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}
	sampler := sampleActive(st, job.ID, replicaCap)
	defer sampler.end()

	var res replicaRun
	countTasks := func() ota.TaskCounts {
		c, err := st.CountTasks(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Kill the last replica when the fleet passes these shares of the
	// rollout; it is restarted as soon as it is gone.
	thresholds := []float64{0.15, 0.40, 0.65}[:kills]
	deadline := time.Now().Add(5 * time.Minute)
	for {
		j, err := st.GetJob(ctx, "e2e", job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == ota.JobCompleted || j.State == ota.JobCanceled {
			break
		}
		if time.Now().After(deadline) {
			c := countTasks()
			res.stuck = int(c.Active())
			t.Fatalf("job not completed after 5 minutes: %d tasks stuck (%v); fleet %s; kills %d; max active %d",
				res.stuck, c, f.Stats(), res.kills, sampler.max.Load())
		}
		if res.kills < len(thresholds) && float64(countTasks()[ota.TaskSucceeded]) >= thresholds[res.kills]*float64(n) {
			victim := reps[len(reps)-1]
			victim.kill9()
			res.kills++
			t.Logf("kill -9 #%d of %s at %v: %v", res.kills, victim.name, time.Since(start).Round(time.Millisecond), countTasks())
			victim.start()
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.wall = time.Since(start)
	sampler.end()
	res.maxActive, res.samples, res.over = sampler.max.Load(), sampler.samples.Load(), sampler.over.Load()

	// Every task succeeded on its one notice, every device runs 2.0 and
	// acted once, nothing went out on another protocol's topics.
	var tasks []ota.Task
	for after := int64(0); ; {
		page, _, err := st.ListTasks(ctx, store.TaskFilter{JobID: job.ID, AfterID: after, Limit: 1000}, store.Page{Limit: 1000}, false)
		if err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	byState := map[ota.TaskState]int{}
	devices := map[string]int{}
	for _, task := range tasks {
		byState[task.State]++
		devices[task.DeviceName]++
		if task.State.Active() {
			res.stuck++
		}
		if task.Attempts > 1 {
			res.duplicates += int64(task.Attempts - 1)
		}
	}
	_, onNew, err := st.ListDevices(ctx, store.DeviceFilter{ProductKey: product, Module: ota.DefaultModule, Versions: []string{"2.0"}},
		store.Page{Limit: 1}, true)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the devices to finish", func() bool { return f.Busy() == 0 }, func() string { return f.Stats().String() })
	fs := f.Stats()
	foreign, examples, notices, noticed, repeated := mon.figures()
	t.Logf("%d replicas, %d devices, cap %d: wall %v, kills %d; active sampled max %d in %d samples (%d over the cap); "+
		"tasks %v, stuck %d, extra attempts %d; devices on 2.0 %d; fleet %s; native notices %d to %d devices (%d devices more than once); foreign-protocol messages %d %v",
		replicas, n, replicaCap, res.wall.Round(time.Millisecond), res.kills, res.maxActive, res.samples, res.over,
		byState, res.stuck, res.duplicates, onNew, fs, notices, noticed, repeated, foreign, examples)
	t.Logf("HTTP requests cut by the kills (502 from the load balancer, retried by the devices): %d", bal.cut.Load())

	if res.kills != kills {
		t.Errorf("%d kills happened during the rollout, want %d (the rollout ended first)", res.kills, kills)
	}
	if res.over > 0 || res.maxActive > replicaCap {
		t.Errorf("max_concurrency %d exceeded in %d of %d samples (max %d)", replicaCap, res.over, res.samples, res.maxActive)
	}
	if len(tasks) != n || len(devices) != n || byState[ota.TaskSucceeded] != n {
		t.Errorf("%d tasks for %d devices, by state %v; want %d, all succeeded", len(tasks), len(devices), byState, n)
	}
	if res.stuck != 0 || res.duplicates != 0 {
		t.Errorf("%d tasks stuck, %d extra attempts; want none", res.stuck, res.duplicates)
	}
	if onNew != int64(n) {
		t.Errorf("%d devices report 2.0 at the server, want %d", onNew, n)
	}
	if fs.Succeeded != int64(n) || fs.Attempts != int64(n) || fs.Failed != 0 {
		t.Errorf("fleet %s: want %d succeeded after %d attempts", fs, n, n)
	}
	if foreign != 0 {
		t.Errorf("%d messages of product %s on another protocol's topics, such as %v", foreign, product, examples)
	}
	return res
}

func ptr[T any](v T) *T { return &v }
