package manpage

import (
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	var b strings.Builder
	err := Write(&b, Page{
		Name: "dockgate-token-create", Section: 1, Date: "2026-12-04", Source: "dockgate 1.0",
		Short:    "Create a token",
		Synopsis: "dockgate token create NAME [flags]",
		Long:     "create makes a token.\nIt prints C:\\path.\n\n  indented stays\n  as written\n\n.starts with a dot",
		Options:  "      --ttl duration   how long (default 15m0s)\n",
		Examples: "  dockgate token create alice\n",
		SeeAlso:  []string{"dockgate-token", "dockgate-login"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		`.TH "DOCKGATE-TOKEN-CREATE" "1" "2026-12-04" "dockgate 1.0" "User Commands"` + "\n",
		".SH NAME\ndockgate-token-create \\- Create a token\n",
		".SH SYNOPSIS\n.PP\n.nf\ndockgate token create NAME [flags]\n.fi\n",
		".PP\ncreate makes a token.\nIt prints C:\\epath.\n",
		".nf\n  indented stays\n  as written\n.fi\n",
		".PP\n\\&.starts with a dot\n",
		".SH OPTIONS\n.PP\n.nf\n      --ttl duration   how long (default 15m0s)\n.fi\n",
		".SH EXAMPLES\n.PP\n.nf\n  dockgate token create alice\n.fi\n",
		".SH SEE ALSO\n\\fBdockgate-token\\fP(1), \\fBdockgate-login\\fP(1)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the page lacks %q:\n%s", want, got)
		}
	}
}
