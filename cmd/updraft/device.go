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
	cmd.AddCommand(newDeviceCreateCmd(), newDeviceListCmd(), newDeviceShowCmd(), newDeviceRegroupCmd(), newDeviceLabelCmd(), newDeviceDeleteCmd(),
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

// versions formats key=value pairs (module=version, labels), sorted ("-"
// when none).
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

func newDeviceLabelCmd() *cobra.Command {
	var attrs, tags []string
	var clearAttrs, clearTags bool
	cmd := &cobra.Command{
		Use:   "label PRODUCT NAME [--attr K=V]... [--tag K=V]... [--clear-attrs] [--clear-tags]",
		Short: "Replace a device's attributes and/or tags (labels jobs may target)",
		Long: `Replace a device's attributes (--attr, repeatable) and/or its tags (--tag,
repeatable); --clear-attrs / --clear-tags remove them all. What is not given
stays. Jobs targeting attributes or tags (EnOS upgradeScope, the API's
target.attributes/tags) take the devices carrying every pair.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			parse := func(flag string, kvs []string, clear bool) (map[string]string, error) {
				if clear && len(kvs) > 0 {
					return nil, usageErr(cmd, "--clear-%ss and --%s exclude each other", flag, flag)
				}
				if clear {
					return map[string]string{}, nil
				}
				if len(kvs) == 0 {
					return nil, nil
				}
				m := map[string]string{}
				for _, kv := range kvs {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return nil, usageErr(cmd, "--%s %q: use KEY=VALUE", flag, kv)
					}
					m[k] = v
				}
				return m, nil
			}
			am, err := parse("attr", attrs, clearAttrs)
			if err != nil {
				return err
			}
			tm, err := parse("tag", tags, clearTags)
			if err != nil {
				return err
			}
			if am == nil && tm == nil {
				return usageErr(cmd, "give --attr, --tag, --clear-attrs or --clear-tags")
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			d, err := c.SetDeviceLabels(cmd.Context(), args[0], args[1], am, tm)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, d)
			}
			return printFields(cmd.OutOrStdout(), "product", d.Product, "device", d.Name,
				"attributes", versions(d.Attributes), "tags", versions(d.Tags))
		},
	}
	cmd.Flags().StringArrayVar(&attrs, "attr", nil, "an attribute KEY=VALUE (repeatable; replaces all attributes)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "a tag KEY=VALUE (repeatable; replaces all tags)")
	cmd.Flags().BoolVar(&clearAttrs, "clear-attrs", false, "remove every attribute")
	cmd.Flags().BoolVar(&clearTags, "clear-tags", false, "remove every tag")
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
