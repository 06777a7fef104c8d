// Command updraft is the Updraft OTA update server and its tools: `updraft
// serve` runs the server; the other subcommands are the operator's CLI, the
// fleet simulator and maintenance tools. Each subcommand lives in its own file
// and registers itself on rootCmd in an init function.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/updraft-ota/updraft/client"
)

var rootCmd = &cobra.Command{
	Use:           "updraft",
	Short:         "Self-hosted over-the-air update server for IoT fleets",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	setup(rootCmd)
	if err := rootCmd.Execute(); err != nil {
		report(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in how a command was called: it is printed with
// that command's usage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErr reports a wrong call of cmd.
func usageErr(cmd *cobra.Command, format string, a ...any) error {
	return &usageError{cmd, fmt.Errorf(format, a...)}
}

// exitError ends the process with a code of its own and prints nothing
// more (`job watch` on a job that failed: the outcome is already printed).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// setup gives every command of the tree the CLI's rules: a command group
// refuses an unknown subcommand (cobra would print help and exit 0) and
// suggests the nearest; argument and flag mistakes carry the usage.
func setup(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{c, err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				if len(args) == 0 {
					return c.Help()
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
				if c.SuggestionsMinimumDistance <= 0 {
					c.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
				}
				if s := c.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return &usageError{c, errors.New(msg)}
			}
		}
		if run := c.RunE; run != nil && !c.HasSubCommands() {
			c.RunE = func(c *cobra.Command, args []string) error { return inFlagTerms(c, run(c, args)) }
		}
		if args := c.Args; args != nil && !c.HasSubCommands() {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &usageError{c, err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// fieldFlags names the flag of API fields whose flag is not simply the
// field's last part with dashes (gray_percent → --gray-percent).
var fieldFlags = map[string]string{
	"package_id": "package", "retry.count": "retry-count", "retry.interval_seconds": "retry-interval",
	"timeout_seconds": "timeout", "abort.failure_percent": "abort-percent", "abort.min_finished": "abort-min",
	"target.source_versions": "source-version", "target.devices": "device", "target.groups": "group",
	"schedule.window": "window", "schedule.start": "start", "schedule.finish": "finish",
	"schedule.window.utc_offset_minutes": "utc-offset", "need_confirm": "confirm",
}

// inFlagTerms rewrites an API error about an input field into the terms of
// the command's flags: the operator typed --gray-percent, not gray_percent.
func inFlagTerms(c *cobra.Command, err error) error {
	var ae *client.APIError
	if err == nil || !errors.As(err, &ae) || ae.Field == "" {
		return err
	}
	leaf := ae.Field
	if i := strings.LastIndexByte(leaf, '.'); i >= 0 {
		leaf = leaf[i+1:]
	}
	if i := strings.IndexByte(leaf, '['); i >= 0 {
		leaf = leaf[:i]
	}
	flag, ok := fieldFlags[ae.Field]
	if !ok {
		flag = strings.ReplaceAll(leaf, "_", "-")
	}
	if c.Flags().Lookup(flag) == nil {
		return err
	}
	out := *ae
	out.Field = "--" + flag
	// One pass: the field's full name or its last part, each occurrence
	// once (replacing one after the other turned "version" into "----version").
	out.Message = strings.NewReplacer(ae.Field, out.Field, leaf, out.Field).Replace(ae.Message)
	return &out
}

// report prints err for a person: with the usage of the command that was
// called wrongly, or saying plainly that the server cannot be reached.
func report(w io.Writer, err error) {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(w, "updraft:", ee.msg)
		}
		return
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "updraft: %v\n\n%s", err, ue.cmd.UsageString())
		return
	}
	var uerr *url.Error
	var op *net.OpError
	if errors.As(err, &uerr) && errors.As(err, &op) && op.Op == "dial" {
		where := uerr.URL
		if u, perr := url.Parse(uerr.URL); perr == nil {
			where = u.Scheme + "://" + u.Host
		}
		cause := op.Err.Error()
		if errors.Is(err, syscall.ECONNREFUSED) {
			cause = "nothing listens there"
		}
		fmt.Fprintf(w, "updraft: cannot reach the Updraft server at %s (%s). Is `updraft serve` running? "+
			"Point the CLI at it with --server URL or UPDRAFT_SERVER (run from the server's directory, credentials.json names it).\n", where, cause)
		return
	}
	fmt.Fprintln(w, "updraft:", err)
}
