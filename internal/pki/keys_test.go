package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestParseKeyType(t *testing.T) {
	tests := []struct {
		in      string
		want    KeyType
		wantErr bool
	}{
		{"", KeyTypeECDSAP256, false},
		{"ecdsa-p256", KeyTypeECDSAP256, false},
		{"ECDSA-P384", KeyTypeECDSAP384, false},
		{"ed25519", KeyTypeEd25519, false},
		{"rsa-2048", KeyTypeRSA2048, false},
		{"rsa-3072", KeyTypeRSA3072, false},
		{"rsa-4096", KeyTypeRSA4096, false},
		{"rsa", "", true},
		{"rsa-1024", "", true},
		{"p256", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeyType(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseKeyType(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096") {
				t.Errorf("error %q does not list the valid key types", err)
			}
		})
	}
}

func TestGenerateKeyTypes(t *testing.T) {
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			got, err := KeyTypeOf(testKey(t, kt))
			if err != nil || got != kt {
				t.Errorf("KeyTypeOf(GenerateKey(%s)) = %q, %v", kt, got, err)
			}
		})
	}
	if _, err := GenerateKey("dsa"); err == nil {
		t.Error("GenerateKey(dsa): want error")
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	pass := []byte("correct horse battery staple")
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			key := testKey(t, kt)
			plain, err := MarshalKeyPEM(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkPEMType(t, plain, "PRIVATE KEY")
			enc, err := MarshalKeyPEM(key, pass)
			if err != nil {
				t.Fatal(err)
			}
			checkPEMType(t, enc, "ENCRYPTED PRIVATE KEY")
			if strings.Contains(string(enc), string(plain[30:60])) {
				t.Error("encrypted PEM contains the plain key material")
			}
			for name, data := range map[string][]byte{"plain": plain, "encrypted": enc} {
				got, err := ParseKeyPEM(data, pass)
				if err != nil {
					t.Fatalf("%s: ParseKeyPEM: %v", name, err)
				}
				if !KeyMatchesCert(got, &x509.Certificate{PublicKey: key.Public()}) {
					t.Errorf("%s: parsed key differs from the original", name)
				}
			}
		})
	}
}

func TestParseKeyPEMPassphraseErrors(t *testing.T) {
	key := testKey(t, KeyTypeECDSAP256)
	enc, err := MarshalKeyPEM(key, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pass []byte
		want error
	}{
		{"wrong", []byte("s3cret-guess"), ErrWrongPassphrase},
		{"nil", nil, ErrPassphraseRequired},
		{"empty", []byte{}, ErrPassphraseRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyPEM(enc, tt.pass)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("ParseKeyPEM = %v, %v; want %v", got, err, tt.want)
			}
			if len(tt.pass) > 0 && strings.Contains(err.Error(), string(tt.pass)) {
				t.Errorf("error %q reveals the passphrase", err)
			}
		})
	}
	enc2, err := MarshalKeyPEM(key, []byte("again"))
	if err != nil {
		t.Fatal(err)
	}
	if string(enc2) == string(enc) {
		t.Error("two encryptions are identical: salt or IV is not random")
	}
}

func TestMarshalKeyPEMRefusesEmptyPassphrase(t *testing.T) {
	if _, err := MarshalKeyPEM(testKey(t, KeyTypeECDSAP256), []byte{}); err == nil {
		t.Fatal("MarshalKeyPEM with an empty passphrase: want error")
	}
}

func TestParseKeyPEMLegacyEncodings(t *testing.T) {
	ecKey := testKey(t, KeyTypeECDSAP256).(*ecdsa.PrivateKey)
	rsaKey := testKey(t, KeyTypeRSA2048).(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	// Legacy PEM encryption ("Proc-Type: 4,ENCRYPTED") is what older openssl
	// recipes ("openssl genrsa -aes256") produced.
	//lint:ignore SA1019 producing the deprecated format is the point of this test
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", pkcs1, []byte("pw"), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	certPEM := EncodeCertPEM(newTestCA(t, KeyTypeECDSAP256).Cert)
	tests := []struct {
		name string
		data []byte
		pass []byte
		want crypto.Signer
	}{
		{"SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), nil, ecKey},
		{"PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}), nil, rsaKey},
		{"legacy encrypted PKCS#1", pem.EncodeToMemory(legacy), []byte("pw"), rsaKey},
		{"key after certificate", append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...), nil, ecKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyPEM(tt.data, tt.pass)
			if err != nil {
				t.Fatal(err)
			}
			if !KeyMatchesCert(got, &x509.Certificate{PublicKey: tt.want.Public()}) {
				t.Error("parsed key differs from the original")
			}
		})
	}
	if _, err := ParseKeyPEM(pem.EncodeToMemory(legacy), []byte("nope")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("legacy encrypted key, wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
}

func TestParseKeyPEMErrors(t *testing.T) {
	certPEM := EncodeCertPEM(newTestCA(t, KeyTypeECDSAP256).Cert)
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"empty", "", "no data"},
		{"blank", " \n\t", "no data"},
		{"not PEM", "hello world", "no PEM data found"},
		{"certificate only", string(certPEM), "no private key found (found CERTIFICATE)"},
		{"corrupt PKCS#8", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "failed to parse private key"},
		{"unknown key block", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "unsupported PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseKeyPEM([]byte(tt.data), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseKeyPEM = %v, %v; want error containing %q", key, err, tt.wantErr)
			}
		})
	}
}

func TestIsEncryptedKeyPEM(t *testing.T) {
	key := testKey(t, KeyTypeEd25519)
	for _, pass := range [][]byte{nil, []byte("x")} {
		data, err := MarshalKeyPEM(key, pass)
		if err != nil {
			t.Fatal(err)
		}
		got, err := IsEncryptedKeyPEM(data)
		if err != nil || got != (pass != nil) {
			t.Errorf("IsEncryptedKeyPEM(passphrase %q) = %v, %v; want %v", pass, got, err, pass != nil)
		}
	}
}

func TestKeyMatchesCert(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	if !KeyMatchesCert(ca.Key, ca.Cert) {
		t.Error("CA key does not match CA cert")
	}
	if KeyMatchesCert(testKey(t, KeyTypeECDSAP384), ca.Cert) {
		t.Error("another key matches the CA cert")
	}
	if KeyMatchesCert(nil, ca.Cert) || KeyMatchesCert(ca.Key, nil) {
		t.Error("nil key or cert matches")
	}
}

func checkPEMType(t *testing.T, data []byte, want string) {
	t.Helper()
	block, rest := pem.Decode(data)
	if block == nil || block.Type != want || len(rest) != 0 {
		t.Fatalf("PEM = %q, want one %q block", data, want)
	}
}
