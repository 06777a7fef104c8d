package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

func init() { rootCmd.AddCommand(newServeCmd()) }

// stopGrace is how long serve waits, after the HTTP drain's own timeout, for
// the background parts to stop before it exits regardless.
const stopGrace = 15 * time.Second

func newServeCmd() *cobra.Command {
	cfg := config.Default()
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Updraft server",
		Long: `Run the Updraft server: the management API and the vendor dialects, the device
MQTT broker and HTTP API, downloads and the rollout engine.

With no flags it keeps everything in ./updraft-data (SQLite and files), serves
HTTP on :8080 and MQTT on :1883. Every flag is also an environment variable
UPDRAFT_<FLAG> (--mqtt-broker is UPDRAFT_MQTT_BROKER); flags win.

On first start it creates tenant "default" with an access key, prints it once
and saves it in <data>/credentials.json (set UPDRAFT_BOOTSTRAP_TENANT,
UPDRAFT_BOOTSTRAP_ACCESS_KEY and UPDRAFT_BOOTSTRAP_SECRET_KEY to choose them).

TLS: --tls-cert FILE --tls-key FILE (or --tls auto, which creates a local CA
and server certificate in the data directory and prints where ca.pem is)
turn HTTP into HTTPS and add MQTT over TLS on --mqtts (default :8883). The
plain --mqtt listener stays unless you set --mqtt off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.ApplyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			cfg.Complete()
			if err := cfg.Validate(); err != nil {
				return err
			}
			log, err := cfg.NewLogger(os.Stderr)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				_ = srv.Shutdown(context.Background())
				return err
			}
			var serveErr error
			select {
			case <-ctx.Done():
				log.Info("shutting down: draining requests", "timeout", cfg.ShutdownTimeout)
			case serveErr = <-srv.Err():
			}
			stop() // a second signal now kills the process the default way

			shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			// The drain is bounded by shutdownCtx; the parts stopped after
			// it (broker, engine, stores) bound themselves too. This bound
			// is the last guarantee that SIGTERM ends the process even if
			// one of them does not.
			done := make(chan error, 1)
			go func() { done <- srv.Shutdown(shutdownCtx) }()
			select {
			case err := <-done:
				if err != nil && serveErr == nil {
					serveErr = err
				}
			case <-time.After(cfg.ShutdownTimeout + stopGrace):
				log.Error("shutdown did not finish; exiting anyway", "waited", cfg.ShutdownTimeout+stopGrace)
				return fmt.Errorf("shutdown did not finish within %v (UPDRAFT_SHUTDOWN_TIMEOUT + %v)", cfg.ShutdownTimeout+stopGrace, stopGrace)
			}
			return serveErr
		},
	}
	cfg.BindFlags(cmd.Flags())
	return cmd
}
