// Command warden is the Warden coordinator (`warden server`) and its
// command-line client (every other subcommand).
package main

import (
	"fmt"
	"os"

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
	root.AddCommand(newVersionCmd(), newServerCmd())
	addClientCommands(root)
	return root
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
	if asConfigError(err, &ce) {
		return 2
	}
	if c, ok := clientExitCode(err); ok {
		return c
	}
	return 1
}
