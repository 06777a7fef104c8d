package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

func init() { rootCmd.AddCommand(newServeCmd()) }

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
UPDRAFT_BOOTSTRAP_ACCESS_KEY and UPDRAFT_BOOTSTRAP_SECRET_KEY to choose them).`,
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
			if err := srv.Shutdown(shutdownCtx); err != nil && serveErr == nil {
				serveErr = err
			}
			return serveErr
		},
	}
	cfg.BindFlags(cmd.Flags())
	return cmd
}
