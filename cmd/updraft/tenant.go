package main

// updraft tenant … and updraft key … (owner: security).

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newTenantCmd(), newKeyCmd()) }

func newTenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants (admin keys of the operator tenant)",
		Long: "Manage tenants. Only admin keys of the operator tenant (the one the first start creates) may do this.\n" +
			"A new tenant has no key: create one with `updraft key create --tenant ID --role admin`."}
	addClientFlags(cmd)
	cmd.AddCommand(newTenantCreateCmd(), newTenantListCmd(), newTenantDeleteCmd(), newTenantQuotaCmd())
	return cmd
}

func quotaFlags(cmd *cobra.Command, q *client.Quota) {
	cmd.Flags().Int64Var(&q.MaxPackages, "max-packages", 0, "quota: packages (0 = no limit)")
	cmd.Flags().Int64Var(&q.MaxStorageBytes, "max-storage-bytes", 0, "quota: total package bytes (0 = no limit)")
	cmd.Flags().Int64Var(&q.MaxDevices, "max-devices", 0, "quota: devices (0 = no limit)")
	cmd.Flags().Int64Var(&q.MaxRunningJobs, "max-running-jobs", 0, "quota: jobs that have not ended (0 = no limit)")
}

func printTenant(cmd *cobra.Command, t client.Tenant) error {
	asJSON, err := outputJSON(cmd)
	if err != nil || asJSON {
		return orPrintJSON(cmd, err, t)
	}
	return printFields(cmd.OutOrStdout(), "id", t.ID, "name", t.Name, "operator", strconv.FormatBool(t.Operator),
		"quota", quotaString(t.Quota), "created", when(t.CreatedAt))
}

func quotaString(q client.Quota) string {
	f := func(v int64) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("packages %s, storage bytes %s, devices %s, running jobs %s",
		f(q.MaxPackages), f(q.MaxStorageBytes), f(q.MaxDevices), f(q.MaxRunningJobs))
}

func newTenantCreateCmd() *cobra.Command {
	var in client.TenantCreate
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a tenant (ID: 1–64 of A-Z a-z 0-9 _ -)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			in.ID = args[0]
			t, err := c.CreateTenant(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printTenant(cmd, t)
		},
	}
	cmd.Flags().StringVar(&in.Name, "name", "", "display name (default: the id)")
	quotaFlags(cmd, &in.Quota)
	return cmd
}

func newTenantQuotaCmd() *cobra.Command {
	var q client.Quota
	cmd := &cobra.Command{
		Use:   "quota ID",
		Short: "Replace a tenant's quota (flags not given mean no limit)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			t, err := c.SetQuota(cmd.Context(), args[0], q)
			if err != nil {
				return err
			}
			return printTenant(cmd, t)
		},
	}
	quotaFlags(cmd, &q)
	return cmd
}

func newTenantListCmd() *cobra.Command {
	var page client.Page
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListTenants(cmd.Context(), page)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "OPERATOR", "CREATED", "QUOTA")
			for _, x := range l.Items {
				t.row(x.ID, x.Name, strconv.FormatBool(x.Operator), when(x.CreatedAt), quotaString(x.Quota))
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

func newTenantDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a tenant that owns no products, packages or jobs, with its keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteTenant(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted tenant %s\n", args[0])
			return err
		},
	}
}

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage access keys (admin keys)",
		Long: "Manage access keys. Roles: admin (everything, incl. keys), operator (products, devices, packages, jobs), readonly (reads only).\n" +
			"Without --tenant the command acts on the caller's tenant; another tenant needs an admin key of the operator tenant."}
	addClientFlags(cmd)
	cmd.AddCommand(newKeyCreateCmd(), newKeyListCmd(), newKeyRevokeCmd())
	return cmd
}

func newKeyCreateCmd() *cobra.Command {
	var tenant, role string
	cmd := &cobra.Command{
		Use:   "create [--tenant T] [--role admin|operator|readonly]",
		Short: "Create an access key; its secret is shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			k, err := c.CreateKey(cmd.Context(), tenant, role)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, k)
			}
			if err := printFields(cmd.OutOrStdout(), "access key id", k.ID, "secret", k.Secret, "tenant", k.Tenant, "role", k.Role); err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.ErrOrStderr(), "The secret is shown only now: store it safely.")
			return err
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant of the key (default: yours)")
	cmd.Flags().StringVar(&role, "role", "operator", "admin, operator or readonly")
	return cmd
}

func newKeyListCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "list [--tenant T]",
		Short: "List access keys (without secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			keys, err := c.ListKeys(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, keys)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "TENANT", "ROLE", "CREATED")
			for _, k := range keys {
				t.row(k.ID, k.Tenant, k.Role, when(k.CreatedAt))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (default: yours)")
	return cmd
}

func newKeyRevokeCmd() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "revoke KEY_ID [--tenant T]",
		Short: "Revoke an access key: it stops working at once on every replica",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), tenant, args[0]); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked access key %s\n", args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant of the key (default: yours)")
	return cmd
}
