package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envKillChild makes the test binary a process that writes audit records
// and waits to be killed (TestMain): DOCKGATE_AUDIT_KILL_CHILD=path,records,rate.
const envKillChild = "DOCKGATE_AUDIT_KILL_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envKillChild); spec != "" {
		runKillChild(spec)
		return
	}
	os.Exit(m.Run())
}

// runKillChild writes records (all at once with rate 0, else rate a
// second), says "queued" on stdout and waits for SIGKILL.
func runKillChild(spec string) {
	var path string
	var records, rate int
	if _, err := fmt.Sscanf(spec, "%s %d %d", &path, &records, &rate); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	r := sampleRecord()
	perMs := max(rate/1000, 1)
	for i := range records {
		r.RequestID = strconv.Itoa(i)
		l.Write(r)
		if rate > 0 && i%perMs == perMs-1 {
			time.Sleep(time.Millisecond) // pacing the load, not synchronising
		}
	}
	fmt.Println("queued")
	select {}
}

// A kill -9 of the writing process loses the records queued or gathered
// but not yet written, and nothing else: what is on disk is whole lines,
// the first records in order, with no gap.
func TestKillLosesOnlyTheUnwrittenTail(t *testing.T) {
	for _, tc := range []struct {
		name          string
		records, rate int
	}{
		{"burst of 10000", 10000, 0},
		{"10000 a second for 0.3 s", 3000, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", envKillChild, path, tc.records, tc.rate))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "queued\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q, %v", line, err)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			lines := readLines(t, path)
			last := len(lines) - 1
			for i, line := range lines {
				var r struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					if i == last {
						t.Logf("the last line is cut: %.40q...", line)
						continue
					}
					t.Fatalf("line %d of %d is torn: %q", i, len(lines), line)
				}
				if r.RequestID != strconv.Itoa(i) {
					t.Fatalf("line %d is record %s: a gap or a reordering", i, r.RequestID)
				}
			}
			t.Logf("%d records issued, %d lines on disk after kill -9", tc.records, len(lines))
			assertRestartEndsCutLine(t, path, len(lines))
		})
	}
}

// assertRestartEndsCutLine opens the log again, as a restarted gateway
// does, and checks that its first record is a whole line of its own.
func assertRestartEndsCutLine(t *testing.T, path string, before int) {
	t.Helper()
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord()
	r.RequestID = "after-restart"
	l.Write(r)
	l.Close()
	lines := readLines(t, path)
	if len(lines) != before+1 {
		t.Fatalf("%d lines after the restart's record, want %d", len(lines), before+1)
	}
	if err := json.Unmarshal([]byte(lines[before]), new(map[string]any)); err != nil || !strings.Contains(lines[before], "after-restart") {
		t.Errorf("the record after the restart is not a line of its own: %q", lines[before])
	}
}

func TestOpenEndsACutLastLine(t *testing.T) {
	for _, tc := range []struct {
		name, existing string
		want           int // lines after one more record
	}{
		{"cut", "{\"whole\":1}\n{\"cut", 3},
		{"whole", "{\"whole\":1}\n", 2},
		{"empty", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(path, []byte(tc.existing), 0o600); err != nil {
				t.Fatal(err)
			}
			assertRestartEndsCutLine(t, path, tc.want-1)
		})
	}
}
