// Package manpage renders manual pages (man(7) roff) from plain text: the
// name, synopsis, description, options and examples a command's --help
// already has, so the man pages and the help never disagree.
//
// It knows only what those texts need: paragraphs, indented blocks kept as
// they are (examples, lists), and the escapes roff requires (a backslash,
// and a line starting with a dot or an apostrophe, which roff would take
// for a request).
package manpage

import (
	"fmt"
	"io"
	"strings"
)

// Page is one manual page.
type Page struct {
	Name     string // e.g. "dockgate-token-create"
	Section  int    // 1 for commands
	Date     string // e.g. "2026-12-04"; empty leaves it out
	Source   string // e.g. "dockgate 1.2.0"
	Short    string // one line, after the name
	Synopsis string
	Long     string // paragraphs separated by blank lines; indented lines are kept as written
	Options  string // pflag's FlagUsages text
	Examples string
	SeeAlso  []string // other page names, same section
}

// Write renders p as roff.
func Write(w io.Writer, p Page) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %q %q %q %q %q\n", strings.ToUpper(p.Name), fmt.Sprint(p.Section), p.Date, p.Source, "User Commands")
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", escape(p.Name), escape(p.Short))
	if p.Synopsis != "" {
		b.WriteString(".SH SYNOPSIS\n")
		literal(&b, p.Synopsis)
	}
	if p.Long != "" {
		b.WriteString(".SH DESCRIPTION\n")
		text(&b, p.Long)
	}
	if strings.TrimSpace(p.Options) != "" {
		b.WriteString(".SH OPTIONS\n")
		literal(&b, p.Options)
	}
	if strings.TrimSpace(p.Examples) != "" {
		b.WriteString(".SH EXAMPLES\n")
		literal(&b, p.Examples)
	}
	if len(p.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		refs := make([]string, len(p.SeeAlso))
		for i, n := range p.SeeAlso {
			refs[i] = fmt.Sprintf("\\fB%s\\fP(%d)", escape(n), p.Section)
		}
		b.WriteString(strings.Join(refs, ", ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// text renders paragraphs; runs of indented lines are kept as written.
func text(b *strings.Builder, s string) {
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		lines := strings.Split(para, "\n")
		if strings.HasPrefix(lines[0], " ") || strings.HasPrefix(lines[0], "\t") {
			literal(b, para)
			continue
		}
		b.WriteString(".PP\n")
		for _, l := range lines {
			b.WriteString(escapeLine(l) + "\n")
		}
	}
}

// literal renders lines as written, without filling or adjusting.
func literal(b *strings.Builder, s string) {
	b.WriteString(".PP\n.nf\n")
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(escapeLine(l) + "\n")
	}
	b.WriteString(".fi\n")
}

func escape(s string) string { return strings.ReplaceAll(s, `\`, `\e`) }

// escapeLine escapes a line of text; a leading dot or apostrophe would be
// a roff request, so the zero-width \& goes before it.
func escapeLine(l string) string {
	l = escape(l)
	if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
		l = `\&` + l
	}
	return l
}
