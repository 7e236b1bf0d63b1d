package authority_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// Create a CA, issue a client certificate and revoke it again.
func Example() {
	dir, err := os.MkdirTemp("", "dockgate-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "state"))
	if err != nil {
		panic(err)
	}
	defer st.Close()

	ctx := context.Background()
	ca, err := authority.Init(st, authority.InitOptions{CN: "example CA", Passphrase: []byte("correct horse")})
	if err != nil {
		panic(err)
	}
	is, err := ca.IssueClient(ctx, "alice", []string{"devs"}, 0, pki.DefaultKeyType)
	if err != nil {
		panic(err)
	}
	rel, _ := filepath.Rel(st.Dir(), is.Dir)
	fmt.Println("bundle:", rel)

	revoked, err := authority.Revoke(ctx, st, "alice", "key-compromise", is.Cert.NotBefore)
	if err != nil {
		panic(err)
	}
	fmt.Println("revoked:", revoked[0].Name, revoked[0].Reason)

	_, err = authority.Load(st, []byte("wrong horse"))
	fmt.Println(err != nil)
	// Output:
	// bundle: clients/alice
	// revoked: alice key-compromise
	// true
}
