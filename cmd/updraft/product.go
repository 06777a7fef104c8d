package main

import (
	"fmt"
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newProductCmd()) }

func newProductCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "product", Short: "Manage products (device models)"}
	addClientFlags(cmd)
	cmd.AddCommand(newProductCreateCmd(), newProductListCmd(), newProductShowCmd(), newProductDeleteCmd())
	return cmd
}

func newProductCreateCmd() *cobra.Command {
	var in client.ProductCreate
	cmd := &cobra.Command{
		Use:   "create KEY --name NAME",
		Short: "Create a product",
		Long:  "Create a product. KEY (1–36 of A-Z a-z 0-9 _ -) is unique on the server; devices use it to connect.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			in.Key = args[0]
			p, err := c.CreateProduct(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printProduct(cmd, p)
		},
	}
	cmd.Flags().StringVar(&in.Name, "name", "", "display name (required)")
	cmd.Flags().StringVar(&in.Description, "desc", "", "description")
	cmd.Flags().StringVar(&in.Protocol, "protocol", "native", "device protocol its devices speak: native, huawei, alibaba or enos (fixed at creation)")
	cmd.Flags().StringVar(&in.Auth, "auth", "secret", "how its devices authenticate: secret or x509 (client certificate)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newProductListCmd() *cobra.Command {
	var page client.Page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List products",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListProducts(cmd.Context(), page)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "KEY", "NAME", "PROTOCOL", "CREATED", "DESCRIPTION")
			for _, p := range l.Items {
				t.row(p.Key, p.Name, p.Protocol, when(p.CreatedAt), p.Description)
			}
			if err := t.flush(); err != nil {
				return err
			}
			footer(cmd.OutOrStdout(), len(l.Items), l.Total)
			return nil
		},
	}
	pageFlags(cmd, &page)
	return cmd
}

func newProductShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show KEY",
		Short: "Show a product",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.GetProduct(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printProduct(cmd, p)
		},
	}
}

func printProduct(cmd *cobra.Command, p client.Product) error {
	asJSON, err := outputJSON(cmd)
	if err != nil || asJSON {
		return orPrintJSON(cmd, err, p)
	}
	return printFields(cmd.OutOrStdout(), "key", p.Key, "name", p.Name, "description", p.Description, "protocol", p.Protocol, "auth", p.Auth, "created", when(p.CreatedAt))
}

// orPrintJSON returns err, or prints v as JSON.
func orPrintJSON(cmd *cobra.Command, err error, v any) error {
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), v)
}

func newProductDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a product with its modules, devices, packages and finished jobs",
		Long: `Delete a product and everything of it: modules, devices, packages (and their
files) and finished jobs. Refused while one of its jobs is unfinished: cancel
that job first (updraft job cancel ID).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteProduct(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "product %s deleted\n", args[0])
			return nil
		},
	}
}
