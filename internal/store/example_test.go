package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/dockgate/dockgate/internal/store"
)

func ExampleStore_CertBySerial() {
	dir, _ := os.MkdirTemp("", "dockgate-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	err = st.AddCert(ctx, store.Cert{
		Serial: "9f86d081884c7d659a2feaa0c55ad015", Kind: store.KindClient, Name: "alice",
		NotBefore: now, NotAfter: now.AddDate(0, 0, 30), PEM: []byte("..."),
	})
	if err != nil {
		log.Fatal(err)
	}
	// A short prefix is enough when it is unique, as with git commits.
	c, err := st.CertBySerial(ctx, "9F86:D0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name, c.Serial)
	// Output: alice 9f86d081884c7d659a2feaa0c55ad015
}
