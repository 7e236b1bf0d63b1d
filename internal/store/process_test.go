package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// helperEnv makes the test binary act as a separate dockgate process for
// the multi-process tests below instead of running the tests.
const helperEnv = "DOCKGATE_STORE_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv("DOCKGATE_STORE_DIR")))
	}
	os.Exit(m.Run())
}

// runHelper opens the store in this process and either adds certificates
// or tries to consume the "race" token, printing the outcome.
func runHelper(mode, dir string) int {
	ctx := context.Background()
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	switch mode {
	case "add":
		for range 20 {
			serial := randomSerial()
			if err := s.AddCert(ctx, testCert(serial, KindClient, "p")); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println(serial)
		}
	case "consume":
		_, err := s.ConsumeToken(ctx, testToken("race", 1).SecretHash, epoch)
		switch {
		case err == nil:
			fmt.Println("won")
		case errors.Is(err, ErrTokenUsed):
			fmt.Println("used")
		default:
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// runHelpers starts n copies of the test binary at once on dir and returns
// their standard outputs.
func runHelpers(t *testing.T, n int, mode, dir string) []string {
	t.Helper()
	outs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, "DOCKGATE_STORE_DIR="+dir)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("helper process %d: %v: %s", i, err, stderr.String())
			}
			outs[i] = string(out)
		})
	}
	wg.Wait()
	return outs
}

func TestProcessesAddCertToAFreshStore(t *testing.T) {
	const procs = 6
	dir := t.TempDir() // no database yet: the processes also race to create it
	outs := runHelpers(t, procs, "add", dir)
	s := openTest(t, dir)
	certs, err := s.Certs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range certs {
		have[c.Serial] = true
	}
	added := strings.Fields(strings.Join(outs, " "))
	if len(added) != procs*20 || len(certs) != procs*20 {
		t.Errorf("processes added %d certs and the store holds %d, want %d", len(added), len(certs), procs*20)
	}
	for _, serial := range added {
		if !have[serial] {
			t.Errorf("serial %s was added but is missing", serial)
		}
	}
	integrityOK(t, s)
}

func TestProcessesConsumeSingleUseToken(t *testing.T) {
	const procs = 6
	dir := t.TempDir()
	if err := openTest(t, dir).AddToken(context.Background(), testToken("race", 1)); err != nil {
		t.Fatal(err)
	}
	outs := runHelpers(t, procs, "consume", dir)
	var won, used int
	for _, o := range outs {
		switch strings.TrimSpace(o) {
		case "won":
			won++
		case "used":
			used++
		}
	}
	if won != 1 || used != procs-1 {
		t.Errorf("%d processes won and %d saw 'used', want 1 and %d", won, used, procs-1)
	}
}
