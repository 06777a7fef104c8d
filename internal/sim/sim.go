// Package sim is the fleet simulator behind `updraft sim`: N virtual devices,
// each a real sdk/device client (MQTT or HTTP), against a running server.
// Devices start on a version, upgrade when told (download and verify every
// byte, write nothing to disk) and report the new version. Failures are
// injected deterministically by device index, so counts are exact and runs
// repeat.
package sim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/updraft-ota/updraft/client"
	"github.com/updraft-ota/updraft/sdk/device"
	"github.com/updraft-ota/updraft/sdk/device/wire"
)

// Config describes a simulated fleet.
type Config struct {
	Server    string // base URL of the server (HTTP transport, --create)
	KeyID     string // access key, for --create (and as the default secret seed)
	KeySecret string
	MQTT      string // broker host:port (MQTT transport)
	Product   string
	Count     int
	Prefix    string // device names are Prefix + 6-digit index (default "sim-")
	Version   string // the version devices start on
	Module    string // the module they run it on (default "default")
	Create    bool   // register the devices first (existing ones are kept)
	Group     string // the group Create puts new devices in ("" none), so a job can target the fleet alone
	Transport string // "mqtt" (default) or "http"
	// TLS is the devices' and the fleet's client TLS configuration for an
	// https server and an ssl:// broker (nil: the system roots), e.g. one
	// that trusts the ca.pem of `serve --tls auto`.
	TLS *tls.Config

	// Failure injection, by device index (see Plan): Offline of all devices
	// never connect; FailDownload of the online ones fail their download
	// (progress -2); FailInstall of the rest fail after a verified download
	// (progress -4). A failing device fails its first FailAttempts notices
	// and succeeds afterwards (0: it fails every one). Interrupt cuts every
	// device's first download half-way, so it resumes with Range.
	Offline      float64
	FailDownload float64
	FailInstall  float64
	FailAttempts int
	Interrupt    bool

	// SecretSeed derives each device's secret (HMAC-SHA256(seed, product/
	// name)); default KeySecret. The same seed gives the same secrets, so a
	// later run without Create connects the devices an earlier run created.
	SecretSeed string
	// ConnectRate is how many devices connect per second (default 1000).
	ConnectRate int
	// DownloadConns bounds concurrent download connections (default 256).
	DownloadConns int
	// ProgressEvery makes each device report its download's progress every
	// this many percent, as vendor SDK devices do (0: only when it starts,
	// and 100 once it has installed).
	ProgressEvery int
	// PollInterval is the HTTP transport's poll period (default 10 s).
	PollInterval time.Duration
	// Settle: with failing devices, the run ends once every online device
	// has succeeded or failed and no notice arrived for this long (default
	// 30 s). Without failures it ends when all have succeeded.
	Settle time.Duration
	// AckTimeout is the devices' MQTT acknowledgement timeout (default 10 s).
	AckTimeout time.Duration
	// CheckInterval is how often MQTT devices ask for pending updates on
	// their own (default: the SDK's, 30 minutes).
	CheckInterval time.Duration
	// ProbeTimeout: the first MQTT device to connect asks the server for
	// its update; no answer within this long means the devices are on a
	// broker the server does not serve, and Warn is told (default 15 s).
	ProbeTimeout time.Duration
	// Warn receives problems the operator must see (nil: the Logger).
	Warn   func(msg string)
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Prefix == "" {
		c.Prefix = "sim-"
	}
	if c.Module == "" {
		c.Module = device.DefaultModule
	}
	if c.Transport == "" {
		c.Transport = "mqtt"
	}
	if c.SecretSeed == "" {
		c.SecretSeed = c.KeySecret
	}
	if c.ConnectRate <= 0 {
		c.ConnectRate = 1000
	}
	if c.DownloadConns <= 0 {
		c.DownloadConns = 256
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 10 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 15 * time.Second
	}
	if c.Warn == nil {
		c.Warn = func(msg string) { c.Logger.Warn(msg) }
	}
	switch {
	case c.Product == "":
		return errors.New("--product is required")
	case c.Count <= 0:
		return errors.New("--count must be at least 1")
	case c.Version == "":
		return errors.New("--version (the version devices start on) is required")
	case c.SecretSeed == "":
		return errors.New("--key ID:SECRET (or --secret-seed) is required: device secrets derive from it")
	case c.Transport != "mqtt" && c.Transport != "http":
		return fmt.Errorf("--transport %q: use mqtt or http", c.Transport)
	case c.Transport == "mqtt" && c.MQTT == "":
		return errors.New("--mqtt HOST:PORT is required with --transport mqtt (or run where the server's credentials.json records it)")
	case (c.Transport == "http" || c.Create) && c.Server == "":
		return errors.New("--server URL is required with --transport http or --create")
	case c.Create && c.KeyID == "":
		return errors.New("--key ID:SECRET is required with --create")
	}
	for name, r := range map[string]float64{"--offline": c.Offline, "--fail-download": c.FailDownload, "--fail-install": c.FailInstall} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s %v: use a share between 0 and 1", name, r)
		}
	}
	return nil
}

// Behaviour is what one simulated device does.
type Behaviour int

const (
	Upgrade      Behaviour = iota // downloads, verifies, reports the new version
	Offline                       // never connects
	FailDownload                  // reports -2 instead of downloading
	FailInstall                   // downloads and verifies, then reports -4
)

func (b Behaviour) String() string {
	return [...]string{"upgrade", "offline", "fail-download", "fail-install"}[b]
}

// picked spreads floor(n·share) picks evenly over indices 0..n-1, in exact
// integer arithmetic (shares are taken in millionths).
func picked(i int, share float64) bool {
	ppm := int64(share*1e6 + 0.5)
	return (int64(i+1)*ppm)/1e6-(int64(i)*ppm)/1e6 == 1
}

// Plan assigns a behaviour to each device index: offline among all devices,
// then download failures among the online ones (by their rank), then install
// failures among the rest. The counts are floor(N·share) at each step.
func Plan(count int, offline, failDownload, failInstall float64) []Behaviour {
	plan := make([]Behaviour, count)
	online, rest := 0, 0
	for i := range plan {
		if picked(i, offline) {
			plan[i] = Offline
			continue
		}
		j := online
		online++
		if picked(j, failDownload) {
			plan[i] = FailDownload
			continue
		}
		k := rest
		rest++
		if picked(k, failInstall) {
			plan[i] = FailInstall
		}
	}
	return plan
}

// Name is the name of device i.
func (c *Config) Name(i int) string { return fmt.Sprintf("%s%06d", c.Prefix, i) }

// Secret derives the secret of a device.
func Secret(seed, product, name string) string {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte(product + "/" + name))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// Stats are the fleet's counters.
type Stats struct {
	Devices     int64 // simulated
	Offline     int64 // never connect (injected)
	Connected   int64 // connections up now
	Notified    int64 // devices that received at least one notice
	Downloading int64 // downloads running now
	Succeeded   int64 // devices that reported the new version
	Failed      int64 // devices whose latest attempt failed
	Attempts    int64 // notices acted on
	Bytes       int64 // downloaded and verified
	Resumed     int64 // downloads resumed after an interruption
	StartErrors int64 // failed connection attempts (retried)
	Dropped     int64 // connections lost after they were up (each reconnects, and its will reaches the server)
}

// String is the one-line summary.
func (s Stats) String() string {
	return fmt.Sprintf("connected %d/%d  notified %d  downloading %d  succeeded %d  failed %d  (attempts %d, %d MB; connections dropped %d)",
		s.Connected, s.Devices-s.Offline, s.Notified, s.Downloading, s.Succeeded, s.Failed, s.Attempts, s.Bytes>>20, s.Dropped)
}

// Sim is a running fleet.
type Sim struct {
	cfg  Config
	plan []Behaviour
	hc   *http.Client

	connected, notified, downloading, succeeded, failed, attempts, bytes, resumed, startFailures, dropped atomic.Int64

	busy       atomic.Int64 // handlers running
	lastNotice atomic.Int64 // unix nanos
	devs       []*simDevice
	probe      sync.Once
}

type simDevice struct {
	i         int
	name      string
	behaviour Behaviour
	client    device.Client

	mu        sync.Mutex
	version   string
	attempts  int
	notified  bool
	succeeded bool
	failed    bool
	cut       bool // the interruption has happened
}

// New checks cfg and plans the fleet.
func New(cfg Config) (*Sim, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:       cfg.DownloadConns,
		MaxIdleConns:          cfg.DownloadConns,
		MaxIdleConnsPerHost:   cfg.DownloadConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSClientConfig:       cfg.TLS,
	}
	return &Sim{cfg: cfg, plan: Plan(cfg.Count, cfg.Offline, cfg.FailDownload, cfg.FailInstall), hc: &http.Client{Transport: tr}}, nil
}

// Plan returns each device's behaviour.
func (s *Sim) Plan() []Behaviour { return s.plan }

// Counts sums the plan by behaviour.
func (s *Sim) Counts() map[Behaviour]int {
	m := map[Behaviour]int{}
	for _, b := range s.plan {
		m[b]++
	}
	return m
}

// Stats returns the counters now.
func (s *Sim) Stats() Stats {
	c := s.Counts()
	return Stats{
		Devices: int64(s.cfg.Count), Offline: int64(c[Offline]),
		Connected: s.connected.Load(), Notified: s.notified.Load(), Downloading: s.downloading.Load(),
		Succeeded: s.succeeded.Load(), Failed: s.failed.Load(), Attempts: s.attempts.Load(),
		Bytes: s.bytes.Load(), Resumed: s.resumed.Load(), StartErrors: s.startFailures.Load(),
		Dropped: s.dropped.Load(),
	}
}

// Busy is the number of devices acting on a notice now.
func (s *Sim) Busy() int64 { return s.busy.Load() }

// Done reports whether the fleet has finished: every online device
// succeeded, or every one has a final outcome and no notice came for Settle.
func (s *Sim) Done() bool {
	st := s.Stats()
	online := st.Devices - st.Offline
	if st.Succeeded == online {
		return true
	}
	last := time.Unix(0, s.lastNotice.Load())
	return st.Succeeded+st.Failed == online && st.Downloading == 0 && time.Since(last) > s.cfg.Settle
}

// Create registers the devices (with their derived secrets) that do not
// exist yet.
func (s *Sim) Create(ctx context.Context) error {
	c := client.New(s.cfg.Server, s.cfg.KeyID, s.cfg.KeySecret, client.WithHTTPClient(s.hc))
	if _, err := c.GetProduct(ctx, s.cfg.Product); client.IsNotFound(err) {
		if _, err := c.CreateProduct(ctx, client.ProductCreate{Key: s.cfg.Product, Name: s.cfg.Product}); err != nil && !client.IsConflict(err) {
			return fmt.Errorf("creating product %s: %w", s.cfg.Product, err)
		}
	} else if err != nil {
		return fmt.Errorf("looking up product %s: %w", s.cfg.Product, err)
	}
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := s.cfg.Name(i)
				in := client.DeviceCreate{Name: name, Secret: Secret(s.cfg.SecretSeed, s.cfg.Product, name)}
				if s.cfg.Group != "" {
					in.Groups = []string{s.cfg.Group}
				}
				_, err := c.CreateDevice(ctx, s.cfg.Product, in)
				if err != nil && !client.IsConflict(err) {
					select {
					case errs <- fmt.Errorf("creating device %s: %w", name, err):
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < s.cfg.Count; i++ {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			wg.Wait()
			return err
		case <-ctx.Done():
			close(work)
			wg.Wait()
			return ctx.Err()
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// Run creates the devices if asked, connects the online ones at
// ConnectRate, and lets them work until ctx ends; then it disconnects them.
// Callers decide when the run is over (Done, a timeout, a signal).
func (s *Sim) Run(ctx context.Context) error {
	if s.cfg.Create {
		if err := s.Create(ctx); err != nil {
			return err
		}
	}
	s.lastNotice.Store(time.Now().UnixNano())
	defer s.closeAll()
	tick := time.NewTicker(time.Second / time.Duration(s.cfg.ConnectRate))
	defer tick.Stop()
	var wg sync.WaitGroup
	for i, b := range s.plan {
		if b == Offline {
			continue
		}
		d := &simDevice{i: i, name: s.cfg.Name(i), behaviour: b, version: s.cfg.Version}
		s.devs = append(s.devs, d)
		select {
		case <-tick.C:
		case <-ctx.Done():
			wg.Wait()
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.start(ctx, d)
		}()
	}
	wg.Wait()
	<-ctx.Done()
	return nil
}

func (s *Sim) closeAll() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, d := range s.devs {
		d.mu.Lock()
		c := d.client
		d.mu.Unlock()
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c.Close()
			<-sem
		}()
	}
	wg.Wait()
	s.hc.CloseIdleConnections()
}

// start builds the device's client and connects it, retrying (with
// back-off) until it is up or ctx ends: a server that is down or overloaded
// at first does not lose devices.
func (s *Sim) start(ctx context.Context, d *simDevice) {
	cfg := device.Config{
		Product: s.cfg.Product, Name: d.name, Secret: Secret(s.cfg.SecretSeed, s.cfg.Product, d.name),
		Versions: map[string]string{s.cfg.Module: s.cfg.Version}, Logger: s.cfg.Logger,
	}
	var c device.Client
	var err error
	switch s.cfg.Transport {
	case "http":
		c, err = device.NewHTTP(device.HTTPConfig{Config: cfg, Server: s.cfg.Server, Client: s.hc, PollInterval: s.cfg.PollInterval})
	default:
		c, err = device.NewMQTT(device.MQTTConfig{Config: cfg, Broker: s.cfg.MQTT, TLS: s.cfg.TLS, AckTimeout: s.cfg.AckTimeout, CheckInterval: s.cfg.CheckInterval,
			OnConnect: func() { s.connected.Add(1) }, OnConnectionLost: func(error) { s.connected.Add(-1); s.dropped.Add(1) }})
	}
	if err != nil {
		s.cfg.Logger.Error("sim: device not created", "device", d.name, "err", err)
		return
	}
	c.OnNotice(func(ctx context.Context, n device.Notice) { s.handle(ctx, d, n) })
	d.mu.Lock()
	d.client = c
	d.mu.Unlock()
	// A device that cannot start (server or broker not up yet) keeps trying
	// until the sim stops: about 1 s, doubling up to 30 s, ±50 % so that a
	// fleet started against a server that is down does not return in step.
	if _, err := backoff.Retry(ctx, func() (struct{}, error) { return struct{}{}, c.Start(ctx) },
		backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: time.Second, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 30 * time.Second}),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			s.startFailures.Add(1)
			s.cfg.Logger.Warn("sim: device could not start; retrying", "device", d.name, "in", wait, "err", err)
		})); err != nil {
		return // the sim is stopping
	}
	if s.cfg.Transport == "http" {
		s.connected.Add(1)
		return
	}
	s.probe.Do(func() { go s.probeBroker(ctx, c) })
}

// probeBroker asks the server, through the broker the devices connected to,
// for the device's update. Any broker accepts the connection and counts as
// "connected"; only the server's own broker (or one it consumes) answers.
// Without an answer the whole fleet would sit there unseen by the server.
func (s *Sim) probeBroker(ctx context.Context, c device.Client) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	if _, err := c.Check(pctx, s.cfg.Module); err == nil || ctx.Err() != nil {
		return
	}
	s.cfg.Warn(fmt.Sprintf("WARNING: the devices connected to the MQTT broker at %s, but the server did not answer there within %s: "+
		"it is probably not the server's broker (another broker on that port?). The server records its devices' MQTT address in "+
		"credentials.json (\"mqtt\") and in /healthz; pass that one as --mqtt.", s.cfg.MQTT, s.cfg.ProbeTimeout))
}

// handle is a device acting on a notice.
func (s *Sim) handle(ctx context.Context, d *simDevice, n device.Notice) {
	s.busy.Add(1)
	defer s.busy.Add(-1)
	now := time.Now().UnixNano()
	s.lastNotice.Store(now)
	d.mu.Lock()
	if d.version == n.Version {
		// Already there (a late copy of a finished upgrade): say so again.
		d.mu.Unlock()
		_ = d.client.ReportVersion(ctx, n.Module, n.Version)
		return
	}
	d.attempts++
	attempt := d.attempts
	if !d.notified {
		d.notified = true
		s.notified.Add(1)
	}
	if d.failed {
		d.failed = false
		s.failed.Add(-1)
	}
	d.mu.Unlock()
	s.attempts.Add(1)

	failing := d.behaviour == FailDownload || d.behaviour == FailInstall
	fails := failing && (s.cfg.FailAttempts == 0 || attempt <= s.cfg.FailAttempts)
	report := func(step int, desc string) error {
		return d.client.ReportProgress(ctx, device.Progress{TaskID: n.TaskID, Module: n.Module, Step: step, Desc: desc})
	}
	fail := func(step int, desc string) {
		if err := report(step, desc); err != nil {
			s.cfg.Logger.Warn("sim: failure not reported", "device", d.name, "err", err)
		}
		d.mu.Lock()
		d.failed = true
		d.mu.Unlock()
		s.failed.Add(1)
	}
	if err := report(0, "downloading"); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Debug("sim: progress not reported", "device", d.name, "err", err)
	}
	if fails && d.behaviour == FailDownload {
		fail(wire.StepDownloadFailed, fmt.Sprintf("simulated download failure (attempt %d)", attempt))
		return
	}
	s.downloading.Add(1)
	err := s.download(ctx, d, n, report)
	s.downloading.Add(-1)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		fail(device.FailureStep(err), err.Error())
		return
	}
	if fails {
		fail(wire.StepInstallFailed, fmt.Sprintf("simulated install failure (attempt %d)", attempt))
		return
	}
	if err := report(100, "installing"); err != nil && ctx.Err() == nil {
		s.cfg.Logger.Debug("sim: progress not reported", "device", d.name, "err", err)
	}
	if err := d.client.ReportVersion(ctx, n.Module, n.Version); err != nil {
		if ctx.Err() != nil {
			return
		}
		// Installed: the device is on the new version whether or not the
		// report got through (a server restart can lose the broker's
		// acknowledgement of a report it applied). The client keeps the
		// version and reports it again when it reconnects, as a real
		// device does; counting the device failed would be wrong.
		s.cfg.Logger.Warn("sim: new version not acknowledged; the device reports it again when it reconnects",
			"device", d.name, "version", n.Version, "err", err)
	}
	d.mu.Lock()
	d.version = n.Version
	first := !d.succeeded
	d.succeeded = true
	d.mu.Unlock()
	if first {
		s.succeeded.Add(1)
	}
}

// download fetches and verifies the package, discarding the bytes, and
// reports its progress every ProgressEvery percent.
func (s *Sim) download(ctx context.Context, d *simDevice, n device.Notice, report func(step int, desc string) error) error {
	hc := s.hc
	d.mu.Lock()
	cut := s.cfg.Interrupt && !d.cut
	d.cut = d.cut || cut
	d.mu.Unlock()
	if cut {
		hc = &http.Client{Transport: &cutOnce{base: s.hc.Transport, resumed: &s.resumed}}
	}
	dl := device.Downloader{Client: hc, Backoff: 500 * time.Millisecond, Attempts: 7} // ~30 s without progress before giving up
	if every := s.cfg.ProgressEvery; every > 0 {
		next := int64(every)
		dl.OnProgress = func(received, total int64) {
			if total <= 0 {
				return
			}
			pct := received * 100 / total
			if pct < next || pct >= 100 { // 100 is reported once installed
				return
			}
			next = (pct/int64(every) + 1) * int64(every)
			if err := report(int(pct), "downloading"); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Debug("sim: progress not reported", "device", d.name, "err", err)
			}
		}
	}
	err := dl.Download(ctx, n, discard{})
	if err == nil {
		s.bytes.Add(n.Size)
	}
	return err
}

// discard is an io.WriterAt that keeps nothing.
type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// cutOnce cuts its first response half-way (as a dropped connection would),
// so the download resumes with a Range request.
type cutOnce struct {
	base    http.RoundTripper
	done    bool
	resumed *atomic.Int64
}

func (c *cutOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || c.done {
		if c.done && strings.HasPrefix(req.Header.Get("Range"), "bytes=") {
			c.resumed.Add(1)
		}
		return resp, err
	}
	c.done = true
	if resp.ContentLength > 1 {
		resp.Body = &cutBody{ReadCloser: resp.Body, left: resp.ContentLength / 2}
	}
	return resp, nil
}

type cutBody struct {
	io.ReadCloser
	left int64
}

var errCut = errors.New("sim: connection cut (injected)")

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
