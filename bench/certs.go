package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// stateDir is one dockgate state directory: a CA, server certificates and
// the bench client, in the layout of docs/ARCHITECTURE.md.
type stateDir struct {
	dir        string
	bin        string
	keyType    pki.KeyType
	passphrase string
	env        []string // more environment for the dockgate commands, e.g. DOCKGATE_STORE
}

// createStates makes the RSA-4096 state (dockerd's native TLS and the RSA
// gateway), the ECDSA P-256 state (the default gateway) and a second
// ECDSA P-256 state for the policy comparison's gateways.
func (env *environment) createStates(ctx context.Context) error {
	useCLI := hasCommands(ctx, env.bin, "init", "issue")
	env.certsBy = "internal/pki (this dockgate has no init/issue commands yet)"
	if useCLI {
		env.certsBy = "dockgate init / issue"
	}
	kinds := map[string]pki.KeyType{gatewayRSA: pki.KeyTypeRSA4096, gatewayECDSA: pki.KeyTypeECDSAP256, gatewayPolicy: pki.KeyTypeECDSAP256}
	for kind, kt := range kinds {
		s, err := newStateDir(filepath.Join(env.work, "state-"+kind), env.bin, kt)
		if err != nil {
			return err
		}
		env.states[kind] = s
		servers := []string{gatewayServerName}
		if kind == gatewayRSA {
			servers = append(servers, nativeServerName)
		}
		if useCLI {
			err = s.createWithCLI(ctx, servers)
		} else {
			err = s.createWithPKI(servers)
		}
		if err != nil {
			return fmt.Errorf("failed to create the %s certificates: %w", kt, err)
		}
	}
	return nil
}

func newStateDir(dir, bin string, kt pki.KeyType) (*stateDir, error) {
	if err := store.EnsureDir(dir); err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &stateDir{dir: dir, bin: bin, keyType: kt, passphrase: hex.EncodeToString(secret)}, nil
}

// hasCommands reports whether the dockgate binary knows every command.
func hasCommands(ctx context.Context, bin string, names ...string) bool {
	for _, name := range names {
		if exec.CommandContext(ctx, bin, name, "--help").Run() != nil {
			return false
		}
	}
	return true
}

// dockgate runs the binary on this state directory and returns its stdout.
func (s *stateDir) dockgate(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"--state-dir", s.dir}, args...)...)
	cmd.Env = append(append(os.Environ(), "DOCKGATE_CA_PASSPHRASE="+s.passphrase), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dockgate %v: %w\n%s", args, err, stderr.String())
	}
	return stdout.String(), nil
}

// createWithCLI is the classic recipe done with dockgate's own commands.
func (s *stateDir) createWithCLI(ctx context.Context, servers []string) error {
	kt := string(s.keyType)
	if _, err := s.dockgate(ctx, "init", "--cn", "dockgate bench CA", "--key-type", kt); err != nil {
		return err
	}
	for _, name := range servers {
		if _, err := s.dockgate(ctx, "issue", "server", name, "--san", "127.0.0.1", "--key-type", kt); err != nil {
			return err
		}
	}
	_, err := s.dockgate(ctx, "issue", "client", clientName, "--group", clientGroup, "--key-type", kt)
	return err
}

// createWithPKI writes what init and issue would, with internal/pki.
func (s *stateDir) createWithPKI(servers []string) error {
	now := time.Now()
	caKey, err := pki.GenerateKey(s.keyType)
	if err != nil {
		return err
	}
	ca, err := pki.NewCA("dockgate bench CA", caKey, pki.DefaultCAValidity, now)
	if err != nil {
		return err
	}
	caPEM := pki.EncodeCertPEM(ca.Cert)
	if err := s.write(filepath.Join("ca", "ca.pem"), caPEM, 0o644); err != nil {
		return err
	}
	for _, name := range servers {
		req := pki.LeafRequest{Kind: pki.KindServer, Name: name, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Now: now}
		if err := s.issueWithPKI(ca, caPEM, filepath.Join("servers", name), req); err != nil {
			return err
		}
	}
	req := pki.LeafRequest{Kind: pki.KindClient, Name: clientName, Groups: []string{clientGroup}, Now: now}
	return s.issueWithPKI(ca, caPEM, filepath.Join("clients", clientName), req)
}

func (s *stateDir) issueWithPKI(ca *pki.CA, caPEM []byte, rel string, req pki.LeafRequest) error {
	key, err := pki.GenerateKey(s.keyType)
	if err != nil {
		return err
	}
	req.PublicKey = key.Public()
	cert, err := ca.Issue(req)
	if err != nil {
		return err
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{{"ca.pem", caPEM, 0o644}, {"cert.pem", pki.EncodeCertPEM(cert), 0o644}, {"key.pem", keyPEM, 0o600}}
	for _, f := range files {
		if err := s.write(filepath.Join(rel, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

func (s *stateDir) write(rel string, data []byte, perm os.FileMode) error {
	path := filepath.Join(s.dir, rel)
	if err := store.EnsureDir(filepath.Dir(path)); err != nil {
		return err
	}
	return atomicfile.Write(path, data, perm)
}

// clientTLS is the bench client's TLS configuration: its certificate and
// the CA as the only root.
func (s *stateDir) clientTLS() (*tls.Config, error) { return s.clientTLSOf(clientName) }

// clientTLSOf is clientTLS for the client issued as name.
func (s *stateDir) clientTLSOf(name string) (*tls.Config, error) {
	dir := filepath.Join(s.dir, "clients", name)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("failed to load the bench client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(s.dir, "ca", "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("failed to read the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", filepath.Join(s.dir, "ca", "ca.pem"))
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func curveName(cert *x509.Certificate) string {
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); ok {
		return k.Curve.Params().Name
	}
	return "?"
}
