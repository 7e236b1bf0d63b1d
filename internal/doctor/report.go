package doctor

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The text forms of the reports, for people; --json gives the structs.

// WriteText writes the trust report as aligned text.
func (r TrustReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\n", EnvCertFile, orUnset(r.SSLCertFile))
	fmt.Fprintf(tw, "%s\t%s\n", EnvCertDir, orUnset(r.SSLCertDir))
	writeSources(tw, r.System)
	fmt.Fprintf(tw, "embedded fallback\t%s\n", r.Fallback.describe())
	fmt.Fprintf(tw, "verdict\t%s\n", r.Summary())
	return tw.Flush()
}

func (fb Fallback) describe() string {
	if !fb.Linked {
		return "not linked into this binary"
	}
	use := "not in use: system roots take precedence"
	switch {
	case fb.InUse && fb.Forced:
		use = "in use (forced by GODEBUG=x509usefallbackroots=1)"
	case fb.InUse:
		use = "in use: no system roots"
	}
	return fmt.Sprintf("linked, %d roots, %s", fb.Roots, use)
}

func writeSources(tw io.Writer, set RootSet) {
	for _, s := range set.Sources {
		kind := "file"
		if s.Dir {
			kind = "dir"
		}
		fmt.Fprintf(tw, "%s %s\t%s\n", kind, s.Path, s.describe())
	}
}

func (s RootSource) describe() string {
	switch {
	case s.Error != "":
		return "unreadable: " + s.Error
	case !s.Present:
		return "absent"
	}
	desc := fmt.Sprintf("%d certificates", s.Certs)
	if !s.Read {
		desc += ", not read (Go stops at the first bundle file)"
	}
	return desc
}

func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}

// WriteText writes what the handshake showed: the connection and the
// certificates. The verdict of a failure is the caller's error message.
func (r TLSResult) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "address\t%s (server name %s)\n", r.Address, r.ServerName)
	if r.OK {
		fmt.Fprintf(tw, "connection\t%s, %s\n", r.Version, r.CipherSuite)
	}
	for i, c := range r.Chain {
		label := "certificate"
		if i > 0 {
			label = "issuer certificate"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, c.Subject)
		fmt.Fprintf(tw, "  issued by\t%s\n", c.Issuer)
		if len(c.Names) > 0 {
			fmt.Fprintf(tw, "  names\t%s\n", strings.Join(c.Names, ", "))
		}
		fmt.Fprintf(tw, "  valid\t%s to %s\n", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	if r.OK {
		fmt.Fprintf(tw, "verdict\tok: the certificate verifies for %s\n", r.ServerName)
	}
	return tw.Flush()
}

// WriteText writes the image report; a failed verdict is also the caller's
// error message.
func (r ImageReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", r.Image)
	if len(r.Command) == 0 {
		fmt.Fprintf(tw, "command\t(none)\n")
	} else {
		fmt.Fprintf(tw, "command\t%s\n", strings.Join(r.Command, " "))
	}
	if r.Binary != nil {
		desc := r.Binary.Describe()
		if r.Binary.FallbackLinked {
			desc += ", embeds fallback roots"
		}
		fmt.Fprintf(tw, "executable\t%s: %s\n", r.Executable, desc)
	}
	fmt.Fprintf(tw, "%s\t%s\n", EnvCertFile, orUnset(r.SSLCertFile))
	fmt.Fprintf(tw, "%s\t%s\n", EnvCertDir, orUnset(r.SSLCertDir))
	fmt.Fprintf(tw, "Go roots\t%d\n", r.GoRoots.Roots)
	writeSources(tw, presentOnly(r.GoRoots))
	fmt.Fprintf(tw, "OpenSSL roots\t%d\n", r.OpenSSLRoots.Roots)
	writeSources(tw, presentOnly(r.OpenSSLRoots))
	if r.OK {
		fmt.Fprintf(tw, "verdict\tok: %s\n", r.Verdict)
	}
	return tw.Flush()
}

// presentOnly drops the absent sources: an image lists the few it has.
func presentOnly(set RootSet) RootSet {
	var out RootSet
	for _, s := range set.Sources {
		if s.Present || s.Error != "" {
			out.Sources = append(out.Sources, s)
		}
	}
	out.Roots = set.Roots
	return out
}
