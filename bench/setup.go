package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
	"github.com/dockgate/dockgate/internal/dockertest"
)

// Contender IDs, in the order the table lists them.
const (
	contenderUnix     = "unix"
	contenderNative   = "native"
	contenderDockgate = "dockgate"
	contenderRSA      = "dockgate-rsa"
	// contenderLocal is the ECDSA gateway's local socket (listen_unix),
	// plain HTTP like the daemon's socket, the bench's uid 0 admin by a
	// uid: rule.
	contenderLocal = "dockgate-unix"
)

var contenderNames = map[string]string{
	contenderUnix:          "daemon unix socket",
	contenderNative:        "dockerd native TLS (RSA-4096)",
	contenderDockgate:      "dockgate (ECDSA P-256)",
	contenderRSA:           "dockgate (RSA-4096)",
	contenderLocal:         "dockgate local socket",
	contenderPolicyOff:     "policy off: admin, audit off",
	contenderPolicyOn:      "policy on: role bench, audit on",
	contenderPolicyNoAudit: "policy on: role bench, audit off",
}

// Gateway processes, and the state directories (by key type) they run on.
const (
	gatewayECDSA = "ecdsa"
	gatewayRSA   = "rsa"
	// gatewayPolicy is the kind of the state directory the policy
	// comparison's gateways share (ECDSA P-256): the only audit log in
	// it is the policy-on gateway's.
	gatewayPolicy = "policy"
)

// contenderGateways names the gateway process behind each dockgate
// contender.
var contenderGateways = map[string]string{
	contenderDockgate:      gatewayECDSA,
	contenderRSA:           gatewayRSA,
	contenderLocal:         gatewayECDSA,
	contenderPolicyOff:     contenderPolicyOff,
	contenderPolicyOn:      contenderPolicyOn,
	contenderPolicyNoAudit: contenderPolicyNoAudit,
}

// Names in the state directories.
const (
	nativeServerName  = "dockerd"
	gatewayServerName = "gateway"
	clientName        = "bench"
	// clientGroup is the group the gateway's default config lets in.
	clientGroup = "admins"
)

// environment is everything the measurements run against.
type environment struct {
	work     string
	bin      string
	daemon   *dockertest.Daemon
	states   map[string]*stateDir // by gateway kind; the RSA one also serves dockerd
	gateways map[string]*gatewayProc
	eps      map[string]load.Endpoint
	certsBy  string // "dockgate init/issue" or "internal/pki"
	listSize int    // bytes of GET /containers/json?all=1
	image    string
	// gatewayEnv is added to the gateway processes' environment.
	gatewayEnv []string
	stderr     io.Writer
}

// setUp builds the binary, the certificates, the daemon and the gateways.
// A non-nil environment must be torn down even when err is set.
func setUp(ctx context.Context, opts options, stderr io.Writer) (*environment, error) {
	if err := raiseFileLimit(); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "dockgate-bench-")
	if err != nil {
		return nil, fmt.Errorf("failed to create the work directory: %w", err)
	}
	env := &environment{work: work, states: map[string]*stateDir{}, gateways: map[string]*gatewayProc{},
		eps: map[string]load.Endpoint{}, gatewayEnv: opts.gatewayEnv, stderr: stderr}
	return env, env.setUp(ctx, opts)
}

func (env *environment) setUp(ctx context.Context, opts options) error {
	env.logf("building dockgate")
	var err error
	if env.bin, err = buildDockgate(ctx, env.work); err != nil {
		return err
	}
	env.logf("creating certificates (RSA-4096 keys take a few seconds)")
	if err := env.createStates(ctx); err != nil {
		return err
	}
	nativePort, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	flags, err := env.dockerdFlags(ctx, nativePort)
	if err != nil {
		return err
	}
	env.logf("starting a private dockerd with %s", strings.Join(flags, " "))
	if env.daemon, err = dockertest.Start(ctx, dockertest.Options{ExtraArgs: flags}); err != nil {
		return err
	}
	if err := env.prepareDaemon(ctx, opts); err != nil {
		return err
	}
	gateways := []struct{ kind, name, policy string }{
		{gatewayECDSA, gatewayECDSA, localSocketConfig(env.localSocket())},
		{gatewayRSA, gatewayRSA, ""},
	}
	for _, id := range policyContenders {
		gateways = append(gateways, struct{ kind, name, policy string }{gatewayPolicy, id, policyConfigs[id]})
	}
	for _, gw := range gateways {
		g, err := startGateway(ctx, env, gw.kind, gw.name, gw.policy)
		if g != nil {
			env.gateways[gw.name] = g
		}
		if err != nil {
			return err
		}
	}
	return env.makeEndpoints(nativePort)
}

func (env *environment) logf(format string, args ...any) {
	fmt.Fprintf(env.stderr, "bench: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// tearDown stops the gateways and the daemon and removes the work
// directory unless keep is set (or something failed).
func (env *environment) tearDown(keep bool) error {
	var errs []error
	for _, g := range env.gateways {
		errs = append(errs, g.stop())
	}
	if env.daemon != nil {
		errs = append(errs, env.daemon.Stop())
	}
	if keep {
		env.logf("kept %s (certificates, gateway logs)", env.work)
	} else {
		errs = append(errs, os.RemoveAll(env.work))
	}
	return errors.Join(errs...)
}

func joinErr(a, b error) error { return errors.Join(a, b) }

// raiseFileLimit lifts the soft open-file limit to the hard one: the idle
// test holds a thousand connections, and the gateway inherits the limit.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("failed to read the open-file limit: %w", err)
	}
	if lim.Cur >= lim.Max {
		return nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("failed to raise the open-file limit: %w", err)
	}
	return nil
}

// buildDockgate builds ./cmd/dockgate as released (CGO off) into dir.
func buildDockgate(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("failed to run 'go env GOMOD': %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench from inside the dockgate module")
	}
	bin := filepath.Join(dir, "dockgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dockgate")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build dockgate: %w\n%s", err, out)
	}
	return bin, nil
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// dockerdFlags runs `dockgate dockerd-config --format flags` and splits its
// line the way a POSIX shell would. The native listener shares the RSA
// gateway's CA so that one client certificate measures both; outside a
// benchmark that is what --allow-gateway-ca warns about.
func (env *environment) dockerdFlags(ctx context.Context, port int) ([]string, error) {
	listen := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	line, err := env.states[gatewayRSA].dockgate(ctx, "dockerd-config", nativeServerName, "--listen", listen, "--format", "flags", "--allow-gateway-ca")
	if err != nil {
		return nil, err
	}
	return shellWords(ctx, strings.TrimSpace(line))
}

// shellWords lets sh split line into words, so the flags reach dockerd
// exactly as `dockerd $(dockgate dockerd-config ...)` in a shell would
// pass them, quoting included.
func shellWords(ctx context.Context, line string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "sh", "-c", `eval "set -- $1"; printf '%s\0' "$@"`, "sh", line).Output()
	if err != nil {
		return nil, fmt.Errorf("failed to split the dockerd flags %q: %w", line, err)
	}
	words := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(words) == 0 || words[0] == "" {
		return nil, fmt.Errorf("dockerd-config printed no flags")
	}
	return words, nil
}

// makeEndpoints describes how the load generator reaches each contender.
func (env *environment) makeEndpoints(nativePort int) error {
	socket := strings.TrimPrefix(env.daemon.Host(), "unix://")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	env.eps[contenderUnix] = load.Endpoint{
		Name: contenderNames[contenderUnix], BaseURL: "http://docker",
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
	}
	local := env.localSocket()
	env.eps[contenderLocal] = load.Endpoint{
		Name: contenderNames[contenderLocal], BaseURL: "http://docker",
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", local)
		},
	}
	targets := []struct {
		id, state, addr string
	}{
		{contenderNative, gatewayRSA, fmt.Sprintf("127.0.0.1:%d", nativePort)},
		{contenderDockgate, gatewayECDSA, env.gateways[gatewayECDSA].addr},
		{contenderRSA, gatewayRSA, env.gateways[gatewayRSA].addr},
	}
	for _, id := range policyContenders {
		targets = append(targets, struct{ id, state, addr string }{id, gatewayPolicy, env.gateways[id].addr})
	}
	for _, t := range targets {
		cfg, err := env.states[t.state].clientTLS()
		if err != nil {
			return err
		}
		env.eps[t.id] = load.Endpoint{Name: contenderNames[t.id], BaseURL: "https://" + t.addr, TLS: cfg}
	}
	return nil
}

// tlsSummary names the protocol, cipher suite and server key a contender
// negotiates, for the report header.
func tlsSummary(ep load.Endpoint) string {
	if ep.TLS == nil {
		return "plain HTTP"
	}
	addr := strings.TrimPrefix(ep.BaseURL, "https://")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, ep.TLS)
	if err != nil {
		return "handshake failed: " + err.Error()
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	return fmt.Sprintf("%s, %s, key exchange %s, server key %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
		cs.CurveID, keyDescription(cs.PeerCertificates[0]))
}

func keyDescription(cert *x509.Certificate) string {
	switch cert.PublicKeyAlgorithm {
	case x509.RSA:
		return fmt.Sprintf("RSA-%d", cert.PublicKey.(interface{ Size() int }).Size()*8)
	case x509.ECDSA:
		return "ECDSA " + curveName(cert)
	}
	return cert.PublicKeyAlgorithm.String()
}

// envDescription is what the report header says about the setup.
type envDescription struct {
	cpus      int
	cpuModel  string
	kernel    string
	dockerd   string
	goVersion string
	certsBy   string
	listSize  int
	tls       map[string]string
}

func (env *environment) describe() envDescription {
	d := envDescription{certsBy: env.certsBy, listSize: env.listSize, tls: map[string]string{}}
	d.cpus, d.cpuModel = cpuInfo()
	d.kernel = kernelRelease()
	d.dockerd = dockerdVersion()
	d.goVersion = goVersion()
	for id, ep := range env.eps {
		d.tls[id] = tlsSummary(ep)
	}
	return d
}

// localSocket is the path of the ECDSA gateway's local socket.
func (env *environment) localSocket() string { return filepath.Join(env.work, "dockgate.sock") }

// localSocketConfig gives the ECDSA gateway a local socket beside its
// default rules (group admins is admin): the bench runs as root, and root
// needs a rule like any local user.
func localSocketConfig(path string) string {
	return fmt.Sprintf(`listen_unix: %q
clients:
  - group: admins
    role: admin
  - uid: 0
    role: admin
`, path)
}
