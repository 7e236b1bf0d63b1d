package enroll_test

import (
	"fmt"

	"github.com/dockgate/dockgate/internal/enroll"
)

func ExampleParseToken() {
	tok := enroll.Token{Name: "alice", Addresses: []string{"dock1.example:2386"}}
	s := tok.String()
	parsed, err := enroll.ParseToken(s)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(parsed.Name, parsed.Addresses)

	_, err = enroll.ParseToken(s[:len(s)-3])
	fmt.Println(err != nil)
	// Output:
	// alice [dock1.example:2386]
	// true
}
