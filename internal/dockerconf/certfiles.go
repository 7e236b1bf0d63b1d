package dockerconf

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CertFiles is a directory in Docker's TLS layout: ca.pem, cert.pem and
// key.pem, as DOCKER_CERT_PATH and dockerd's --tls* flags expect.
type CertFiles struct {
	Dir, CA, Cert, Key string
}

// FilesIn returns the Docker TLS layout of dir.
func FilesIn(dir string) CertFiles {
	return CertFiles{
		Dir:  dir,
		CA:   filepath.Join(dir, caFile),
		Cert: filepath.Join(dir, certFile),
		Key:  filepath.Join(dir, keyFile),
	}
}

// ClientFiles returns where the state directory keeps client name's files
// (clients/NAME/, docs/ARCHITECTURE.md).
func ClientFiles(stateDir, name string) (CertFiles, error) {
	if err := validateCertName("client", name); err != nil {
		return CertFiles{}, err
	}
	return FilesIn(filepath.Join(stateDir, "clients", name)), nil
}

// ServerFiles returns where the state directory keeps server name's files
// (servers/NAME/, docs/ARCHITECTURE.md).
func ServerFiles(stateDir, name string) (CertFiles, error) {
	if err := validateCertName("server", name); err != nil {
		return CertFiles{}, err
	}
	return FilesIn(filepath.Join(stateDir, "servers", name)), nil
}

// Missing returns the base names of the files that do not exist, in the
// order ca.pem, cert.pem, key.pem.
func (f CertFiles) Missing() ([]string, error) {
	var missing []string
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		ok, err := fileExists(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, filepath.Base(p))
		}
	}
	return missing, nil
}

// LoadCert parses cert.pem (its first certificate).
func (f CertFiles) LoadCert() (*x509.Certificate, error) {
	data, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("failed to read certificate: %w", err)
	}
	return ParseCertPEM(data)
}

// Load reads the three files for a docker context.
func (f CertFiles) Load() (ca, cert, key []byte, err error) {
	if ca, err = os.ReadFile(f.CA); err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read CA certificate: %w", err)
	}
	if cert, err = os.ReadFile(f.Cert); err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read certificate: %w", err)
	}
	if key, err = os.ReadFile(f.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("failed to read private key: %w", err)
	}
	return ca, cert, key, nil
}

// ParseCertPEM parses the first CERTIFICATE block of data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("failed to parse certificate: no PEM CERTIFICATE block")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("failed to parse certificate: %w", err)
		}
		return cert, nil
	}
}
