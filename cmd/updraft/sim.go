package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	updraftserver "github.com/updraft-ota/updraft/internal/server"
	"github.com/updraft-ota/updraft/internal/sim"
)

func init() { rootCmd.AddCommand(newSimCmd()) }

func newSimCmd() *cobra.Command {
	var cfg sim.Config
	var timeout time.Duration
	var verbose bool
	var dialect string
	var keepRunning bool
	cmd := &cobra.Command{
		Use:   "sim --product P --count N --version V [--mqtt HOST:PORT] [--create --group G --server URL --key ID:SECRET]",
		Short: "Simulate a fleet of devices against a running server",
		Long: `Run N virtual devices, each a real device-SDK client, against a running server.
Devices start on --version, upgrade when told (they download and verify every
byte, and write nothing to disk), then report the new version.

Device names are --prefix plus a six-digit index (sim-000000 …). Their secrets
are derived from --secret-seed (default: the access key's secret), so
--create registers them once and later runs connect the same devices.

Failures are injected by device index, so the counts are exact:
  --offline S        that share of all devices never connects
  --fail-download R  that share of the online devices reports a download failure (-2)
  --fail-install R   that share of the others fails after a verified download (-4)
  --fail-attempts K  failing devices fail their first K notices, then succeed (0: always fail)
  --interrupt        every device's first download is cut half-way and resumed with Range

The devices connect to --mqtt, by default the address the server recorded in
credentials.json (the port it really bound). If the server does not answer the
first device there, sim warns: the devices are on some other broker.

A one-line summary is kept on stderr. The run ends when every online device
has succeeded (or, with failures injected, every one has a final outcome and no
notice came for --settle), at --timeout (exit status 1), or on Ctrl-C; with
--keep-running the fleet stays connected, for the next job, until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The same server and key resolution as every operator command,
			// credentials.json included; a missing key is the simulator's
			// own concern (it may run on --secret-seed alone).
			server, id, secret, err := resolveAccess(cmd)
			if err != nil && !errors.Is(err, errNoAccessKey) {
				return err
			}
			cfg.Server, cfg.KeyID, cfg.KeySecret = server, id, secret
			if ca := caCertFile(cmd); ca != "" {
				if cfg.TLS, err = trustConfig(ca); err != nil {
					return err
				}
			}
			if cfg.MQTT == "" && cfg.Transport == "mqtt" {
				if creds, err := updraftserver.ReadCredentials(credentialsPath(cmd)); err == nil {
					cfg.MQTT = creds.MQTT
				}
			}
			stderr := cmd.ErrOrStderr()
			cfg.Warn = func(msg string) { fmt.Fprintln(stderr, "\n"+msg) }
			if verbose {
				cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			}
			switch dialect {
			case "huawei": // sim_huawei.go
				return runHuaweiSim(cmd.Context(), cfg, timeout, cmd.ErrOrStderr())
			case "alibaba": // sim_alibaba.go
				return runAlibabaSim(cmd.Context(), cfg, timeout, cmd.ErrOrStderr())
			case "enos": // sim_enos.go
				return runEnOSSim(cmd.Context(), cfg, timeout, cmd.ErrOrStderr())
			case "native":
			default:
				return fmt.Errorf("--dialect %q: use native, huawei, alibaba or enos", dialect)
			}
			return runSim(cmd.Context(), cfg, timeout, keepRunning, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.String("server", "", "server URL, for --create and --transport http (env UPDRAFT_SERVER; default: credentials.json's)")
	f.String("key", "", "access key ID:SECRET, for --create; its secret seeds device secrets (env UPDRAFT_KEY; default: <data>/credentials.json)")
	f.String("data", "", "data directory holding credentials.json (env UPDRAFT_DATA; default ./updraft-data)")
	f.String("ca-cert", "", "CA certificate (PEM) the devices trust for https and ssl:// besides the system's (env UPDRAFT_CA_CERT; default: credentials.json's, from serve --tls auto)")
	f.StringVar(&cfg.MQTT, "mqtt", "", "MQTT broker HOST:PORT the devices connect to (default: credentials.json's)")
	f.StringVar(&cfg.Product, "product", "", "product key of the devices")
	f.IntVar(&cfg.Count, "count", 0, "number of devices")
	f.StringVar(&cfg.Version, "version", "", "version the devices start on")
	f.BoolVar(&cfg.Create, "create", false, "register the devices (and the product) first; existing ones are kept")
	f.StringVar(&cfg.Group, "group", "", "with --create: put new devices in this group (target them with job create --group)")
	f.BoolVar(&keepRunning, "keep-running", false, "keep the fleet connected after every device is done, until Ctrl-C or --timeout")
	f.StringVar(&cfg.Transport, "transport", "mqtt", "mqtt (notices pushed) or http (devices poll)")
	f.Float64Var(&cfg.FailDownload, "fail-download", 0, "share of online devices whose download fails")
	f.Float64Var(&cfg.FailInstall, "fail-install", 0, "share of the other online devices whose install fails")
	f.Float64Var(&cfg.Offline, "offline", 0, "share of devices that never connect")
	f.IntVar(&cfg.FailAttempts, "fail-attempts", 0, "failing devices fail this many notices, then succeed (0: always)")
	f.BoolVar(&cfg.Interrupt, "interrupt", false, "cut each device's first download half-way (it resumes with Range)")
	f.StringVar(&cfg.Prefix, "prefix", "sim-", "device name prefix")
	f.StringVar(&cfg.Module, "module", "default", "module the devices report and upgrade")
	f.StringVar(&cfg.SecretSeed, "secret-seed", "", "seed of the device secrets (default: the --key secret)")
	f.IntVar(&cfg.ConnectRate, "connect-rate", 1000, "devices connecting per second")
	f.IntVar(&cfg.DownloadConns, "download-conns", 256, "concurrent download connections")
	f.IntVar(&cfg.ProgressEvery, "progress-every", 0, "each device reports its download's progress every this many percent, as vendor SDK devices do (0: only when it starts and once installed)")
	f.DurationVar(&cfg.PollInterval, "poll", 10*time.Second, "poll interval with --transport http")
	f.DurationVar(&cfg.CheckInterval, "check-interval", 30*time.Minute, "MQTT devices ask for pending updates this often (a safety net for lost notices)")
	f.DurationVar(&cfg.Settle, "settle", 30*time.Second, "with failures injected: quiet time after which the run is over")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0: no limit)")
	f.BoolVar(&verbose, "verbose", false, "log device warnings to stderr")
	f.StringVar(&dialect, "dialect", "native", "device protocol: native, huawei (IoTDA MQTT; device ids {product}_{name}), alibaba (Alink MQTT; user {name}&{product}) or enos (EnOS MQTT + HTTP download; --server needed)")
	return cmd
}

func runSim(ctx context.Context, cfg sim.Config, timeout time.Duration, keepRunning bool, stderr io.Writer) error {
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	c := s.Counts()
	fmt.Fprintf(stderr, "sim: %d devices of %s on %s over %s: %d upgrade, %d offline, %d fail download, %d fail install%s\n",
		cfg.Count, cfg.Product, cfg.Version, cfg.Transport, c[sim.Upgrade], c[sim.Offline], c[sim.FailDownload], c[sim.FailInstall],
		map[bool]string{true: ", downloads interrupted once", false: ""}[cfg.Interrupt])

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	start := time.Now()
	go func() { runErr <- s.Run(runCtx) }()

	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	every := 5 * time.Second
	if tty {
		every = time.Second
	}
	line := func(final bool) {
		msg := fmt.Sprintf("%s  %s", s.Stats(), time.Since(start).Round(time.Second))
		switch {
		case tty && !final:
			fmt.Fprintf(stderr, "\r\033[K%s", msg)
		case tty:
			fmt.Fprintf(stderr, "\r\033[K%s\n", msg)
		default:
			fmt.Fprintln(stderr, msg)
		}
	}
	show := time.NewTicker(every)
	defer show.Stop()
	check := time.NewTicker(200 * time.Millisecond)
	defer check.Stop()
	var outcome error
	idle := false // keepRunning: every device done and said so
loop:
	for {
		select {
		case <-show.C:
			line(false)
		case <-check.C:
			if !s.Done() {
				idle = false
				continue
			}
			if !keepRunning {
				break loop
			}
			if !idle {
				idle = true
				line(true)
				fmt.Fprintln(stderr, "sim: every device is done; --keep-running: the fleet stays connected until Ctrl-C")
			}
		case <-deadline:
			if keepRunning && s.Done() {
				break loop
			}
			st := s.Stats()
			outcome = fmt.Errorf("timed out after %s: %d of %d online devices have no final outcome",
				timeout, st.Devices-st.Offline-st.Succeeded-st.Failed, st.Devices-st.Offline)
			break loop
		case <-ctx.Done():
			if keepRunning && s.Done() {
				break loop // the fleet had finished its work: a normal end
			}
			outcome = errors.New("interrupted")
			break loop
		case err := <-runErr:
			// Run ends early only when it cannot start (e.g. --create failed).
			line(true)
			return err
		}
	}
	cancel()
	err = <-runErr
	line(true)
	if outcome != nil {
		return outcome
	}
	return err
}
