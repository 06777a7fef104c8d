package main

// Lifecycle commands beyond create/pause/resume/cancel: start a held job,
// change a job's or a package's settings, cancel tasks by state or id, and
// a device's tasks across jobs. Each is one API call (client/).

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func newJobUpdateCmd() *cobra.Command {
	var (
		in       client.JobUpdate
		desc     string
		conc     int
		perMin   int
		timeout  time.Duration
		tags     []string
		versions []string
	)
	cmd := &cobra.Command{
		Use:   "update ID [--description D] [--max-concurrency N] [--max-per-minute N] [--timeout DUR] [--tag K=V]... [--source-version V]...",
		Short: "Change an unfinished job's description, pace, timeout, tags or source versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("description") {
				in.Description = &desc
			}
			if fl.Changed("max-concurrency") {
				in.MaxConcurrency = &conc
			}
			if fl.Changed("max-per-minute") {
				in.MaxPerMinute = &perMin
			}
			if fl.Changed("timeout") {
				if timeout%time.Second != 0 {
					return errors.New("--timeout is whole seconds")
				}
				s := int(timeout / time.Second)
				in.TimeoutSeconds = &s
			}
			if fl.Changed("tag") {
				t, err := parseTags(tags)
				if err != nil {
					return err
				}
				in.Tags = &t
			}
			if fl.Changed("source-version") {
				in.SourceVersions = &versions
			}
			if in == (client.JobUpdate{}) {
				return errors.New("nothing to change: give at least one of --description, --max-concurrency, --max-per-minute, --timeout, --tag, --source-version")
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			j, err := c.UpdateJob(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, j)
			}
			return printJob(cmd.OutOrStdout(), j)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&desc, "description", "", "new description")
	fl.IntVar(&conc, "max-concurrency", 0, "tasks notified or in progress at once")
	fl.IntVar(&perMin, "max-per-minute", 0, "notices per minute (0: no limit)")
	fl.DurationVar(&timeout, "timeout", 0, "task timeout (5m–48h)")
	fl.StringArrayVar(&tags, "tag", nil, "KEY=VALUE sent with the notice (repeatable; replaces the job's tags)")
	fl.StringArrayVar(&versions, "source-version", nil, "only devices on these versions from now on (repeatable; replaces them)")
	return cmd
}

// withCancelWhere adds --state and --task-id to the cancel-tasks command:
// given, they cancel by state and/or task id in one call instead.
func withCancelWhere(cmd *cobra.Command) *cobra.Command {
	var states []string
	var ids []string
	byDevice := cmd.RunE
	cmd.Use = "cancel-tasks ID (DEVICE... | --all | --state S... | --task-id N...)"
	cmd.Args = cobra.MinimumNArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(states) == 0 && len(ids) == 0 {
			return byDevice(cmd, args)
		}
		if len(args) > 1 || cmd.Flags().Changed("all") {
			return errors.New("give devices, --all, or --state/--task-id: one of them")
		}
		taskIDs := make([]int64, len(ids))
		for i, s := range ids {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return fmt.Errorf("--task-id %q is not a task id (a positive integer, see `updraft job tasks %s`)", s, args[0])
			}
			taskIDs[i] = n
		}
		c, err := newAPIClient(cmd)
		if err != nil {
			return err
		}
		n, err := c.CancelTasksWhere(cmd.Context(), args[0], states, taskIDs)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d tasks canceled\n", n)
		return nil
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "cancel the unfinished tasks in this state (repeatable)")
	cmd.Flags().StringArrayVar(&ids, "task-id", nil, "cancel this task (repeatable)")
	return cmd
}

func newDeviceCancelTasksCmd() *cobra.Command {
	var module string
	cmd := &cobra.Command{
		Use:   "cancel-tasks PRODUCT NAME [--module M]",
		Short: "Cancel every unfinished task of a device, in any job",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			n, err := c.CancelDeviceTasks(cmd.Context(), args[0], args[1], module)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d tasks of device %s/%s canceled\n", n, args[0], args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "only tasks on this module")
	return cmd
}

func newPackageUpdateCmd() *cobra.Command {
	var (
		in                     client.PackageUpdate
		name, desc, customInfo string
		tags                   []string
	)
	cmd := &cobra.Command{
		Use:   "update ID [--name N] [--description D] [--custom-info I] [--tag K=V]...",
		Short: "Change a package's name, description, custom info or tags (what it installs never changes)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("name") {
				in.Name = &name
			}
			if fl.Changed("description") {
				in.Description = &desc
			}
			if fl.Changed("custom-info") {
				in.CustomInfo = &customInfo
			}
			if fl.Changed("tag") {
				t, err := parseTags(tags)
				if err != nil {
					return err
				}
				in.Tags = &t
			}
			if in == (client.PackageUpdate{}) {
				return errors.New("nothing to change: give at least one of --name, --description, --custom-info, --tag")
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.UpdatePackage(cmd.Context(), args[0], in)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, p)
			}
			return printFields(cmd.OutOrStdout(), "id", p.ID, "name", p.Name, "description", p.Description,
				"custom info", p.CustomInfo, "modified", when(p.ModifiedAt))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name")
	fl.StringVar(&desc, "description", "", "new description")
	fl.StringVar(&customInfo, "custom-info", "", "new custom info (sent to devices with the notice)")
	fl.StringArrayVar(&tags, "tag", nil, "KEY=VALUE (repeatable; replaces the package's tags)")
	return cmd
}
