package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"go.step.sm/crypto/pemutil"
)

// KeyType names a key algorithm and size.
type KeyType string

// The supported key types.
const (
	KeyTypeECDSAP256 KeyType = "ecdsa-p256"
	KeyTypeECDSAP384 KeyType = "ecdsa-p384"
	KeyTypeEd25519   KeyType = "ed25519"
	KeyTypeRSA2048   KeyType = "rsa-2048"
	KeyTypeRSA3072   KeyType = "rsa-3072"
	KeyTypeRSA4096   KeyType = "rsa-4096"
)

// DefaultKeyType is ECDSA P-256: fast to generate and sign with, small, and
// accepted by every TLS stack Docker clients use (unlike Ed25519, which some
// older clients and hardware tokens lack).
const DefaultKeyType = KeyTypeECDSAP256

// KeyTypes lists the supported key types, default first.
func KeyTypes() []KeyType {
	return []KeyType{KeyTypeECDSAP256, KeyTypeECDSAP384, KeyTypeEd25519,
		KeyTypeRSA2048, KeyTypeRSA3072, KeyTypeRSA4096}
}

// ParseKeyType parses a key type name such as "ecdsa-p256". The empty string
// means DefaultKeyType.
func ParseKeyType(s string) (KeyType, error) {
	if s == "" {
		return DefaultKeyType, nil
	}
	for _, kt := range KeyTypes() {
		if strings.EqualFold(s, string(kt)) {
			return kt, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q (valid: %s)", s, keyTypeList())
}

func keyTypeList() string {
	names := make([]string, 0, len(KeyTypes()))
	for _, kt := range KeyTypes() {
		names = append(names, string(kt))
	}
	return strings.Join(names, ", ")
}

// GenerateKey creates a new private key of the given type.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case KeyTypeECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyTypeECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyTypeEd25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		return key, err
	case KeyTypeRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyTypeRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyTypeRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q (valid: %s)", kt, keyTypeList())
}

// KeyTypeOf reports the KeyType of a public or private key.
func KeyTypeOf(key any) (KeyType, error) {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyTypeECDSAP256, nil
		case elliptic.P384():
			return KeyTypeECDSAP384, nil
		}
		return "", fmt.Errorf("unsupported ECDSA curve %s (valid: %s)", k.Curve.Params().Name, keyTypeList())
	case ed25519.PublicKey:
		return KeyTypeEd25519, nil
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return KeyTypeRSA2048, nil
		case 3072:
			return KeyTypeRSA3072, nil
		case 4096:
			return KeyTypeRSA4096, nil
		}
		return "", fmt.Errorf("unsupported RSA key size %d bits (valid: %s)", k.N.BitLen(), keyTypeList())
	}
	return "", fmt.Errorf("unsupported key type %T (valid: %s)", key, keyTypeList())
}

// ErrWrongPassphrase means an encrypted key could not be decrypted with the
// passphrase given.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// ErrPassphraseRequired means a key is encrypted and no passphrase was given.
var ErrPassphraseRequired = errors.New("key is encrypted and needs a passphrase")

// PEM block types for private keys.
const (
	pemTypePKCS8          = "PRIVATE KEY"
	pemTypeEncryptedPKCS8 = "ENCRYPTED PRIVATE KEY"
	pemTypeSEC1           = "EC PRIVATE KEY"
	pemTypePKCS1          = "RSA PRIVATE KEY"
)

// MarshalKeyPEM encodes key as PKCS#8 PEM. A nil passphrase gives a plain
// "PRIVATE KEY" block; otherwise the key is encrypted PKCS#8 ("ENCRYPTED
// PRIVATE KEY"). An empty, non-nil passphrase is refused so that an empty
// passphrase file never silently produces an unprotected key.
func MarshalKeyPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	if passphrase != nil && len(passphrase) == 0 {
		return nil, errors.New("failed to encode private key: passphrase is empty")
	}
	if passphrase == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("failed to encode private key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemTypePKCS8, Bytes: der}), nil
	}
	block, err := pemutil.Serialize(key, pemutil.WithPKCS8(true), pemutil.WithPassword(passphrase))
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// IsEncryptedKeyPEM reports whether the first private key in data is
// encrypted, so callers know whether to ask for a passphrase.
func IsEncryptedKeyPEM(data []byte) (bool, error) {
	block, err := findKeyBlock(data)
	if err != nil {
		return false, err
	}
	return isEncryptedBlock(block), nil
}

// ParseKeyPEM decodes the first private key in data: PKCS#8 (plain or
// encrypted), SEC 1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY" (plain or
// with legacy PEM encryption). It returns ErrPassphraseRequired for an
// encrypted key without a passphrase and ErrWrongPassphrase when decryption
// fails. A passphrase given for a plain key is ignored.
func ParseKeyPEM(data, passphrase []byte) (crypto.Signer, error) {
	block, err := findKeyBlock(data)
	if err != nil {
		return nil, err
	}
	der := block.Bytes
	if isEncryptedBlock(block) {
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		if der, err = decryptKeyBlock(block, passphrase); err != nil {
			return nil, err
		}
	}
	key, err := parseKeyDER(block.Type, der)
	if err != nil {
		if isEncryptedBlock(block) {
			// PBES2-CBC cannot always detect a wrong passphrase: the padding
			// may look valid by chance and only the DER that follows is garbage.
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("failed to parse private key: %w", err)
	}
	return key, nil
}

func findKeyBlock(data []byte) (*pem.Block, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, errors.New("failed to parse private key: no data")
	}
	var seen []string
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return block, nil
		}
		seen = append(seen, block.Type)
	}
	if len(seen) == 0 {
		return nil, errors.New("failed to parse private key: no PEM data found")
	}
	return nil, fmt.Errorf("failed to parse private key: no private key found (found %s)", strings.Join(seen, ", "))
}

func isEncryptedBlock(block *pem.Block) bool {
	return block.Type == pemTypeEncryptedPKCS8 || block.Headers["Proc-Type"] == "4,ENCRYPTED"
}

func decryptKeyBlock(block *pem.Block, passphrase []byte) ([]byte, error) {
	der, err := pemutil.DecryptPEMBlock(block, passphrase)
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, ErrWrongPassphrase
	}
	if err != nil {
		return nil, fmt.Errorf("failed to decrypt private key: %w", err)
	}
	return der, nil
}

func parseKeyDER(blockType string, der []byte) (crypto.Signer, error) {
	var key any
	var err error
	switch blockType {
	case pemTypePKCS8, pemTypeEncryptedPKCS8:
		key, err = x509.ParsePKCS8PrivateKey(der)
	case pemTypeSEC1:
		key, err = x509.ParseECPrivateKey(der)
	case pemTypePKCS1:
		key, err = x509.ParsePKCS1PrivateKey(der)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", blockType)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key %T", key)
	}
	if _, err := KeyTypeOf(signer); err != nil {
		return nil, err
	}
	return signer, nil
}

// KeyMatchesCert reports whether key is the private key for cert.
func KeyMatchesCert(key crypto.Signer, cert *x509.Certificate) bool {
	if key == nil || cert == nil {
		return false
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
