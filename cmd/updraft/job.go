package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

func init() { rootCmd.AddCommand(newJobCmd()) }

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Create, follow and control rollout jobs"}
	addClientFlags(cmd)
	cmd.AddCommand(newJobCreateCmd(), newJobListCmd(), newJobShowCmd(), newJobWatchCmd(), newJobTasksCmd(),
		newJobStateCmd("pause", "Stop sending notices (notified devices may finish)", (*client.Client).PauseJob),
		newJobStateCmd("resume", "Resume a paused job", (*client.Client).ResumeJob),
		newJobStateCmd("cancel", "Cancel a job and its unfinished tasks", (*client.Client).CancelJob),
		newJobTaskActionCmd("retry", "Send failed or canceled tasks back to the queue", (*client.Client).RetryTasks),
		newJobTaskActionCmd("confirm", "Confirm tasks waiting for confirmation", (*client.Client).ConfirmTasks),
		withCancelWhere(newJobTaskActionCmd("cancel-tasks", "Cancel unfinished tasks", (*client.Client).CancelTasks)),
		newJobStateCmd("start", "Start a job created with --held", (*client.Client).StartJob),
		newJobUpdateCmd(),
	)
	return cmd
}

// jobCreateFlags are the create command's flags before translation.
type jobCreateFlags struct {
	in                     client.JobCreate
	verify, dynamic        bool
	start, finish, window  string
	utcOffset              string
	retryInterval, timeout time.Duration
	noPush, overwrite      bool
	held                   bool
	tags                   []string
}

func newJobCreateCmd() *cobra.Command {
	var f jobCreateFlags
	cmd := &cobra.Command{
		Use:   "create --package ID (--all | --device D... | --group G... | --source-version V...) [flags]",
		Short: "Create a job on a package and print its id",
		Long: `Create a job that rolls a package out to devices. The server answers at once;
its engine then creates the tasks and sends the notices within the job's
window, concurrency and rate. Follow it with: updraft job watch ID`,
		Example: `  updraft job create --package 69b0… --all --gray-percent 10 --window 22:00-06:00 --utc-offset +08:00
  updraft job create --package 69b0… --verify --device d1 --device d2
  updraft job create --package 69b0… --dynamic --source-version 1.0 --retry-count 2 --retry-interval 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.toCreate(time.Now())
			if err != nil {
				return err
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			j, err := c.CreateJob(cmd.Context(), in)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, j)
			}
			return printFields(cmd.OutOrStdout(), "job", j.ID, "state", j.State, "package", j.PackageID,
				"product", j.Product, "follow", "updraft job watch "+j.ID)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.in.PackageID, "package", "", "package id (required)")
	fl.StringVar(&f.in.Name, "name", "", "job name")
	fl.StringVar(&f.in.Description, "description", "", "job description")
	fl.BoolVar(&f.verify, "verify", false, "a verify job: at most 10 --device; passing it marks the package verified")
	fl.BoolVar(&f.dynamic, "dynamic", false, "devices that later report a matching version get tasks too")
	fl.BoolVar(&f.in.Target.All, "all", false, "every device of the package's product")
	fl.StringArrayVar(&f.in.Target.Devices, "device", nil, "this device (repeatable)")
	fl.StringArrayVar(&f.in.Target.Groups, "group", nil, "devices in this group (repeatable)")
	fl.Float64Var(&f.in.Target.GrayPercent, "gray-percent", 0, "take only this percentage of the matching devices (up to 3 decimals)")
	fl.Float64Var(&f.in.Target.GrayPercent, "gray", 0, "old name of --gray-percent")
	_ = fl.MarkDeprecated("gray", "use --gray-percent")
	fl.StringArrayVar(&f.in.Target.SourceVersions, "source-version", nil, "only devices on this version (repeatable)")
	fl.StringVar(&f.start, "start", "", "start time: RFC 3339, or a duration from now (30m)")
	fl.StringVar(&f.finish, "finish", "", "finish time: RFC 3339, or a duration from now; unfinished tasks are then canceled")
	fl.StringVar(&f.window, "window", "", "daily window HH:MM-HH:MM (22:00-06:00 spans midnight)")
	fl.StringVar(&f.utcOffset, "utc-offset", "", "the window's time zone: +08:00, -05:30 or minutes (default UTC)")
	fl.IntVar(&f.in.MaxConcurrency, "max-concurrency", 0, "tasks notified or in progress at once (default 300)")
	fl.IntVar(&f.in.MaxPerMinute, "max-per-minute", 0, "notices per minute, 10–10000 (default unlimited)")
	fl.IntVar(&f.in.Retry.Count, "retry-count", 0, "retry a failed task up to this many times (0–5)")
	fl.DurationVar(&f.retryInterval, "retry-interval", 0, "wait this long before a retry (whole seconds, ≤24h)")
	fl.DurationVar(&f.timeout, "timeout", 0, "a task fails without progress, or without the new version, after this long (5m–48h, default 2h)")
	fl.BoolVar(&f.noPush, "no-push", false, "send no notices: devices pull their update")
	fl.BoolVar(&f.in.NeedConfirm, "confirm", false, "tasks wait for `updraft job confirm`")
	fl.BoolVar(&f.overwrite, "overwrite", false, "take devices from other jobs' tasks that have not started")
	fl.BoolVar(&f.in.AllowDeviceRequest, "allow-device-request", false, "devices may ask for their update before their turn")
	fl.BoolVar(&f.in.AllowDowngrade, "allow-downgrade", false, "also move devices on a newer version back to the package's (else they are skipped)")
	fl.StringVar(&f.in.TimeoutFrom, "timeout-from", "", "start a task's timeout when it is notified (default) or in_progress")
	fl.Float64Var(&f.in.Abort.FailurePercent, "abort-percent", 0, "cancel the job once this share of finished tasks failed")
	fl.IntVar(&f.in.Abort.MinFinished, "abort-min", 0, "…counting only once this many tasks finished")
	fl.StringArrayVar(&f.tags, "tag", nil, "KEY=VALUE sent to devices with the notice (repeatable)")
	fl.StringVar(&f.in.ExtInfo, "ext-info", "", "free text sent to devices with the notice")
	fl.BoolVar(&f.held, "held", false, "create the job without starting it (`updraft job start ID` starts it)")
	_ = cmd.MarkFlagRequired("package")
	return cmd
}

// toCreate translates the flags; times given as durations count from now.
func (f *jobCreateFlags) toCreate(now time.Time) (client.JobCreate, error) {
	in := f.in
	if f.verify {
		in.Type = "verify"
	}
	if f.dynamic {
		in.Selection = "dynamic"
	}
	var err error
	if in.Schedule.Start, err = parseWhen("--start", f.start, now); err != nil {
		return in, err
	}
	if in.Schedule.Finish, err = parseWhen("--finish", f.finish, now); err != nil {
		return in, err
	}
	if f.window != "" {
		from, to, ok := strings.Cut(f.window, "-")
		if !ok {
			return in, fmt.Errorf("--window %q: use HH:MM-HH:MM, e.g. 22:00-06:00", f.window)
		}
		off, err := parseUTCOffset(f.utcOffset)
		if err != nil {
			return in, err
		}
		in.Schedule.Window = &client.JobWindow{From: from, To: to, UTCOffsetMinutes: off}
	} else if f.utcOffset != "" {
		return in, errors.New("--utc-offset applies to --window: give a window too")
	}
	if f.retryInterval%time.Second != 0 || f.timeout%time.Second != 0 {
		return in, errors.New("--retry-interval and --timeout are whole seconds")
	}
	in.Retry.IntervalSeconds = int(f.retryInterval / time.Second)
	in.TimeoutSeconds = int(f.timeout / time.Second)
	if f.noPush {
		no := false
		in.NeedPush = &no
	}
	if f.overwrite {
		in.Overwrite = "overwrite"
	}
	if f.held {
		start := false
		in.Start = &start
	}
	if in.Tags, err = parseTags(f.tags); err != nil {
		return in, err
	}
	return in, nil
}

// parseWhen reads an RFC 3339 time or a duration from now ("" = none).
func parseWhen(flag, s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	d, err := time.ParseDuration(strings.TrimPrefix(s, "+"))
	if err != nil {
		return nil, fmt.Errorf("%s %q: use an RFC 3339 time (2026-03-10T22:00:00+08:00) or a duration from now (90m)", flag, s)
	}
	t := now.Add(d).Truncate(time.Second)
	return &t, nil
}

// parseUTCOffset reads +08:00, -05:30, +8 or a number of minutes.
func parseUTCOffset(s string) (int, error) {
	if s == "" || s == "Z" || s == "UTC" {
		return 0, nil
	}
	bad := fmt.Errorf("--utc-offset %q: use +08:00, -05:30 or minutes (480)", s)
	sign := 1
	rest := s
	switch s[0] {
	case '+':
		rest = s[1:]
	case '-':
		sign, rest = -1, s[1:]
	}
	if h, m, ok := strings.Cut(rest, ":"); ok {
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || mm < 0 || mm > 59 || hh < 0 {
			return 0, bad
		}
		return sign * (hh*60 + mm), nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, bad
	}
	if s[0] == '+' && n <= 14 {
		return n * 60, nil // +8 means hours
	}
	return sign * n, nil
}

func newJobListCmd() *cobra.Command {
	var f client.JobFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListJobs(cmd.Context(), f)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, l)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "NAME", "TYPE", "SELECTION", "PACKAGE", "PRODUCT", "STATE", "CREATED")
			for _, j := range l.Items {
				t.row(j.ID, orDash(j.Name), j.Type, j.Selection, j.PackageID, j.Product, j.State, when(j.CreatedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			footer(cmd.OutOrStdout(), len(l.Items), l.Total)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Package, "package", "", "only jobs of this package")
	cmd.Flags().StringVar(&f.Product, "product", "", "only jobs of this product")
	cmd.Flags().StringArrayVar(&f.States, "state", nil, "only jobs in this state (repeatable)")
	pageFlags(cmd, &f.Page)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newJobShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a job and its tasks per state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			j, err := c.GetJob(cmd.Context(), args[0])
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
}

func printJob(w io.Writer, j client.Job) error {
	target := describeTarget(j.Target)
	window := "-"
	if win := j.Schedule.Window; win != nil {
		window = fmt.Sprintf("%s-%s (UTC%+03d:%02d)", win.From, win.To, win.UTCOffsetMinutes/60, abs(win.UTCOffsetMinutes%60))
	}
	timePtr := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return when(*t)
	}
	return printFields(w, "job", j.ID, "name", orDash(j.Name), "state", j.State+reasonSuffix(j.StateReason),
		"type", j.Type+" / "+j.Selection, "package", j.PackageID, "product", j.Product+" / "+j.Module,
		"target", target, "window", window, "start", timePtr(j.Schedule.Start), "finish", timePtr(j.Schedule.Finish),
		"pace", fmt.Sprintf("max %d at once, %s per minute", j.MaxConcurrency, perMinute(j.MaxPerMinute)),
		"retry", fmt.Sprintf("%d × after %ds", j.Retry.Count, j.Retry.IntervalSeconds),
		"timeout", fmt.Sprintf("%ds", j.TimeoutSeconds), "tasks", countsLine(j), "created", when(j.CreatedAt),
		"started", timePtr(j.StartedAt), "finished", timePtr(j.FinishedAt))
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func perMinute(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func describeTarget(t client.JobTarget) string {
	var parts []string
	switch {
	case t.All:
		parts = append(parts, "all devices")
	case len(t.Devices) > 0:
		parts = append(parts, fmt.Sprintf("%d listed devices", len(t.Devices)))
	case len(t.Groups) > 0:
		parts = append(parts, "groups "+strings.Join(t.Groups, ","))
	}
	if len(t.SourceVersions) > 0 {
		parts = append(parts, "on "+strings.Join(t.SourceVersions, ","))
	}
	if t.GrayPercent > 0 {
		parts = append(parts, strconv.FormatFloat(t.GrayPercent, 'f', -1, 64)+"%")
	}
	return strings.Join(parts, ", ")
}

// countsLine is "succeeded=3 failed=1 … (4/10 finished)", zero states left out.
func countsLine(j client.Job) string {
	var parts []string
	for _, s := range client.TaskStates {
		if n := j.Counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, n))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "none yet")
	}
	return fmt.Sprintf("%s (%d/%d finished)", strings.Join(parts, " "), j.TasksFinished(), j.TaskTotal())
}

func newJobStateCmd(verb, short string, act func(*client.Client, context.Context, string) (client.Job, error)) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			j, err := act(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, j)
			}
			return printFields(cmd.OutOrStdout(), "job", j.ID, "state", j.State+reasonSuffix(j.StateReason), "tasks", countsLine(j))
		},
	}
}

func newJobTaskActionCmd(verb, short string, act func(*client.Client, context.Context, string, []string) (client.TaskResults, error)) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   verb + " ID (DEVICE... | --all)",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			devices := args[1:]
			if len(devices) == 0 && !all {
				return errors.New("name the devices, or pass --all for every task the action applies to")
			}
			if len(devices) > 0 && all {
				return errors.New("name devices or pass --all, not both")
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			res, err := act(c, cmd.Context(), args[0], devices)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, res)
			}
			t := newTable(cmd.OutOrStdout(), "DEVICE", "RESULT")
			for _, r := range res.Results {
				result := "ok"
				if !r.OK {
					result = r.Code + ": " + r.Message
				}
				t.row(r.Device, result)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d done, %d refused\n", res.Succeeded, res.Failed)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every task of the job the action applies to")
	return cmd
}

func newJobTasksCmd() *cobra.Command {
	var f client.TaskFilter
	cmd := &cobra.Command{
		Use:   "tasks ID",
		Short: "List a job's tasks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			p, err := c.ListTasks(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			asJSON, err := outputJSON(cmd)
			if err != nil || asJSON {
				return orPrintJSON(cmd, err, p)
			}
			t := newTable(cmd.OutOrStdout(), "ID", "DEVICE", "STATE", "FROM", "TO", "PROGRESS", "ATTEMPTS", "REASON")
			for _, task := range p.Items {
				t.row(strconv.FormatInt(task.ID, 10), task.Device, task.State, orDash(task.FromVersion), task.ToVersion,
					strconv.Itoa(task.Progress)+"%", strconv.Itoa(task.Attempts), orDash(task.Reason))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if p.NextAfter != 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "(%d of %d; next page: --after %d)\n", len(p.Items), p.Total, p.NextAfter)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.States, "state", nil, "only tasks in this state (repeatable)")
	cmd.Flags().StringArrayVar(&f.Devices, "device", nil, "only this device's task (repeatable)")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many tasks (server default 100, max 1000)")
	cmd.Flags().Int64Var(&f.After, "after", 0, "tasks after this id (the previous page's last)")
	return cmd
}

func newJobWatchCmd() *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job's tasks per state until it ends",
		Long: `Follow a job: its state and tasks per state, with a progress bar of finished
tasks on a terminal (a line per change otherwise), until the job completes or
is canceled. Interrupting the watch does not affect the job. With --output json
it prints the job as one JSON object per line at each change, the last one final.

Exit status: 0 when the job ends succeeded or partial (some devices skipped or
failed, some upgraded), 2 when it ends failed (no device upgraded), 3 when it
was canceled; 1 for any other error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			if every <= 0 {
				return usageErr(cmd, "--every must be positive")
			}
			asJSON, err := outputJSON(cmd)
			if err != nil {
				return err
			}
			return watchJob(cmd.Context(), c, args[0], every, asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "poll interval")
	return cmd
}

// watchJob polls the job until it ends. On a terminal it redraws a progress
// bar on errw; otherwise it prints a line to out whenever the counts change.
func watchJob(ctx context.Context, c *client.Client, id string, every time.Duration, asJSON bool, out, errw io.Writer) error {
	var bar *progressbar.ProgressBar
	if !asJSON && isTerminal(errw) {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(errw), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish())
	}
	last := ""
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		j, err := c.GetJob(ctx, id)
		if err != nil {
			return err
		}
		line := j.State + "  " + countsLine(j)
		if asJSON {
			if line != last {
				if err := json.NewEncoder(out).Encode(j); err != nil {
					return err
				}
			}
		} else if bar != nil {
			if total := j.TaskTotal(); total > 0 {
				bar.ChangeMax64(total)
			}
			bar.Describe(line)
			_ = bar.Set64(j.TasksFinished())
		} else if line != last {
			fmt.Fprintln(out, line)
		}
		last = line
		if j.Ended() {
			if bar != nil {
				_ = bar.Finish()
			}
			if !asJSON {
				fmt.Fprintf(out, "job %s %s%s: %s\n", j.ID, j.State, reasonSuffix(j.StateReason), countsLine(j))
			}
			return watchOutcome(j)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// watchOutcome turns an ended job into job watch's exit status.
func watchOutcome(j client.Job) error {
	switch {
	case j.State == "canceled" || j.Outcome == "canceled":
		return &exitError{code: 3, msg: fmt.Sprintf("job %s was canceled%s", j.ID, reasonSuffix(j.StateReason))}
	case j.Outcome == "failed":
		return &exitError{code: 2, msg: fmt.Sprintf("job %s failed: no device upgraded", j.ID)}
	}
	return nil
}
