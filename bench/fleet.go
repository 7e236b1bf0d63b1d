package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/dockgate/dockgate/bench/internal/load"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// The fleet part: three gateways on one PostgreSQL store, and one more
// gateway on SQLite for the per-request comparison.
const (
	fleetGateways = 3
	// contenderFleetPG is the first fleet gateway (PostgreSQL store);
	// contenderFleetSQLite the same config on a SQLite inventory.
	contenderFleetPG     = "fleet-pg"
	contenderFleetSQLite = "fleet-sqlite"
	// fleetRevocations is the number of revocations timed (-quick: 10).
	fleetRevocations      = 30
	fleetRevocationsQuick = 10
	// fleetCutTimeout bounds the wait for a gateway to cut a revoked
	// client's stream.
	fleetCutTimeout = 10 * time.Second
)

// pgURLEnv names a PostgreSQL database to use; without it the bench
// starts a private cluster with scripts/postgres.
const pgURLEnv = "DOCKGATE_TEST_POSTGRES_URL"

// fleetResult is what the fleet part measured.
type fleetResult struct {
	storeWhere string
	rounds     int
	// fromCommit[g] and fromStart[g] are gateway g's cut times of each
	// round, after the revoking transaction returned (committed) and
	// after it began.
	fromCommit, fromStart [][]time.Duration
	commit                []time.Duration // the revoking transaction alone
	matrix                *matrixResult   // fleet-pg vs fleet-sqlite
}

// runFleet starts the fleet, times revocations and compares the request
// cost of a gateway on PostgreSQL with one on SQLite.
func runFleet(ctx context.Context, env *environment, opts options, log io.Writer) (res *fleetResult, err error) {
	pgURL, stopPG, err := fleetPostgres(ctx, env)
	if err != nil {
		return nil, err
	}
	defer func() { err = joinErr(err, stopPG()) }()
	env.logf("fleet: %d gateways on PostgreSQL %s", fleetGateways, store.RedactURL(pgURL))
	var states []*stateDir
	for i := range fleetGateways {
		s, err := newStateDir(filepath.Join(env.work, fmt.Sprintf("state-fleet%d", i)), env.bin, pki.KeyTypeECDSAP256)
		if err != nil {
			return nil, err
		}
		s.env = []string{"DOCKGATE_STORE=" + pgURL}
		if i == 0 {
			if err := s.createWithCLI(ctx, []string{gatewayServerName}); err != nil {
				return nil, fmt.Errorf("failed to create the fleet's certificates: %w", err)
			}
		} else if err := copyFleetState(states[0].dir, s.dir); err != nil {
			return nil, err
		}
		states = append(states, s)
		kind := fmt.Sprintf("fleet%d", i)
		env.states[kind] = s
		policy := fmt.Sprintf("store:\n  url: %q\nhost:\n  name: %s\n", pgURL, kind)
		g, err := startGateway(ctx, env, kind, kind, policy)
		if g != nil {
			env.gateways[kind] = g
		}
		if err != nil {
			return nil, err
		}
	}
	sqlite, err := newStateDir(filepath.Join(env.work, "state-fleet-sqlite"), env.bin, pki.KeyTypeECDSAP256)
	if err != nil {
		return nil, err
	}
	if err := sqlite.createWithCLI(ctx, []string{gatewayServerName}); err != nil {
		return nil, err
	}
	env.states[contenderFleetSQLite] = sqlite
	g, err := startGateway(ctx, env, contenderFleetSQLite, contenderFleetSQLite, "host:\n  name: fleet-sqlite\n")
	if g != nil {
		env.gateways[contenderFleetSQLite] = g
	}
	if err != nil {
		return nil, err
	}

	res = &fleetResult{rounds: fleetRevocations, fromCommit: make([][]time.Duration, fleetGateways),
		fromStart: make([][]time.Duration, fleetGateways)}
	if opts.quick {
		res.rounds = fleetRevocationsQuick
	}
	st, err := store.OpenWith(states[0].dir, store.Options{URL: pgURL})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res.storeWhere = st.Where()
	for round := range res.rounds {
		if err := res.revokeOnce(ctx, env, states[0], st, round); err != nil {
			return nil, err
		}
	}

	contenderNames[contenderFleetPG] = "gateway on the PostgreSQL store"
	contenderNames[contenderFleetSQLite] = "gateway on SQLite"
	contenderGateways[contenderFleetPG] = "fleet0"
	contenderGateways[contenderFleetSQLite] = contenderFleetSQLite
	for id, kind := range map[string]string{contenderFleetPG: "fleet0", contenderFleetSQLite: contenderFleetSQLite} {
		cfg, err := env.states[kind].clientTLS()
		if err != nil {
			return nil, err
		}
		env.eps[id] = load.Endpoint{Name: contenderNames[id], BaseURL: "https://" + env.gateways[kind].addr, TLS: cfg}
	}
	scs := []scenario{{pathPing, 8, load.KeepAlive, []string{contenderFleetPG, contenderFleetSQLite}}}
	if res.matrix, err = runRounds(ctx, env, opts, scs, "fleet ", log); err != nil {
		return nil, err
	}
	return res, nil
}

// revokeOnce issues a client, opens a live GET /events with it on every
// fleet gateway, revokes it in the store and times each gateway's cut.
func (r *fleetResult) revokeOnce(ctx context.Context, env *environment, s *stateDir, st *store.Store, round int) error {
	name := fmt.Sprintf("revoked-%d", round)
	if _, err := s.dockgate(ctx, "issue", "client", name, "--group", clientGroup, "--key-type", string(pki.KeyTypeECDSAP256)); err != nil {
		return err
	}
	cfg, err := s.clientTLSOf(name)
	if err != nil {
		return err
	}
	serial, err := certSerial(filepath.Join(s.dir, "clients", name, "cert.pem"))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer client.CloseIdleConnections()
	cut := make([]time.Time, fleetGateways)
	var wg sync.WaitGroup
	for i := range fleetGateways {
		addr := env.gateways[fmt.Sprintf("fleet%d", i)].addr
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/events", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("fleet: GET /events as %s on gateway %d: %w", name, i, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("fleet: GET /events as %s on gateway %d: %s", name, i, resp.Status)
		}
		wg.Go(func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
			cut[i] = time.Now()
			resp.Body.Close()
		})
	}
	begin := time.Now()
	if err := st.Revoke(ctx, serial, "key-compromise", begin); err != nil {
		return err
	}
	committed := time.Now()
	r.commit = append(r.commit, committed.Sub(begin))
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(fleetCutTimeout):
		return fmt.Errorf("fleet: a stream of the revoked %s still runs %s after the revocation", name, fleetCutTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	for i, at := range cut {
		r.fromCommit[i] = append(r.fromCommit[i], at.Sub(committed))
		r.fromStart[i] = append(r.fromStart[i], at.Sub(begin))
	}
	return nil
}

func certSerial(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return "", fmt.Errorf("no certificate in %s", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", err
	}
	return c.SerialNumber.Text(16), nil
}

// copyFleetState copies the CA and the server certificate, as an
// operator copies them to another host of the fleet, and the bench's
// client certificates, with which the bench waits for each gateway.
func copyFleetState(from, to string) error {
	for _, sub := range []string{"ca", "servers", "clients"} {
		err := filepath.WalkDir(filepath.Join(from, sub), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(from, path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			dst := filepath.Join(to, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			return os.WriteFile(dst, data, 0o600)
		})
		if err != nil {
			return fmt.Errorf("failed to copy the fleet's %s: %w", sub, err)
		}
	}
	return nil
}

// fleetPostgres returns the URL of a fresh schema in the database
// DOCKGATE_TEST_POSTGRES_URL names, or in a private cluster it starts
// with scripts/postgres (run from the repository's root), and a function
// that drops the schema or stops the cluster.
func fleetPostgres(ctx context.Context, env *environment) (string, func() error, error) {
	base := os.Getenv(pgURLEnv)
	stop := func() error { return nil }
	if base == "" {
		// The user postgres must reach the directory: MkdirTemp is 0700.
		dir, err := os.MkdirTemp("", "dockgate-bench-pg-")
		if err != nil {
			return "", nil, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			return "", nil, err
		}
		env.logf("fleet: starting PostgreSQL with scripts/postgres in %s", dir)
		out, err := exec.CommandContext(ctx, "scripts/postgres", "start", dir).Output()
		stop = func() error {
			var errOut strings.Builder
			cmd := exec.Command("scripts/postgres", "stop", dir)
			cmd.Stderr = &errOut
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("failed to stop the bench's PostgreSQL: %w\n%s", err, errOut.String())
			}
			return os.RemoveAll(dir)
		}
		if err != nil {
			return "", nil, joinErr(fmt.Errorf("failed to start PostgreSQL with scripts/postgres (run the bench from the repository's root, or set %s): %w", pgURLEnv, err), stop())
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "export "+pgURLEnv+"="); ok {
				base = strings.Trim(v, "'")
			}
		}
		if base == "" {
			return "", nil, joinErr(fmt.Errorf("scripts/postgres start printed no %s", pgURLEnv), stop())
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, joinErr(fmt.Errorf("%s does not parse", pgURLEnv), stop())
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, joinErr(err, stop())
	}
	defer db.Close()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, joinErr(fmt.Errorf("failed to create a schema in %s: %w", u.Redacted(), err), stop())
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() error {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, err = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
		return joinErr(err, stop())
	}
	return u.String(), drop, nil
}

func (r *fleetResult) print(w io.Writer) {
	fmt.Fprintf(w, "Fleet: %d gateways on one PostgreSQL store (%s). Revocation propagation over %d revocations "+
		"(store.Revoke of a client with a live GET /events on every gateway; the cut is when the stream's body ends):\n\n",
		fleetGateways, r.storeWhere, r.rounds)
	fmt.Fprintln(w, "| gateway | commit to cut p50 | p99 | max | transaction start to cut p50 | p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	var all []time.Duration
	for i := range fleetGateways {
		c50, c99, cmax := durationPercentiles(r.fromCommit[i])
		s50, s99, _ := durationPercentiles(r.fromStart[i])
		fmt.Fprintf(w, "| fleet%d | %s | %s | %s | %s | %s |\n", i, formatMillis(c50), formatMillis(c99), formatMillis(cmax),
			formatMillis(s50), formatMillis(s99))
		all = append(all, r.fromCommit[i]...)
	}
	a50, a99, amax := durationPercentiles(all)
	t50, t99, _ := durationPercentiles(r.commit)
	fmt.Fprintf(w, "| all | %s | %s | %s | | |\n\n", formatMillis(a50), formatMillis(a99), formatMillis(amax))
	fmt.Fprintf(w, "The revoking transaction itself: p50 %s, p99 %s.\n\n", formatMillis(t50), formatMillis(t99))
	fmt.Fprintln(w, "| GET /_ping keep-alive c=8 | req/s | p50 | p99 | CPU/req, all | gateway CPU/req | gateway ctx sw/req |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, id := range []string{contenderFleetPG, contenderFleetSQLite} {
		st := r.matrix.stats(0, id)
		errs := ""
		if st.errors > 0 {
			errs = fmt.Sprintf(" (%d errors)", st.errors)
		}
		fmt.Fprintf(w, "| %s | %s%s | %s | %s | %s | %s | %.1f |\n", contenderNames[id], formatCount(st.rps), errs,
			formatMicros(st.p50), formatMicros(st.p99), formatMicros(st.totalCPU), formatMicros(st.gatewayCPU), st.switches)
	}
	fmt.Fprintln(w)
}

// durationPercentiles sorts a copy of ds and returns its median, 99th
// percentile and maximum.
func durationPercentiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99+99)/100-1], s[len(s)-1]
}

func formatMillis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
