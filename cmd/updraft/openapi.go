package main

import (
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/internal/api/management"
)

func init() { rootCmd.AddCommand(newOpenAPICmd()) }

func newOpenAPICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "openapi",
		Short: "Print the management API's OpenAPI document (as served at /api/v1/openapi.json)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := management.OpenAPIDocument()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(doc, '\n'))
			return err
		},
	}
}
