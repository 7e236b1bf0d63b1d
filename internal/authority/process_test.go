package authority

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// helperEnv makes the test binary act as one dockgate issuance, for the
// kill -9 test below, instead of running the tests.
const helperEnv = "DOCKGATE_AUTHORITY_HELPER"

// killRunsEnv sets how many issuances TestKilledIssuanceLeavesNothingUnknown
// kills; the default keeps it to a few seconds.
const killRunsEnv = "DOCKGATE_KILL_RUNS"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv("DOCKGATE_STATE_DIR"), os.Getenv("DOCKGATE_NAME")))
	}
	os.Exit(m.Run())
}

// Issuance kinds the helper runs: every path that signs.
const (
	helperIssue = "issue" // issue client: bundle written to a new directory
	helperRenew = "renew" // renew: bundle replaced, old one superseded
	helperSign  = "sign"  // enrollment: CSR signed, nothing written
)

var helperModes = []string{helperIssue, helperRenew, helperSign}

// renewedName is the client every renew run renews.
const renewedName = "renewed"

// runHelper performs one issuance, printing "ready" just before it starts,
// "signed SERIAL" as soon as the CA has signed, and "done" at the end.
// os.Stdout is unbuffered, so what was printed before a kill is read.
func runHelper(mode, dir, name string) int {
	st, err := store.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a, err := Load(st, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	a.signed = func(c *x509.Certificate) { fmt.Printf("signed %s\n", pki.SerialHex(c.SerialNumber)) }
	ctx := context.Background()
	fmt.Println("ready")
	switch mode {
	case helperIssue:
		_, err = a.IssueClient(ctx, name, []string{"dev"}, 0, pki.KeyTypeECDSAP256)
	case helperRenew:
		_, err = a.Renew(ctx, renewedName, 0, time.Now())
	case helperSign:
		var csr *x509.CertificateRequest
		if csr, err = testCSR(); err == nil {
			_, err = a.SignCSR(ctx, csr, Request{Kind: pki.KindClient, Name: name})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("done")
	return 0
}

func testCSR() (*x509.CertificateRequest, error) {
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificateRequest(der)
}

// helperRun is one helper process and what it printed.
type helperRun struct {
	signed []string // serials
	done   bool
}

// startHelper starts one issuance and waits until it is about to begin.
func startHelper(t *testing.T, dir, mode, name string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "DOCKGATE_STATE_DIR="+dir, "DOCKGATE_NAME="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper %s %s: %q, %v; stderr: %s", mode, name, line, err, stderr.String())
	}
	return cmd, br
}

// finish reads what the helper printed until it exited.
func finish(cmd *exec.Cmd, br *bufio.Reader) (helperRun, error) {
	rest, _ := io.ReadAll(br)
	err := cmd.Wait()
	var r helperRun
	for _, line := range strings.Split(string(rest), "\n") {
		if s, ok := strings.CutPrefix(line, "signed "); ok {
			r.signed = append(r.signed, s)
		}
		r.done = r.done || line == "done"
	}
	return r, err
}

// timeIssuance runs mode to completion and returns how long it took from
// "ready" to "done" (not to exit: the race detector delays exit).
func timeIssuance(t *testing.T, dir, mode, name string) time.Duration {
	t.Helper()
	cmd, br := startHelper(t, dir, mode, name)
	start := time.Now()
	var took time.Duration
	for {
		line, err := br.ReadString('\n')
		if strings.TrimSpace(line) == "done" {
			took = time.Since(start)
			break
		}
		if err != nil {
			break
		}
	}
	r, err := finish(cmd, br)
	if err != nil || took == 0 {
		t.Fatalf("unkilled %s run: %v, done=%v", mode, err, r.done)
	}
	return took
}

// TestKilledIssuanceLeavesNothingUnknown kills issuances (issue, renew,
// enrollment signing) with SIGKILL at random moments and checks that no
// certificate the CA signed is unknown to the inventory: neither one in a
// file anywhere in the state directory, nor one the process reported
// signing. A later run then revokes what was left pending and removes the
// staging files.
func TestKilledIssuanceLeavesNothingUnknown(t *testing.T) {
	runs := 200
	if v := os.Getenv(killRunsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", killRunsEnv, v)
		}
		runs = n
	}
	began := time.Now()
	a := testAuthority(t)
	dir := a.Store().Dir()
	if _, err := a.IssueClient(ctx, renewedName, []string{"dev"}, 0, pki.KeyTypeECDSAP256); err != nil {
		t.Fatal(err)
	}
	// Kill anywhere from the start of an issuance to a little past its
	// usual end, as measured unkilled for each kind.
	window := map[string]time.Duration{}
	for _, mode := range helperModes {
		window[mode] = timeIssuance(t, dir, mode, "baseline-"+mode) * 6 / 5
	}

	var beforeSign, afterSign, completed int
	reported := map[string]bool{}
	for i := range runs {
		mode := helperModes[i%len(helperModes)]
		cmd, br := startHelper(t, dir, mode, fmt.Sprintf("c%03d", i))
		time.Sleep(rand.N(window[mode])) // the random moment to kill at, not a wait for an event
		cmd.Process.Signal(syscall.SIGKILL)
		r, _ := finish(cmd, br)
		switch {
		case r.done:
			completed++
		case len(r.signed) > 0:
			afterSign++
		default:
			beforeSign++
		}
		for _, s := range r.signed {
			reported[s] = true
		}
	}

	st := a.Store()
	onDisk := signedCertsOnDisk(t, dir, a.Cert())
	unknown := 0
	for serial, path := range onDisk {
		if _, err := exactRow(st, serial); err != nil {
			unknown++
			t.Errorf("certificate %s in %s is signed by the CA but not in the inventory", serial, path)
		}
	}
	for serial := range reported {
		if _, err := exactRow(st, serial); err != nil {
			unknown++
			t.Errorf("certificate %s was signed but is not in the inventory", serial)
		}
	}
	pending, err := st.PendingCerts(ctx)
	if err != nil {
		t.Fatal(err)
	}

	interrupted := 0
	all, err := st.Certs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Reason == reasonInterrupted {
			interrupted++
		}
	}

	var notices bytes.Buffer
	if err := Recover(ctx, st, slog.New(slog.NewTextHandler(&notices, nil))); err != nil {
		t.Fatal(err)
	}
	checkSettled(t, dir, a.Cert(), st)
	if len(pending) > 0 && !strings.Contains(notices.String(), "revoked a certificate whose issuance was interrupted") {
		t.Errorf("recovery revoked %d pending certificates without saying so:\n%s", len(pending), notices.String())
	}
	t.Logf("%d runs killed at random within %v: %d before signing, %d after signing, %d completed first; "+
		"%d certificates signed on disk, %d reported signed, %d unknown to the inventory; %d revoked as interrupted "+
		"by the next run, %d pending rows left for the final recovery; %s in all",
		runs, window, beforeSign, afterSign, completed, len(onDisk), len(reported),
		unknown, interrupted, len(pending), time.Since(began).Round(time.Millisecond))
}

// checkSettled checks a state directory after recovery: no staging files,
// no pending row, and every bundle in place holds a valid certificate.
func checkSettled(t *testing.T, dir string, ca *x509.Certificate, st *store.Store) {
	t.Helper()
	if pending, err := st.PendingCerts(ctx); err != nil || len(pending) > 0 {
		t.Errorf("after recovery: %d pending rows, %v", len(pending), err)
	}
	for _, kind := range []pki.Kind{pki.KindServer, pki.KindClient} {
		parent := filepath.Dir(BundleDir(dir, kind, "x"))
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("after recovery: staging %s left in %s", e.Name(), parent)
				continue
			}
			data, err := os.ReadFile(filepath.Join(parent, e.Name(), BundleCertFile))
			if err != nil {
				t.Errorf("bundle %s: %v", e.Name(), err)
				continue
			}
			cert, err := pki.ParseCertPEM(data)
			if err != nil {
				t.Errorf("bundle %s: %v", e.Name(), err)
				continue
			}
			row, err := exactRow(st, pki.SerialHex(cert.SerialNumber))
			if err != nil || row.Status(time.Now()) != store.StatusValid {
				t.Errorf("bundle %s holds certificate %s in state %q (%v), want valid", e.Name(), row.Serial, row.Status(time.Now()), err)
			}
		}
	}
}

func exactRow(st *store.Store, serial string) (store.Cert, error) {
	c, err := st.CertBySerial(ctx, serial)
	if err == nil && c.Serial != serial {
		err = fmt.Errorf("serial %s: only a prefix match", serial)
	}
	return c, err
}

// signedCertsOnDisk finds every certificate the CA signed in any file under
// dir, hidden staging files included, by serial, except the CA's own.
func signedCertsOnDisk(t *testing.T, dir string, ca *x509.Certificate) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // vanished while walking: nothing to check
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil || c.Equal(ca) || c.CheckSignatureFrom(ca) != nil {
				continue
			}
			found[pki.SerialHex(c.SerialNumber)] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
