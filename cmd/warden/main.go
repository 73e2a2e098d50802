// Command warden is the Warden coordinator (`warden server`) and its
// command-line client (every other subcommand).
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "High-availability coordinator for MySQL and MariaDB replication",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(), newServerCmd(), newTLSCmd(), newKeygenCmd())
	addClientCommands(root)
	markUsageErrors(root)
	return root
}

// markUsageErrors makes cobra's own complaints (a bad flag value, an
// unknown flag, the wrong number of arguments) usage errors: exit code 2,
// like every other bad input.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return configError{err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if next := c.Args; next != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := next(cmd, args); err != nil {
					return configError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
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

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "warden", version)
			return nil
		},
	}
}

// exitCode maps an error to a process exit code scripts can use: 2 for
// bad usage or configuration, the CLI client's codes (docs/api.md) for API
// answers, 1 for everything else.
func exitCode(err error) int {
	var ce configError
	if asConfigError(err, &ce) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	if c, ok := clientExitCode(err); ok {
		return c
	}
	return 1
}
