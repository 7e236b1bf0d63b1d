package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/manpage"
	"github.com/dockgate/dockgate/internal/version"
)

func newManCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write the manual pages (section 1) of every command into DIR",
		Long: `man writes dockgate.1 and one page per command (dockgate-token-create.1, ...)
into DIR, made from the same text as --help. The date is $SOURCE_DATE_EPOCH's,
so packaged pages are reproducible; without it the pages carry none.`,
		Example: `  dockgate man /usr/local/share/man/man1 && mandb -q
  man dockgate-token-create`,
		Hidden: true,
		Args:   exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := writeManPages(cmd.Root(), args[0], a.getenv("SOURCE_DATE_EPOCH"))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Wrote %d manual pages to %s\n", n, args[0])
			return nil
		},
	}
}

// writeManPages writes a page for root and each command under it that
// --help lists.
func writeManPages(root *cobra.Command, dir, sourceDateEpoch string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	date := ""
	if secs, err := strconv.ParseInt(sourceDateEpoch, 10, 64); err == nil {
		date = time.Unix(secs, 0).UTC().Format(time.DateOnly)
	}
	n := 0
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		var buf bytes.Buffer
		if err := manpage.Write(&buf, manPage(c, date)); err != nil {
			return err
		}
		path := filepath.Join(dir, manName(c)+".1")
		if err := atomicfile.Write(path, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("failed to write %s: %w", path, err)
		}
		n++
		for _, sub := range listedCommands(c) {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return n, walk(root)
}

func manPage(c *cobra.Command, date string) manpage.Page {
	long := c.Long
	if long == "" {
		long = c.Short
	}
	options := c.NonInheritedFlags().FlagUsages() + c.InheritedFlags().FlagUsages()
	var seeAlso []string
	if c.HasParent() {
		seeAlso = append(seeAlso, manName(c.Parent()))
	}
	for _, sub := range listedCommands(c) {
		seeAlso = append(seeAlso, manName(sub))
	}
	return manpage.Page{
		Name: manName(c), Section: 1, Date: date, Source: "dockgate " + version.Get().Version,
		Short: c.Short, Synopsis: c.UseLine(), Long: long, Options: options, Examples: c.Example, SeeAlso: seeAlso,
	}
}

// manName is the page's name: the command path joined with dashes.
func manName(c *cobra.Command) string { return strings.ReplaceAll(c.CommandPath(), " ", "-") }

// listedCommands are the subcommands --help lists.
func listedCommands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && sub.Name() != "help" && sub.Name() != "completion" {
			out = append(out, sub)
		}
	}
	return out
}
