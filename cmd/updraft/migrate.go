package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/config"
	"github.com/updraft-ota/updraft/internal/server"
)

func init() { rootCmd.AddCommand(newMigrateCmd()) }

func newMigrateCmd() *cobra.Command {
	cfg := config.Default()
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and print the schema version",
		Long: `Apply the database migrations this binary knows and has not applied yet, then
print the schema version, and encrypt the device and access-key secrets still stored
in clear with the secret key (--secret-key-file, UPDRAFT_SECRET_KEY, or
<data>/secret.key). ` + "`updraft serve`" + ` does both on start too; run this first
to upgrade the schema of a replicated deployment in one place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.ApplyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			cfg.Complete()
			box, err := cfg.LoadSecretBox()
			if err != nil {
				return err
			}
			st, err := server.OpenStore(cmd.Context(), cfg.DBURL, box)
			if err != nil {
				return err
			}
			defer st.Close()
			before, _, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			if err := st.Migrate(cmd.Context()); err != nil {
				return fmt.Errorf("migrating the database (--db): %w", err)
			}
			applied, latest, err := st.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			sealed, err := st.SealSecrets(cmd.Context())
			if err != nil {
				return fmt.Errorf("encrypting the secrets stored in clear (--db): %w", err)
			}
			out := cmd.OutOrStdout()
			if sealed > 0 {
				fmt.Fprintf(out, "encrypted %d secret(s) that were stored in clear\n", sealed)
			}
			if applied == before {
				fmt.Fprintf(out, "schema version %d (latest %d): nothing to apply\n", applied, latest)
			} else {
				fmt.Fprintf(out, "schema version %d (latest %d): applied %d migration(s)\n", applied, latest, applied-before)
			}
			return nil
		},
	}
	cfg.BindFlags(cmd.Flags(), "data", "db", "secret-key-file")
	return cmd
}
