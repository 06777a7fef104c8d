// Command updraft is the Updraft OTA update server and its tools: `updraft
// serve` runs the server; the other subcommands are the operator's CLI, the
// fleet simulator and maintenance tools. Each subcommand lives in its own file
// and registers itself on rootCmd in an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var rootCmd = &cobra.Command{
	Use:           "updraft",
	Short:         "Self-hosted over-the-air update server for IoT fleets",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "updraft:", err)
		os.Exit(1)
	}
}
