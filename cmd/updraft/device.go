package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newDeviceCmd()) }

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Manage devices"}
	addClientFlags(cmd)
	cmd.AddCommand(newDeviceCreateCmd(), newDeviceListCmd(), newDeviceShowCmd(), newDeviceRegroupCmd(), newDeviceDeleteCmd(),
		newDeviceCancelTasksCmd())
	return cmd
}

func newDeviceCreateCmd() *cobra.Command {
	var in client.DeviceCreate
	cmd := &cobra.Command{
		Use:   "create PRODUCT NAME [--group G]...",
		Short: "Register a device and print its secret",
		Long: `Register a device of PRODUCT and print its secret: the device's credential for
MQTT and HTTP. It is shown only this once; store it on the device.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			in.Name = args[1]
			d, err := c.CreateDevice(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, d)
			}
			return printFields(cmd.OutOrStdout(), "product", d.Product, "device", d.Name,
				"groups", strings.Join(d.Groups, ","), "secret", d.Secret+"  (shown only once: store it on the device)")
		},
	}
	cmd.Flags().StringArrayVar(&in.Groups, "group", nil, "add the device to this group (repeatable)")
	cmd.Flags().StringVar(&in.Secret, "secret", "", "use this secret instead of a generated one")
	return cmd
}

func newDeviceListCmd() *cobra.Command {
	var f client.DeviceFilter
	cmd := &cobra.Command{
		Use:   "list PRODUCT",
		Short: "List a product's devices",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListDevices(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "ONLINE", "LAST SEEN", "VERSIONS", "GROUPS")
			for _, d := range l.Items {
				t.row(d.Name, strconv.FormatBool(d.Online), whenPtr(d), versions(d.Versions), strings.Join(d.Groups, ","))
			}
			if err := t.flush(); err != nil {
				return err
			}
			footer(cmd.OutOrStdout(), len(l.Items), l.Total)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.Groups, "group", nil, "only devices in this group (repeatable: any of them)")
	cmd.Flags().StringVar(&f.Module, "module", "", "the module --version applies to (default: default)")
	cmd.Flags().StringArrayVar(&f.Versions, "version", nil, "only devices reporting this version (repeatable)")
	pageFlags(cmd, &f.Page)
	return cmd
}

func newDeviceShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show PRODUCT NAME",
		Short: "Show a device",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			d, err := c.GetDevice(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, d)
			}
			return printFields(cmd.OutOrStdout(), "product", d.Product, "device", d.Name, "online", strconv.FormatBool(d.Online),
				"last seen", whenPtr(d), "versions", versions(d.Versions), "groups", strings.Join(d.Groups, ","), "created", when(d.CreatedAt))
		},
	}
}

func whenPtr(d client.Device) string {
	if d.LastSeen == nil {
		return "never"
	}
	return when(*d.LastSeen)
}

// versions formats module=version pairs, sorted ("-" when none reported).
func versions(v map[string]string) string {
	if len(v) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(v))
	for m, ver := range v {
		parts = append(parts, fmt.Sprintf("%s=%s", m, ver))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func newDeviceRegroupCmd() *cobra.Command {
	var groups []string
	var none bool
	cmd := &cobra.Command{
		Use:   "regroup PRODUCT NAME (--group G... | --none)",
		Short: "Replace a device's groups",
		Long: `Replace the groups of a device with the --group flags given (--none: no group).
Jobs created afterwards see the new groups; tasks of existing jobs stay.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(groups) == 0 && !none {
				return usageErr(cmd, "give the new groups with --group (repeatable), or --none to leave every group")
			}
			if len(groups) > 0 && none {
				return usageErr(cmd, "--none and --group exclude each other")
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			d, err := c.SetDeviceGroups(cmd.Context(), args[0], args[1], groups)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, d)
			}
			return printFields(cmd.OutOrStdout(), "product", d.Product, "device", d.Name, "groups", strings.Join(d.Groups, ","))
		},
	}
	cmd.Flags().StringArrayVar(&groups, "group", nil, "a group of the device (repeatable)")
	cmd.Flags().BoolVar(&none, "none", false, "remove the device from every group")
	return cmd
}

func newDeviceDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete PRODUCT NAME",
		Short: "Delete a device (its unfinished tasks are canceled)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteDevice(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "device %s/%s deleted\n", args[0], args[1])
			return nil
		},
	}
}
