package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	// gatewayStartTimeout bounds the wait for a new gateway to answer.
	gatewayStartTimeout = 30 * time.Second
	// gatewayStopGrace is the gateway's drain time plus slack.
	gatewayStopGrace = 15 * time.Second
)

// gatewayProc is a `dockgate serve` child process.
type gatewayProc struct {
	name    string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
	log     *os.File
}

// gatewayConfig is the serve config: loopback only, no admin listener,
// the daemon's private socket upstream, and policy (audit:, roles: and
// clients: sections), or the defaults when it is empty: group admins is
// admin, the audit log is audit.jsonl in the state directory.
// benchClientLimits lift the per-client caps out of the way of the
// matrix, which measures the gateway, not a fair share: its load
// generator is one client at thousands of requests per second, and the
// idle measurement holds a thousand connections.
const benchClientLimits = "  per_client: {connections: 1000000, requests: 1000000, streams: 1000000, rate: 1000000000, burst: 1000000000}\n"

// limits are more lines under limits:, indented by two spaces; empty
// means benchClientLimits.
func gatewayConfig(listen, upstream, policy, limits string) string {
	if limits == "" {
		limits = benchClientLimits
	}
	return fmt.Sprintf(`listen: %q
admin_listen: "off"
server_cert: %s
upstream:
  url: %q
limits:
  shutdown_timeout: 5s
%slog:
  format: json
  level: info
%s`, listen, gatewayServerName, upstream, limits, policy)
}

// startGateway runs `dockgate serve` on the state directory of kind with
// the policy sections given (see gatewayConfig) and waits until a request
// through it succeeds. name labels its config file and log: a gateway
// reloads when its config file changes, so each instance has its own.
func startGateway(ctx context.Context, env *environment, kind, name, policy string) (*gatewayProc, error) {
	return startGatewayWith(ctx, env, kind, name, policy, "")
}

// startGatewayWith is startGateway with more lines under limits: (see
// gatewayConfig).
func startGatewayWith(ctx context.Context, env *environment, kind, name, policy, limits string) (*gatewayProc, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	s := env.states[kind]
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath := filepath.Join(s.dir, "serve-"+name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(gatewayConfig(addr, env.daemon.Host(), policy, limits)), 0o600); err != nil {
		return nil, err
	}
	g := &gatewayProc{name: name, addr: addr, logPath: filepath.Join(env.work, "gateway-"+name+".log"), exited: make(chan struct{})}
	if g.log, err = os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	g.cmd = exec.Command(env.bin, "--state-dir", s.dir, "serve", "--config", cfgPath)
	g.cmd.Env = append(withoutPrefix(os.Environ(), "DOCKGATE_"), env.gatewayEnv...)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		g.log.Close()
		return nil, fmt.Errorf("failed to start the %s gateway: %w", name, err)
	}
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	tlsCfg, err := s.clientTLS()
	if err != nil {
		return g, err
	}
	return g, g.waitReady(ctx, tlsCfg)
}

func withoutPrefix(environ []string, prefix string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// waitReady polls GET /_ping through the gateway.
func (g *gatewayProc) waitReady(ctx context.Context, cfg *tls.Config) error {
	deadline := time.Now().Add(gatewayStartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		if lastErr = pingOnce(g.addr, cfg); lastErr == nil {
			return nil
		}
		select {
		case <-g.exited:
			return fmt.Errorf("the %s gateway exited (%v); its log:\n%s", g.name, g.cmd.ProcessState, g.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the %s gateway did not answer within %s: %v; its log:\n%s", g.name, gatewayStartTimeout, lastErr, g.logTail())
}

// pingOnce sends GET /_ping on a fresh mTLS connection.
func pingOnce(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	return pingOn(conn)
}

func (g *gatewayProc) logTail() string {
	data, _ := os.ReadFile(g.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// stop sends SIGTERM and waits for the drain; SIGKILL after the grace.
func (g *gatewayProc) stop() error {
	defer g.log.Close()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to stop the %s gateway: %w", g.name, err)
	}
	select {
	case <-g.exited:
		return nil
	case <-time.After(gatewayStopGrace):
	}
	_ = g.cmd.Process.Kill()
	<-g.exited
	return fmt.Errorf("the %s gateway did not exit within %s of SIGTERM and was killed", g.name, gatewayStopGrace)
}

// memory returns the gateway's peak and current resident set size.
func (g *gatewayProc) memory() (peak, current int64, err error) {
	if peak, err = procStatusBytes(g.pid(), "VmHWM"); err != nil {
		return 0, 0, err
	}
	current, err = procStatusBytes(g.pid(), "VmRSS")
	return peak, current, err
}
