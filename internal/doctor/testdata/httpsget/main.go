// Command httpsget is the classic FROM scratch casualty, for doctor's tests:
// a static Go HTTPS client that GETs its argument and prints the status.
// Built plainly it verifies against the system CA bundle only, so in an
// image without one it fails with "certificate signed by unknown
// authority". Built with -tags fallback it embeds Go's fallback roots.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: httpsget URL")
		os.Exit(2)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
}
