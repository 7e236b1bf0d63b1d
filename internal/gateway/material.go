package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

// FileSource reads Material from files: the CA certificate, the server
// certificate and key, and a config loader (file plus overrides).
type FileSource struct {
	CACert     string
	ServerCert string
	ServerKey  string
	Config     func() (*config.Config, error)
	Now        func() time.Time
}

// Load reads and checks everything; any problem leaves nothing loaded.
func (s FileSource) Load() (*Material, error) {
	cfg, err := s.Config()
	if err != nil {
		return nil, err
	}
	ca, err := readCACert(s.CACert)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(s.ServerCert, s.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("failed to load server certificate %s: %w", s.ServerCert, err)
	}
	if err := checkServerCert(cert.Leaf, ca, s.now()); err != nil {
		return nil, fmt.Errorf("server certificate %s: %w", s.ServerCert, err)
	}
	return &Material{ServerCert: cert, CA: NewCA(ca), Config: cfg}, nil
}

// Files lists the certificate files to watch for changes.
func (s FileSource) Files() []string { return []string{s.CACert, s.ServerCert, s.ServerKey} }

func (s FileSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func readCACert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read CA certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("failed to read CA certificate %s: no PEM certificate in it", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse CA certificate %s: %w", path, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", path)
	}
	return cert, nil
}

// checkServerCert refuses a server certificate the docker CLI would refuse:
// not from our CA, expired, or without the serverAuth usage.
func checkServerCert(leaf, ca *x509.Certificate, now time.Time) error {
	if leaf == nil {
		return errors.New("no certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}
