package main

// updraft audit list: the audit log of changes.

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newAuditCmd()) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log of changes",
		Long: "Read the audit log: every change made through any API (who, tenant, what, when, request id), newest first.\n" +
			"Any key reads its own tenant's log; admin keys of the operator tenant may pass --tenant (\"*\" for all)."}
	addClientFlags(cmd)
	cmd.AddCommand(newAuditListCmd())
	return cmd
}

func newAuditListCmd() *cobra.Command {
	var f client.AuditFilter
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, t := range []struct {
				flag, v string
				dst     *time.Time
			}{{"since", since, &f.Since}, {"until", until, &f.Until}} {
				if t.v == "" {
					continue
				}
				v, err := time.Parse(time.RFC3339, t.v)
				if err != nil {
					return fmt.Errorf("--%s must be an RFC 3339 time (2026-01-02T15:04:05Z), got %q", t.flag, t.v)
				}
				*t.dst = v
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListAudit(cmd.Context(), f)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "AT", "TENANT", "ACTOR", "ROLE", "ACTION", "RESOURCE", "REQUEST ID", "DETAIL")
			for _, e := range l.Items {
				t.row(when(e.At), e.Tenant, e.ActorKeyID, e.ActorRole, e.Action, e.ResourceType+" "+e.ResourceID, e.RequestID, e.Detail)
			}
			if err := t.flush(); err != nil {
				return err
			}
			footer(cmd.OutOrStdout(), len(l.Items), l.Total)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Tenant, "tenant", "", "tenant (default: yours; another or * needs an operator admin key)")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only changes by this access key id")
	cmd.Flags().StringVar(&f.Action, "action", "", "only this action, e.g. job.create, package.delete, key.revoke")
	cmd.Flags().StringVar(&f.ResourceType, "resource-type", "", "only this resource type, e.g. job, package, key, tenant, device")
	cmd.Flags().StringVar(&f.ResourceID, "resource-id", "", "only this resource id")
	cmd.Flags().StringVar(&since, "since", "", "only entries at or after this RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "only entries before this RFC 3339 time")
	pageFlags(cmd, &f.Page)
	return cmd
}
