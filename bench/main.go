// Command bench measures the dockgate gateway against the Docker daemon's
// own listeners, on one private dockerd, and prints a table.
//
//	go run ./bench            # the full run, about six minutes
//	go run ./bench -quick     # a smoke run of the same code paths
//
// # Contenders
//
//   - the daemon's unix socket, plain HTTP;
//   - dockerd's native TLS listener, configured exactly by
//     `dockgate dockerd-config SERVER --listen tcp://127.0.0.1:PORT --format flags`
//     with RSA-4096 certificates (the classic openssl recipe);
//   - `dockgate serve` as a child process, with ECDSA P-256 certificates (the
//     default), in front of the same daemon's unix socket, on the default
//     policy (group admins is admin) and audit log (audit.jsonl in its
//     state directory);
//   - the same gateway with RSA-4096 certificates, for the handshake rate;
//   - for the policy comparison (policy.go), three more ECDSA gateways:
//     policy off (admin, no audit log), policy on (a restricted role and
//     the audit log), and policy on with the audit log off;
//   - for the fair-share comparison (fairshare.go), one more, where a
//     second client holds each of its per-client caps while the bench
//     client measures its latency and errors;
//   - for the fleet part (fleet.go; -skip-fleet skips it, -fleet runs it
//     alone), three gateways on one PostgreSQL store (DOCKGATE_TEST_POSTGRES_URL,
//     or a private cluster scripts/postgres starts) and one on SQLite:
//     revocation propagation to live connections, and the per-request
//     cost on each store.
//
// The CA, server and client certificates come from `dockgate init` and
// `dockgate issue` when the binary has them, and from internal/pki otherwise.
//
// # Method
//
// Every cell (scenario x contender) runs for -duration after a -warmup whose
// requests are not recorded. Rounds are interleaved: each round measures
// every cell once, starting with a different contender each time, and the
// table shows medians over the rounds. Ratios are taken against dockerd's
// native TLS in the same round, then the median of those ratios is shown.
// Everything listens on 127.0.0.1; the load generator is bench/internal/load.
//
// The run ends with dockerd killed and started again on the same socket
// under keep-alive clients of the gateway (restart.go): every request
// through the gateway once dockerd answers again must succeed.
//
// Requirements: Linux, root, Debian's docker.io and busybox-static (the same
// as the integration tests; see internal/dockertest).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line knobs.
type options struct {
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	maxRequests   int
	containers    int
	imageMB       int
	streamRounds  int
	idleConns     int
	keep          bool
	quick         bool
	skipStreaming bool
	skipPolicy    bool
	skipFairShare bool
	skipRestart   bool
	skipFleet     bool
	fleetOnly     bool
	profile       string
	gatewayEnv    envList
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds over every cell")
	fs.DurationVar(&o.duration, "duration", time.Second, "measuring time per cell")
	fs.DurationVar(&o.warmup, "warmup", 200*time.Millisecond, "unrecorded warm-up per cell")
	fs.IntVar(&o.maxRequests, "max-requests", 200_000, "recorded requests per cell at most")
	fs.IntVar(&o.containers, "containers", 20, "stopped containers to create; 20 make /containers/json?all=1 about 14 KiB")
	fs.IntVar(&o.imageMB, "image-mb", 200, "size of the random data in the exported image, MB")
	fs.IntVar(&o.streamRounds, "stream-rounds", 5, "interleaved rounds of the image export")
	fs.IntVar(&o.idleConns, "idle-conns", 1000, "idle mTLS connections held open for the memory measurement")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (certificates, logs)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: 1 round, short cells, a 20 MB image, 100 idle connections (flags given explicitly win)")
	fs.BoolVar(&o.skipStreaming, "skip-streaming", false, "skip the image export")
	fs.BoolVar(&o.skipPolicy, "skip-policy", false, "skip the policy on vs off comparison")
	fs.BoolVar(&o.skipFairShare, "skip-fair-share", false, "skip client B's latency while client A is at each of its caps (fairshare.go)")
	fs.BoolVar(&o.skipRestart, "skip-restart", false, "skip the dockerd restart (it runs last: it restarts the daemon every contender shares)")
	fs.BoolVar(&o.skipFleet, "skip-fleet", false, "skip the fleet part: three gateways on one PostgreSQL store (fleet.go)")
	fs.BoolVar(&o.fleetOnly, "fleet", false, "run the fleet part only (fleet.go): revocation propagation and PostgreSQL vs SQLite per-request cost")
	fs.StringVar(&o.profile, "profile", "auto", "CPU profile of the gateway process with perf: auto (under the loads whose targets were missed), always, off")
	fs.Var(&o.gatewayEnv, "gateway-env", "KEY=VALUE for the gateway processes, e.g. GOMAXPROCS=1 or GOGC=200 (repeatable)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %v", fs.Args())
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return o, err
	}
	if o.quick {
		o.applyQuick(fs)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return o, err
	}
	return o, nil
}

// applyQuick shortens everything the command line did not set.
func (o *options) applyQuick(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	quick := []struct {
		flag  string
		apply func()
	}{
		{"rounds", func() { o.rounds = 1 }},
		{"duration", func() { o.duration = 300 * time.Millisecond }},
		{"warmup", func() { o.warmup = 100 * time.Millisecond }},
		{"image-mb", func() { o.imageMB = 20 }},
		{"stream-rounds", func() { o.streamRounds = 1 }},
		{"idle-conns", func() { o.idleConns = 100 }},
	}
	for _, q := range quick {
		if !set[q.flag] {
			q.apply()
		}
	}
}

func (o options) validate() error {
	switch o.profile {
	case "auto", "always", "off":
	default:
		return fmt.Errorf("-profile must be auto, always or off, not %q", o.profile)
	}
	if o.rounds < 1 || o.duration <= 0 || o.maxRequests < 1 || o.streamRounds < 1 || o.imageMB < 1 {
		return fmt.Errorf("-rounds, -duration, -max-requests, -stream-rounds and -image-mb must be positive")
	}
	if o.containers < 0 || o.idleConns < 0 || o.warmup < 0 {
		return fmt.Errorf("-containers, -idle-conns and -warmup must not be negative")
	}
	return nil
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options, stdout, stderr io.Writer) (err error) {
	started, loadBefore := time.Now(), loadAverage()
	env, err := setUp(ctx, opts, stderr)
	if env != nil {
		defer func() { err = joinErr(err, env.tearDown(err != nil || opts.keep)) }()
	}
	if err != nil {
		return err
	}
	rep := &report{opts: opts, env: env.describe()}
	if opts.fleetOnly {
		if rep.fleet, err = runFleet(ctx, env, opts, stderr); err != nil {
			return err
		}
		rep.elapsed = time.Since(started)
		rep.loadBefore, rep.loadAfter = loadBefore, loadAverage()
		rep.printFleetOnly(stdout)
		return nil
	}
	if rep.matrix, err = runMatrix(ctx, env, opts, stderr); err != nil {
		return err
	}
	if !opts.skipPolicy {
		if rep.policy, err = runPolicy(ctx, env, opts, stderr); err != nil {
			return err
		}
	}
	if !opts.skipFairShare {
		if rep.fairShare, err = runFairShare(ctx, env, opts, stderr); err != nil {
			return err
		}
	}
	if !opts.skipStreaming {
		if rep.streams, err = runStreaming(ctx, env, opts, stderr); err != nil {
			return err
		}
	}
	rep.peakRSS, rep.endRSS, err = env.gateways[gatewayECDSA].memory()
	if err != nil {
		return err
	}
	if opts.idleConns > 0 {
		if rep.idle, err = measureIdle(ctx, env, opts.idleConns, stderr); err != nil {
			return err
		}
	}
	for _, spec := range rep.profileSpecs() {
		for _, id := range spec.contenders {
			p, err := profileGateway(ctx, env, spec.scenario, id, stderr)
			if err != nil {
				return err
			}
			if p != nil {
				rep.profiles = append(rep.profiles, p)
			}
		}
	}
	if !opts.skipFleet {
		if rep.fleet, err = runFleet(ctx, env, opts, stderr); err != nil {
			return err
		}
	}
	if !opts.skipRestart {
		if rep.restart, err = measureRestart(ctx, env, stderr); err != nil {
			return err
		}
	}
	rep.elapsed = time.Since(started)
	rep.loadBefore, rep.loadAfter = loadBefore, loadAverage()
	rep.print(stdout)
	return nil
}
