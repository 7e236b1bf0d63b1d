package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

func TestGatewayEverydayCommands(t *testing.T) {
	g := startGatewayEnv(t)
	t.Run("version", func(t *testing.T) {
		out := g.docker("version", "--format", "{{.Server.APIVersion}}")
		if strings.TrimSpace(out) == "" {
			t.Fatal("no server API version through the gateway")
		}
	})
	t.Run("info", func(t *testing.T) {
		if out := g.docker("info", "--format", "{{.OSType}}"); strings.TrimSpace(out) != "linux" {
			t.Fatalf("info OSType = %q", out)
		}
	})
	t.Run("run --rm", func(t *testing.T) {
		if out := g.docker("run", "--rm", "--network", "none", g.d.Image(), "echo", "hello-through-gateway"); strings.TrimSpace(out) != "hello-through-gateway" {
			t.Fatalf("run output = %q", out)
		}
	})
	t.Run("ps", func(t *testing.T) {
		id := g.runDetached("--name", "e2e-ps", g.d.Image(), "sleep", "300")
		if out := g.docker("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"); !strings.Contains(out, id+" e2e-ps") {
			t.Fatalf("ps output %q lacks %s", out, id)
		}
	})
	t.Run("stats --no-stream", func(t *testing.T) {
		id := g.runDetached(g.d.Image(), "sleep", "300")
		if out := g.docker("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}"); !strings.Contains(out, id) {
			t.Fatalf("stats output %q lacks %s", out, id)
		}
	})
	t.Run("metrics count the requests", func(t *testing.T) {
		resp, err := http.Get("http://" + g.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `dockgate_requests_total{operation=`) {
			t.Fatalf("/metrics has no request counts:\n%s", body)
		}
	})
}

func TestGatewayLogsFollowStreamsBeforeExit(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sh", "-c", "i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); sleep 0.1; done")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := g.dockerCmd(ctx, "logs", "-f", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for i := 0; i < 3; i++ {
		if !sc.Scan() {
			t.Fatalf("logs -f ended early: %v", sc.Err())
		}
	}
	// Three lines arrived while the container (10 s of output) still runs.
	if state := strings.TrimSpace(g.docker("inspect", "-f", "{{.State.Running}}", id)); state != "true" {
		t.Fatalf("container running = %s; lines were not streamed live", state)
	}
}

func TestGatewayExecWithPipedStdin(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sleep", "300")
	out, errOut, err := g.dockerAs(g.certDir, []byte("data\n"), "exec", "-i", id, "cat")
	if err != nil {
		t.Fatalf("exec -i: %v: %s", err, errOut)
	}
	if out != "data\n" {
		t.Fatalf("exec -i cat printed %q, want %q", out, "data\n")
	}
}

func TestGatewayExecTTY(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sleep", "300")
	// script(1) gives docker a pseudo-terminal, as an interactive shell would.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", "docker exec -it "+id+" sh -c 'echo tty-ok; tty'", "/dev/null")
	cmd.Env = g.dockerEnv(g.certDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("exec -it under script: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "tty-ok") || !strings.Contains(string(out), "/dev/pts/") {
		t.Fatalf("exec -it output %q lacks the tty", out)
	}
}

func TestGatewayAttach(t *testing.T) {
	g := startGatewayEnv(t)
	// The container waits for one line on stdin, answers and exits, which
	// ends the attach: stdin goes up the hijacked stream, output comes down.
	// Stdin stays open meanwhile: at stdin EOF the docker CLI stops
	// reading output of a container started without StdinOnce.
	id := g.runDetached("-i", g.d.Image(), "sh", "-c", "read line; echo got:$line")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := g.dockerCmd(ctx, "attach", "--sig-proxy=false", id)
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	var out syncBuffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// No wait for the attach: the line stays in the pipe until the CLI
	// copies stdin up the attached stream, which it does once attached.
	io.WriteString(stdin, "attached-input\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("attach: %v", err)
	}
	if strings.TrimSpace(out.String()) != "got:attached-input" {
		t.Fatalf("attach printed %q", out.String())
	}
}

func TestGatewayEventsStream(t *testing.T) {
	g := startGatewayEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// --since: dockerd replays the start even if it happens before the
	// events request reaches it, so nothing waits for that request; the
	// name filter leaves out the replayed starts of other tests.
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	cmd := g.dockerCmd(ctx, "events", "--since", since, "--filter", "type=container", "--filter", "container=e2e-events", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	g.docker("run", "--rm", "--network", "none", "--name", "e2e-events", g.d.Image(), "true")
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no event arrived: %v", err)
	}
	if strings.TrimSpace(line) != "e2e-events" {
		t.Fatalf("event for %q, want e2e-events", line)
	}
}

func TestGatewayCopyLargeFileBothWays(t *testing.T) {
	g := startGatewayEnv(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	data := make([]byte, 60<<20) // issue: >= 50 MB
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	id := strings.TrimSpace(g.docker("create", "--network", "none", g.d.Image(), "true"))
	t.Cleanup(func() { g.dockerAs(g.certDir, nil, "rm", "-f", id) })
	g.docker("cp", src, id+":/big.bin")
	back := filepath.Join(dir, "back.bin")
	g.docker("cp", id+":/big.bin", back)
	got, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(got); sum != want {
		t.Fatalf("round-tripped file sha256 %s, want %s", hex.EncodeToString(sum[:]), hex.EncodeToString(want[:]))
	}
}

func TestGatewaySaveLoadRoundTrip(t *testing.T) {
	g := startGatewayEnv(t)
	const tag = "dockgate-e2e/saveload:1"
	g.docker("tag", g.d.Image(), tag)
	wantID := strings.TrimSpace(g.docker("inspect", "-f", "{{.Id}}", tag))
	archive := filepath.Join(t.TempDir(), "img.tar")
	g.docker("save", "-o", archive, tag)
	g.docker("rmi", tag)
	if _, _, err := g.dockerAs(g.certDir, nil, "inspect", tag); err == nil {
		t.Fatal("image still there after rmi")
	}
	g.docker("load", "-i", archive)
	if got := strings.TrimSpace(g.docker("inspect", "-f", "{{.Id}}", tag)); got != wantID {
		t.Fatalf("loaded image id %s, want %s", got, wantID)
	}
}

func TestGatewayBuild(t *testing.T) {
	g := startGatewayEnv(t)
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("built-through-gateway\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+g.d.Image()+"\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"), 0o644)
	const tag = "dockgate-e2e/build:1"
	g.docker("build", "-t", tag, ctxDir)
	t.Cleanup(func() { g.dockerAs(g.certDir, nil, "rmi", "-f", tag) })
	if out := g.docker("run", "--rm", "--network", "none", tag); out != "built-through-gateway\n" {
		t.Fatalf("built image printed %q", out)
	}
}

func TestGatewayRefusesBadClients(t *testing.T) {
	g := startGatewayEnv(t)
	other := newDockgateCLI(t, g.cli.bin)
	other.run("init", "--insecure-no-passphrase")
	otherDir := filepath.Join(t.TempDir(), "other")
	other.run("issue", "client", "admin", "--group", "admins", "--out", otherDir)
	// The other CA's client cert, but our CA to verify the server.
	copyFile(t, filepath.Join(g.certDir, "ca.pem"), filepath.Join(otherDir, "ca.pem"))

	serverDir := filepath.Join(t.TempDir(), "server-as-client")
	copyFile(t, filepath.Join(g.cli.stateDir, "servers", "gateway", "cert.pem"), filepath.Join(serverDir, "cert.pem"))
	copyFile(t, filepath.Join(g.cli.stateDir, "servers", "gateway", "key.pem"), filepath.Join(serverDir, "key.pem"))
	copyFile(t, filepath.Join(g.certDir, "ca.pem"), filepath.Join(serverDir, "ca.pem"))

	// Our CA's certificate, expired yesterday.
	certPEM, keyPEM := issueClient(t, loadCA(t, g.cli.stateDir, nil), "late", time.Now().Add(-72*time.Hour), 24*time.Hour)
	expiredDir := writeCertDir(t, readFile(t, filepath.Join(g.certDir, "ca.pem")), certPEM, keyPEM)

	for name, dir := range map[string]string{
		"cert from another CA":  otherDir,
		"server cert as client": serverDir,
		"expired cert":          expiredDir,
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, err := g.dockerAs(dir, nil, "version", "--format", "{{.Server.Version}}")
			if err == nil {
				t.Fatal("docker version succeeded")
			}
			// Refused at the handshake: a TLS alert, or a reset when the
			// CLI's first write races the close under TLS 1.3; never an
			// HTTP answer from the gateway.
			if !strings.Contains(errOut, "remote error: tls: ") && !strings.Contains(errOut, "connection reset by peer") &&
				!strings.Contains(errOut, "broken pipe") {
				t.Fatalf("error is not a refusal at the TLS handshake: %s", errOut)
			}
		})
	}
	t.Run("no client cert", func(t *testing.T) {
		err := tlsHandshakeWith(t, g.addr, g.certDir, false, 0)
		if err == nil {
			t.Fatal("handshake without a client certificate succeeded")
		}
	})
	t.Run("TLS 1.1 client", func(t *testing.T) {
		err := tlsHandshakeWith(t, g.addr, g.certDir, true, tls.VersionTLS11)
		if err == nil || !strings.Contains(err.Error(), "version") {
			t.Fatalf("TLS 1.1 handshake: %v, want a protocol version error", err)
		}
	})
	t.Run("valid client still works", func(t *testing.T) {
		if err := tlsHandshakeWith(t, g.addr, g.certDir, true, 0); err != nil {
			t.Fatal(err)
		}
	})
}

// tlsHandshakeWith dials the gateway and sends one /_ping: with TLS 1.3
// a refused client certificate shows on the first read.
func tlsHandshakeWith(t *testing.T, addr, certDir string, withCert bool, maxVersion uint16) error {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(certDir, "ca.pem")))
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: maxVersion}
	if maxVersion != 0 && maxVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS10
	}
	if withCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// revokedSentence is the start of what the docker CLI prints for a request
// of certificate cn that the gateway knows as revoked.
func revokedSentence(cn string) string {
	return `Error response from daemon: dockgate: certificate "` + cn + `" (serial `
}

// checkRevokedAnswer fails the test unless errOut is the docker CLI's
// print of the gateway's answer to revoked certificate cn: the sentence
// with the fix, no TLS error.
func checkRevokedAnswer(t *testing.T, cn, errOut string) {
	t.Helper()
	for _, want := range []string{revokedSentence(cn), ") was revoked at ",
		"; ask your dockgate administrator for a new token (dockgate token create " + cn + "), then run: dockgate login TOKEN"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the docker CLI's error lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "tls:") {
		t.Errorf("the docker CLI shows a TLS error:\n%s", errOut)
	}
}

// A revoked certificate gets through the handshake, and the docker CLI
// prints the gateway's one sentence naming the certificate and the fix;
// the daemon receives nothing.
func TestGatewayAnswersARevokedCertificateWithTheFix(t *testing.T) {
	g := startGatewayEnv(t)
	api := newDaemonAPI(g.d.Host())
	dir := filepath.Join(t.TempDir(), "revoked")
	g.cli.run("issue", "client", "gone", "--group", "admins", "--out", dir)
	g.cli.run("revoke", "gone")
	if !eventually(t, 5*time.Second, func() bool {
		_, errOut, _ := g.dockerAs(dir, nil, "version", "--format", "{{.Server.Version}}")
		return strings.Contains(errOut, revokedSentence("gone"))
	}) {
		t.Fatal("the gateway does not answer the revoked certificate 5 s after the revocation")
	}

	t0 := time.Now()
	marker := newMarker()
	for _, args := range [][]string{
		{"run", "--name", marker, "--label", markerLabel + "=" + marker, "--network", "none", g.d.Image(), "true"},
		{"volume", "create", "--label", markerLabel + "=" + marker, marker},
		{"ps"},
	} {
		_, errOut, err := g.dockerAs(dir, nil, args...)
		if err == nil {
			t.Fatalf("docker %s with a revoked certificate succeeded", strings.Join(args, " "))
		}
		checkRevokedAnswer(t, "gone", errOut)
	}
	api.assertNeverActed(t, marker, t0)
	if got := g.metric(t, `dockgate_refused_certificate_requests_total{reason="revoked"}`); got == "" || got == "0" {
		t.Errorf("refused_certificate_requests_total{reason=revoked} = %q, want at least 1", got)
	}
	if got := g.metric(t, `dockgate_handshake_failures_total{reason="revoked"}`); got != "0" {
		t.Errorf("handshake_failures_total{reason=revoked} = %q, want 0: the handshake completes", got)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "its requests will be refused") || !strings.Contains(logs, "reason=revoked") {
		t.Errorf("no log line says the certificate's requests are refused:\n%s", logs)
	}
	g.docker("ps") // the admin is unaffected
}

func TestGatewayLiveRevocationCutsExec(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sleep", "300")
	opsDir := filepath.Join(t.TempDir(), "ops")
	g.cli.run("issue", "client", "ops", "--group", "admins", "--out", opsDir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "exec", "-i", id, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	cmd.Env = g.dockerEnv(opsDir)
	stdin, _ := cmd.StdinPipe() // held open: the exec stays attached
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("exec produced nothing: %v", err)
	}
	g.cli.run("revoke", "ops")
	revoked := time.Now()
	exited := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, r)
		exited <- cmd.Wait()
	}()
	select {
	case <-exited:
		if d := time.Since(revoked); d > time.Second {
			t.Errorf("exec cut %v after revoke, want within 1s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("attached exec still running 5s after revocation")
	}
	_, errOut, err := g.dockerAs(opsDir, nil, "ps")
	if err == nil {
		t.Fatal("revoked client can still run docker ps")
	}
	checkRevokedAnswer(t, "ops", errOut)
	g.docker("ps") // the admin is unaffected
}

func TestGatewayReloadKeepsLiveStream(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := g.dockerCmd(ctx, "logs", "-f", "--tail", "0", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	r := bufio.NewReader(out)
	r.ReadString('\n')

	before := serverSerial(t, g)
	g.cli.run("renew", "gateway")
	g.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for serverSerial(t, g) == before {
		if time.Now().After(deadline) {
			t.Fatalf("server certificate not reloaded; logs:\n%s", g.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The stream opened before the reload keeps delivering.
	for i := 0; i < 5; i++ {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("logs -f broke across reload: %v", err)
		}
	}
	g.docker("ps")
}

// serverSerial is the serial of the certificate the gateway presents now.
func serverSerial(t *testing.T, g *gatewayEnv) string {
	t.Helper()
	conn := g.dialTLS(t, g.certDir)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// dialTLS opens a raw mTLS connection to the gateway with the client
// certificate in certDir.
func (g *gatewayEnv) dialTLS(t *testing.T, certDir string) *tls.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(certDir, "ca.pem")))
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// The daemon goes down (its pooled connections die with it) and comes
// back on the same socket: the first command after it is back works.
func TestGatewayUpstreamDownThenBack(t *testing.T) {
	d := dockertest.StartForTest(t, dockertest.Options{})
	g := startGatewayEnvOn(t, d)
	g.docker("ps") // the gateway now holds connections to this dockerd
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := g.dockerAs(g.certDir, nil, "ps")
	if err == nil {
		t.Fatal("docker ps succeeded with the daemon away")
	}
	want := "dockgate: docker daemon unreachable at unix://" + g.upstream
	if !strings.Contains(errOut, want) {
		t.Fatalf("docker ps error %q lacks %q", errOut, want)
	}
	if err := d.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.docker("ps")
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, readFile(t, src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayWebsocketAttach(t *testing.T) {
	g := startGatewayEnv(t)
	id := g.runDetached(g.d.Image(), "sh", "-c", "while true; do echo wsout; sleep 0.2; done")
	conn := g.dialTLS(t, g.certDir)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /v1.41/containers/"+id+"/attach/ws?stream=1&stdout=1 HTTP/1.1\r\n"+
		"Host: docker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://docker\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("websocket attach: got %s, want 101", resp.Status)
	}
	// Frames carry the container's output; look for it in the raw bytes.
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 512)
	for !strings.Contains(string(buf), "wsout") {
		n, err := br.Read(chunk)
		if err != nil {
			t.Fatalf("no output over the websocket: %v (got %q)", err, buf)
		}
		buf = append(buf, chunk[:n]...)
	}
}
