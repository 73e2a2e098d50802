// Command warden is the Warden coordinator (`warden server`) and its
// command-line client (every other subcommand).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		// The only place that names the program: commands return errors
		// that start with what they are about (a command, a flag, an
		// argument), never with "warden".
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(exitCode(err))
	}
}

// Values of the global --output flag.
const (
	outputText = "text"
	outputJSON = "json"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "High-availability coordinator for MySQL and MariaDB replication",
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			_, err := outputFormat(cmd)
			return err
		},
	}
	root.SetVersionTemplate("warden {{.Version}}\n")
	root.PersistentFlags().StringP("output", "o", outputText, "output format: text (for people; may change) or json (the API's answer, for scripts)")
	root.AddCommand(newVersionCmd(), newServerCmd(), newTLSCmd(), newKeygenCmd())
	addClientCommands(root)
	markUsageErrors(root)
	return root
}

// outputFormat is the validated value of --output (text when the command
// does not have the flag).
func outputFormat(cmd *cobra.Command) (string, error) {
	f := cmd.Flags().Lookup("output")
	if f == nil {
		return outputText, nil
	}
	switch v := f.Value.String(); v {
	case outputText, outputJSON:
		return v, nil
	default:
		return "", configError{fmt.Errorf("--output %q: want text or json", v)}
	}
}

// versionString is what --version and `warden version` print after
// "warden ": the release, then the Go toolchain and platform it was built
// with (a bug report needs both).
func versionString() string {
	return fmt.Sprintf("%s (%s %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// markUsageErrors makes cobra's own complaints (a bad flag value, an
// unknown flag, the wrong number of arguments) usage errors: exit code 2,
// like every other bad input. Each names the subcommand (without the
// program name, which main adds once) and the argument or flag at fault.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return configError{fmt.Errorf("%s%w", subcommandPrefix(cmd), err)}
	})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if next := c.Args; next != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := next(cmd, args); err != nil {
					return configError{argError(cmd, args, err)}
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

// subcommandPrefix is "topology: " for `warden topology`, "" for the root.
func subcommandPrefix(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return ""
	}
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	return path + ": "
}

// argError rewrites cobra's "accepts 1 arg(s), received 0" into one that
// names the missing argument or quotes the extra one, with the usage line.
func argError(cmd *cobra.Command, args []string, err error) error {
	var required, all []string
	for i, w := range strings.Fields(cmd.Use) {
		if i == 0 {
			continue // the command's own name
		}
		optional := strings.HasPrefix(w, "[")
		w = strings.Trim(w, "[]")
		all = append(all, w)
		if !optional {
			required = append(required, w)
		}
	}
	usage := fmt.Sprintf(" (usage: %s)", cmd.UseLine())
	switch {
	case len(args) < len(required):
		return fmt.Errorf("%smissing %s%s", subcommandPrefix(cmd), strings.Join(required[len(args):], " "), usage)
	case len(args) > len(all):
		return fmt.Errorf("%sunexpected argument %q%s", subcommandPrefix(cmd), args[len(all)], usage)
	}
	return fmt.Errorf("%s%w%s", subcommandPrefix(cmd), err, usage)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, and the Go version it was built with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := outputFormat(cmd)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out == outputJSON {
				return json.NewEncoder(w).Encode(map[string]string{
					"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
				})
			}
			_, err = fmt.Fprintln(w, "warden", versionString())
			return err
		},
	}
}

// exitCode maps an error to a process exit code scripts can use: 2 for
// bad usage or configuration, the CLI client's codes (docs/cli.md) for API
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
