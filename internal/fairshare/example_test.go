package fairshare_test

import (
	"fmt"

	"github.com/dockgate/dockgate/internal/fairshare"
)

func ExampleLimiter() {
	l := fairshare.New(nil)
	caps := fairshare.Limits{Requests: 2, Rate: 10, Burst: 5}

	// A request takes a token, then a slot, and gives the slot back when
	// it ends.
	if ok, _ := l.Take("ci-7", caps); ok {
		release, _, _ := l.Acquire("ci-7", "ci", fairshare.Requests, caps)
		defer release()
	}
	l.Acquire("ci-7", "ci", fairshare.Requests, caps)
	_, held, ok := l.Acquire("ci-7", "ci", fairshare.Requests, caps)
	fmt.Println("third request:", ok, "with", held, "in flight")
	_, _, ok = l.Acquire("ci-8", "ci", fairshare.Requests, caps)
	fmt.Println("another client:", ok)
	// Output:
	// third request: false with 2 in flight
	// another client: true
}
