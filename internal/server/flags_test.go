package server_test

import (
	"github.com/spf13/pflag"

	"github.com/updraft-ota/updraft/internal/config"
)

// pflagSet binds c's flags on a fresh, unparsed flag set (no flag given).
func pflagSet(c *config.Config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	c.BindFlags(fs)
	return fs
}
