package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// policyEnv is a gateway whose config has the roles below, a certificate
// for one client of each, and a direct line to the daemon behind it, to
// check what the daemon did (or did not do) whatever the gateway answered.
type policyEnv struct {
	*gatewayEnv
	bindDir   string            // the host path the ci role may bind-mount
	auditPath string            // audit.path of the config
	certs     map[string]string // client CN -> DOCKER_CERT_PATH
	daemon    *daemonAPI
}

// The clients of policyConfig, by CN.
const (
	ciClient      = "ci-7"     // cn "ci-*" -> ci
	tenantA       = "tenant-a" // group tenants -> tenant (owner isolation)
	tenantB       = "tenant-b"
	trialClient   = "trial-1" // group trials -> trial (audit mode)
	shareClient   = "share-1" // cn "share-*" -> sharer (volumes_from)
	markerLabel   = "dockgate.e2e.attempt"
	ownerLabelKey = "dockgate.owner"
)

// policyConfig is the serve config of the policy tests. @BIND@ and @AUDIT@ are
// replaced by temporary paths. system.ping and system.version are allowed
// because the docker CLI negotiates the API version with them first.
const policyConfig = `
audit:
  path: @AUDIT@
roles:
  ci:
    allow: [container.*, exec.*, image.build, image.pull, volume.*, system.ping, system.version]
    containers:
      bind_mounts: ["@BIND@"]
      capabilities: [NET_BIND_SERVICE]
  tenant:
    allow: [container.*, exec.*, volume.*, network.*, image.tag, system.ping, system.version, system.events]
    owner_isolation: true
  trial:
    allow: [container.*, system.ping, system.version]
    mode: audit
  sharer:
    allow: [container.*, exec.*, volume.*, system.ping, system.version]
    containers:
      bind_mounts: ["@BIND@"]
      volumes_from: true
      container_namespaces: true
clients:
  - cn: "ci-*"
    role: ci
  - cn: "share-*"
    role: sharer
  - group: tenants
    role: tenant
  - group: trials
    role: trial
  - group: admins
    role: admin
`

func startPolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	bindDir := filepath.Join(dir, "ci-binds")
	if err := os.Mkdir(bindDir, 0o755); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfg := strings.NewReplacer("@BIND@", bindDir, "@AUDIT@", auditPath).Replace(policyConfig)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	p := &policyEnv{
		gatewayEnv: g, bindDir: bindDir, auditPath: auditPath,
		certs:  map[string]string{"admin": g.certDir},
		daemon: newDaemonAPI(g.d.Host()),
	}
	for name, group := range map[string]string{ciClient: "ci", shareClient: "sharers", tenantA: "tenants", tenantB: "tenants", trialClient: "trials"} {
		certDir := filepath.Join(dir, "certs", name)
		g.cli.run("issue", "client", name, "--group", group, "--out", certDir)
		p.certs[name] = certDir
	}
	return p
}

// dockerAsClient runs the docker CLI through the gateway as one of the
// clients.
func (p *policyEnv) dockerAsClient(client string, args ...string) (stdout, stderr string, err error) {
	return p.dockerAs(p.certs[client], nil, args...)
}

// dockerWithin runs the docker CLI through the gateway as client, killed
// after timeout: a command that hangs fails its test, not the run.
func (p *policyEnv) dockerWithin(t *testing.T, timeout time.Duration, client string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = p.dockerEnv(p.certs[client])
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("docker %s did not finish within %s: %w", strings.Join(args, " "), timeout, err)
	}
	return out.String(), errOut.String(), err
}

// mustDockerAs is dockerAsClient that fails t when docker fails.
func (p *policyEnv) mustDockerAs(t *testing.T, client string, args ...string) string {
	t.Helper()
	out, errOut, err := p.dockerAsClient(client, args...)
	if err != nil {
		t.Fatalf("docker %s as %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), client, err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// startContainer creates and starts a `sleep 300` container as client
// through the gateway (docker create, docker start: no wait request, so
// that setup does not depend on a long-poll answer) and removes it, on the
// daemon, when t ends. It returns the container's ID.
func (p *policyEnv) startContainer(t *testing.T, client, name string, args ...string) string {
	t.Helper()
	id := p.createContainer(t, client, name, args...)
	p.mustDockerAs(t, client, "start", id)
	return id
}

// createContainer is startContainer without the start.
func (p *policyEnv) createContainer(t *testing.T, client, name string, args ...string) string {
	t.Helper()
	create := append([]string{"create", "--network", "none", "--name", name}, args...)
	id := p.mustDockerAs(t, client, append(create, p.d.Image(), "sleep", "300")...)
	t.Cleanup(func() { p.daemon.removeContainer(t, id) })
	return id
}

// tlsConfig is what the docker CLI presents for a client.
func (p *policyEnv) tlsConfig(t *testing.T, client string) *tls.Config {
	t.Helper()
	certDir := p.certs[client]
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(certDir, "ca.pem")))
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}
}

// rawConn is one TLS connection to the gateway on which a test writes
// HTTP/1.1 bytes by hand and reads the answers, so that framing
// (pipelining, Content-Length, chunked) is exactly what the test says.
type rawConn struct {
	t    *testing.T
	conn *tls.Conn
	br   *bufio.Reader
}

// rawDeadline bounds each read: a gateway that hangs fails the test
// instead of the whole run.
const rawDeadline = 30 * time.Second

func (p *policyEnv) dialRaw(t *testing.T, client string) *rawConn {
	t.Helper()
	conn := p.dialTLS(t, p.certs[client])
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

func (c *rawConn) write(data string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(rawDeadline))
	if _, err := io.WriteString(c.conn, data); err != nil {
		c.t.Fatalf("write to the gateway: %v", err)
	}
}

// rawResponse is one answer read off a rawConn.
type rawResponse struct {
	Status  int
	Header  http.Header
	Body    string
	Message string // Docker's {"message": ...}, when the body is one
}

func (r *rawResponse) String() string {
	return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(r.Body))
}

// says reports whether the answer's message (or, when it has none, its
// body) contains s.
func (r *rawResponse) says(s string) bool {
	if r.Message != "" {
		return strings.Contains(r.Message, s)
	}
	return strings.Contains(r.Body, s)
}

// read reads the next response; io.EOF (or another error) when the
// gateway closed the connection instead.
func (c *rawConn) read() (*rawResponse, error) {
	c.conn.SetReadDeadline(time.Now().Add(rawDeadline))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	var m struct{ Message string }
	if json.Unmarshal(body, &m) == nil {
		r.Message = m.Message
	}
	return r, nil
}

// readN reads n responses (fewer when the gateway closes the connection
// first), then any further ones until the gateway closes the connection
// or has said nothing for quiet.
func (c *rawConn) readN(n int, quiet time.Duration) []*rawResponse {
	var out []*rawResponse
	for {
		if len(out) >= n {
			c.conn.SetReadDeadline(time.Now().Add(quiet))
		} else {
			c.conn.SetReadDeadline(time.Now().Add(rawDeadline))
		}
		if _, err := c.br.Peek(1); err != nil {
			return out
		}
		r, err := c.read()
		if err != nil {
			c.t.Logf("reading a response: %v", err)
			return out
		}
		if r.Status == http.StatusContinue {
			continue // an interim answer to "Expect: 100-continue"
		}
		out = append(out, r)
	}
}

// httpRequest writes a request with a Content-Length (unless headers set
// the framing themselves), a Host and the given headers.
func httpRequest(method, target, body string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: dockgate\r\n", method, target)
	framed := false
	for _, h := range headers {
		lower := strings.ToLower(h)
		if strings.HasPrefix(lower, "content-length:") || strings.HasPrefix(lower, "transfer-encoding:") {
			framed = true
		}
		b.WriteString(h + "\r\n")
	}
	if !framed && (body != "" || method == http.MethodPost || method == http.MethodPut) {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// chunked encodes body as HTTP/1.1 chunks of at most size bytes.
func chunked(body string, size int) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(size, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

const jsonType = "Content-Type: application/json"

// newMarker returns a value unique to one attempt, carried by everything
// the attempt asks the daemon to create (a label, a name), so that the
// daemon can be asked whether anything of it exists.
func newMarker() string {
	var b [6]byte
	rand.Read(b[:])
	return "pb" + hex.EncodeToString(b[:])
}

// daemonAPI talks to the test daemon directly over its unix socket, past
// the gateway: what it reports is what the daemon really did.
type daemonAPI struct {
	client *http.Client
	// private: this test binary started the daemon, so nothing else acts
	// on it and any event during an attempt counts against it. A shared
	// daemon (DOCKGATE_TEST_DOCKER_HOST) serves other test packages at
	// the same time, so only events naming the attempt count there.
	private bool
}

func newDaemonAPI(host string) *daemonAPI {
	socket := strings.TrimPrefix(host, "unix://")
	return &daemonAPI{
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", socket)
			},
		}},
		private: os.Getenv(dockertest.EnvDockerHost) == "",
	}
}

func (a *daemonAPI) do(t testing.TB, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("daemon %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("daemon %s %s: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// getJSON decodes the daemon's 200 answer to GET path into v.
func (a *daemonAPI) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	status, body := a.do(t, http.MethodGet, path, nil)
	if status != http.StatusOK {
		t.Fatalf("daemon GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("daemon GET %s: %v", path, err)
	}
}

// daemonContainer is what the daemon says about a container.
type daemonContainer struct {
	ID     string `json:"Id"`
	Name   string
	Config struct {
		Labels map[string]string
	}
	State struct {
		Status  string
		Running bool
		Pid     int
	}
	HostConfig struct {
		Privileged bool
		Binds      []string
		CapAdd     []string
		// Capabilities replaces the default set (API 1.40 to 1.42).
		Capabilities []string
		PidMode      string
		NetworkMode  string
	}
	ExecIDs []string
}

// container inspects a container; ok is false when it does not exist.
func (a *daemonAPI) container(t testing.TB, ref string) (daemonContainer, bool) {
	t.Helper()
	var c daemonContainer
	status, body := a.do(t, http.MethodGet, "/containers/"+url.PathEscape(ref)+"/json", nil)
	if status == http.StatusNotFound {
		return c, false
	}
	if status != http.StatusOK {
		t.Fatalf("daemon inspect %s: %d %s", ref, status, body)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c, true
}

func (a *daemonAPI) mustContainer(t testing.TB, ref string) daemonContainer {
	t.Helper()
	c, ok := a.container(t, ref)
	if !ok {
		t.Fatalf("the daemon has no container %s", ref)
	}
	return c
}

// listSummary is one entry of GET /containers/json.
type listSummary struct {
	ID      string `json:"Id"`
	Names   []string
	Created int64
	Labels  map[string]string
}

func (a *daemonAPI) containersLabelled(t testing.TB, label string) []listSummary {
	t.Helper()
	var list []listSummary
	a.getJSON(t, "/containers/json?all=1&filters="+url.QueryEscape(`{"label":{"`+label+`":true}}`), &list)
	return list
}

func (a *daemonAPI) volumesLabelled(t testing.TB, label string) []string {
	t.Helper()
	var v struct{ Volumes []struct{ Name string } }
	a.getJSON(t, "/volumes?filters="+url.QueryEscape(`{"label":{"`+label+`":true}}`), &v)
	var names []string
	for _, vol := range v.Volumes {
		names = append(names, vol.Name)
	}
	return names
}

// daemonEvent is one line of GET /events.
type daemonEvent struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
}

func (e daemonEvent) String() string {
	return fmt.Sprintf("%s %s %s %v", e.Type, e.Action, e.Actor.ID, e.Actor.Attributes)
}

// events returns what the daemon reported between since and now.
func (a *daemonAPI) events(t testing.TB, since time.Time) []daemonEvent {
	t.Helper()
	q := url.Values{"since": {unixNano(since)}, "until": {unixNano(time.Now())}}
	status, body := a.do(t, http.MethodGet, "/events?"+q.Encode(), nil)
	if status != http.StatusOK {
		t.Fatalf("daemon events: %d %s", status, body)
	}
	var out []daemonEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var e daemonEvent
		if err := dec.Decode(&e); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("daemon events: %v", err)
			}
			return out
		}
		out = append(out, e)
	}
}

func unixNano(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// assertNeverActed checks that the daemon did nothing for an attempt
// made since t0 whose objects carry marker (as a label value or in their
// name): no container or volume of it exists, no event names it, no
// privileged container appeared, and on a private daemon no event at
// all happened.
func (a *daemonAPI) assertNeverActed(t *testing.T, marker string, t0 time.Time) {
	t.Helper()
	if list := a.containersLabelled(t, markerLabel+"="+marker); len(list) > 0 {
		t.Errorf("THE DAEMON ACTED: it has container %s %v from this attempt", list[0].ID, list[0].Names)
	}
	if _, ok := a.container(t, marker); ok {
		t.Errorf("THE DAEMON ACTED: it has a container named %s", marker)
	}
	if vols := a.volumesLabelled(t, markerLabel+"="+marker); len(vols) > 0 {
		t.Errorf("THE DAEMON ACTED: it has volume %v from this attempt", vols)
	}
	if status, _ := a.do(t, http.MethodGet, "/volumes/"+marker, nil); status != http.StatusNotFound {
		t.Errorf("THE DAEMON ACTED: GET /volumes/%s answered %d, want 404", marker, status)
	}
	for _, e := range a.events(t, t0) {
		if a.private || strings.Contains(e.String(), marker) {
			t.Errorf("THE DAEMON ACTED: event %s during the attempt", e)
		}
	}
	a.assertNoPrivilegedSince(t, t0)
}

// assertNoPrivilegedSince checks that no container created since t0 is
// privileged.
func (a *daemonAPI) assertNoPrivilegedSince(t *testing.T, t0 time.Time) {
	t.Helper()
	var list []listSummary
	a.getJSON(t, "/containers/json?all=1", &list)
	for _, s := range list {
		if s.Created < t0.Unix()-1 {
			continue
		}
		if c, ok := a.container(t, s.ID); ok && c.HostConfig.Privileged {
			t.Errorf("THE DAEMON ACTED: privileged container %s %v appeared", s.ID, s.Names)
		}
	}
}

// removeContainer removes a container directly on the daemon.
func (a *daemonAPI) removeContainer(t testing.TB, ref string) {
	t.Helper()
	status, body := a.do(t, http.MethodDelete, "/containers/"+url.PathEscape(ref)+"?force=1&v=1", nil)
	if status != http.StatusNoContent && status != http.StatusNotFound {
		t.Errorf("daemon remove %s: %d %s", ref, status, body)
	}
}

// auditLine is one line of the audit log, the fields the tests read.
type auditLine struct {
	CN        string `json:"cn"`
	Method    string `json:"method"`
	RawPath   string `json:"raw_path"`
	Path      string `json:"path"`
	Operation string `json:"operation"`
	Decision  string `json:"decision"`
	Role      string `json:"role"`
	Rule      string `json:"rule"`
	Reason    string `json:"reason"`
	Status    int    `json:"status"`
}

func (l auditLine) String() string {
	return fmt.Sprintf("%s %s %s %s -> %s %d (%s: %s)", l.CN, l.Method, l.RawPath, l.Operation, l.Decision, l.Status, l.Rule, l.Reason)
}

// auditLines reads the whole audit log.
func (p *policyEnv) auditLines(t *testing.T) []auditLine {
	t.Helper()
	data, err := os.ReadFile(p.auditPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var lines []auditLine
	for i, raw := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(raw) == 0 {
			continue
		}
		var l auditLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("audit line %d does not parse: %v\n%s", i+1, err, raw)
		}
		lines = append(lines, l)
	}
	return lines
}

// auditSince waits until the audit log has at least want lines after the
// first from, and returns the lines after from. The gateway writes a
// record after it answered, through a queue, so the line may trail the
// response a little.
func (p *policyEnv) auditSince(t *testing.T, from, want int) []auditLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := p.auditLines(t)
		if len(lines) >= from+want || time.Now().After(deadline) {
			if len(lines) < from {
				t.Fatalf("the audit log shrank from %d to %d lines", from, len(lines))
			}
			return lines[from:]
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQuietAudit returns the number of audit lines once it has stopped
// growing, so that an attempt's lines are told from earlier ones.
func (p *policyEnv) waitQuietAudit(t *testing.T) int {
	t.Helper()
	n := len(p.auditLines(t))
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		m := len(p.auditLines(t))
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// gatewayHTTP is a Go HTTP client of the gateway for a client, for
// requests whose framing does not matter.
func (p *policyEnv) gatewayHTTP(t *testing.T, client string) *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: p.tlsConfig(t, client)}}
}

// call sends one request through the gateway with Go's client.
func (p *policyEnv) call(t *testing.T, client, method, target, body string) *rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+p.addr+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	c := p.gatewayHTTP(t, client)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, target, client, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
	var m struct{ Message string }
	if json.Unmarshal(data, &m) == nil {
		r.Message = m.Message
	}
	return r
}

// createBody is a container create body labelled with marker; extra is
// more top-level JSON members, starting with a comma.
func createBody(image, marker, extra string) string {
	return `{"Image":` + strconv.Quote(image) + `,"Cmd":["sleep","300"],"Labels":{"` + markerLabel + `":"` + marker + `"}` + extra + `}`
}

// assertSwarmInactive checks that the daemon is in no swarm.
func (p *policyEnv) assertSwarmInactive(t *testing.T) {
	t.Helper()
	var info struct {
		Swarm struct{ LocalNodeState string }
	}
	p.daemon.getJSON(t, "/info", &info)
	if info.Swarm.LocalNodeState != "inactive" {
		t.Errorf("THE DAEMON ACTED: swarm state %q, want inactive", info.Swarm.LocalNodeState)
	}
}

// sharedPrefix returns a one-character ID prefix that at least two of
// client's containers share, creating more of them (labelled as client's,
// directly on the daemon) until two do; ids are client's containers so far.
func (p *policyEnv) sharedPrefix(t *testing.T, client string, ids []string) string {
	t.Helper()
	seen := map[byte]bool{}
	for _, id := range ids {
		seen[id[0]] = true
	}
	// 17 IDs always share a first hex digit; most runs need a few.
	for range 17 {
		body := `{"Image":"` + p.d.Image() + `","Labels":{"` + ownerLabelKey + `":"` + client + `"}}`
		status, answer := p.daemon.do(t, http.MethodPost, "/containers/create", []byte(body))
		var c struct {
			ID string `json:"Id"`
		}
		if status != http.StatusCreated || json.Unmarshal(answer, &c) != nil {
			t.Fatalf("daemon create: %d %s", status, answer)
		}
		t.Cleanup(func() { p.daemon.removeContainer(t, c.ID) })
		if seen[c.ID[0]] {
			return c.ID[:1]
		}
		seen[c.ID[0]] = true
	}
	t.Fatal("no two IDs share a first digit")
	return ""
}
