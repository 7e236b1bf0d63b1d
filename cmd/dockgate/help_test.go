package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasExamples: each command a user can run shows how in
// its --help, and the root help says where to start.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRootCmd(&app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Runnable() && strings.TrimSpace(sub.Example) == "" {
				t.Errorf("'%s --help' has no Examples section", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
	if !strings.Contains(root.Long, "dockgate up") {
		t.Errorf("the root help does not say to start with 'dockgate up':\n%s", root.Long)
	}
}
