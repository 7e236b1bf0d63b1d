package doctor

import (
	"fmt"
	"io"
)

// Marks of the text report.
var statusMarks = map[string]string{StatusOK: "✓", StatusFail: "✗", StatusSkip: "-"}

// WriteText writes one line per check, ✓ or ✗ (- when not checked), with
// the fix under each failure, and a verdict.
func (r EndpointReport) WriteText(w io.Writer) error {
	source := ""
	if r.Source != "" {
		source = " (" + r.Source + ")"
	}
	fmt.Fprintf(w, "Checking %s%s\n", r.Host, source)
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%s %-*s  %s\n", statusMarks[c.Status], width, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "  %-*s  fix: %s\n", width, "", c.Fix)
		}
	}
	verdict := "all checks passed"
	if n := len(r.Failed()); n > 0 {
		verdict = fmt.Sprintf("%d check(s) failed", n)
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}
