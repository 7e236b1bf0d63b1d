package audit_test

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
)

func ExampleAppendJSON() {
	line := audit.AppendJSON(nil, &audit.Record{
		Time:      time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		RequestID: "0123456789abcdef",
		CN:        "ci-7",
		Groups:    []string{"ci"},
		Method:    "POST",
		RawPath:   "/v1.47/containers/create",
		Path:      "/containers/create",
		Operation: "container.create",
		Decision:  "deny",
		Role:      "ci",
		Rule:      "roles.ci.containers.privileged",
		Reason:    "HostConfig.Privileged is not allowed",
		Status:    403,
		Duration:  1500 * time.Microsecond,
	})
	os.Stdout.Write(line)
	// Output:
	// {"time":"2026-11-23T09:00:00Z","request_id":"0123456789abcdef","cn":"ci-7","serial":"","groups":["ci"],"remote":"","method":"POST","raw_path":"/v1.47/containers/create","path":"/containers/create","operation":"container.create","decision":"deny","role":"ci","rule":"roles.ci.containers.privileged","reason":"HostConfig.Privileged is not allowed","status":403,"bytes_in":0,"bytes_out":0,"duration_ms":1.5,"target":""}
}

// A gateway asks Admit before it serves a request, and writes the
// request's record once it has answered. With OnFull Deny, Admit is false
// while the log cannot take records; with Drop or Block it is always true.
func ExampleLog_Admit() {
	var out bytes.Buffer
	l, err := audit.Open(audit.Stdout, audit.Options{OnFull: audit.Deny, Stdout: &out})
	if err != nil {
		panic(err)
	}
	rec := &audit.Record{Time: time.Now(), RequestID: audit.NewRequestID(), Method: "GET", RawPath: "/_ping"}
	if !l.Admit() {
		rec.Decision, rec.Status = "deny", 503 // refused: the audit log cannot take records
	} else {
		rec.Decision, rec.Status = "allow", 200 // forwarded to the daemon
	}
	l.Write(rec)
	l.Close()
	fmt.Printf("%+v\n", l.Stats())
	// Output:
	// {Written:1 Dropped:0 Failed:0}
}
