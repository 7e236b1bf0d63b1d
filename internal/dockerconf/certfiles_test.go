package dockerconf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestClientAndServerFiles(t *testing.T) {
	state := t.TempDir()
	p := newTestPKI(t)
	alice := p.client("alice")
	p.writeTo(t, filepath.Join(state, "clients", "alice"), alice)

	files, err := ClientFiles(state, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "clients", "alice", "key.pem"); files.Key != want {
		t.Errorf("Key = %s, want %s", files.Key, want)
	}
	if missing, err := files.Missing(); err != nil || len(missing) != 0 {
		t.Errorf("Missing() = %v, %v; want none", missing, err)
	}
	ca, cert, key, err := files.Load()
	if err != nil || !bytes.Equal(ca, p.caPEM) || !bytes.Equal(cert, alice.certPEM) || !bytes.Equal(key, alice.keyPEM) {
		t.Errorf("Load() did not return the files written (err %v)", err)
	}
	parsed, err := files.LoadCert()
	if err != nil || !parsed.Equal(alice.cert) {
		t.Errorf("LoadCert() = %v, %v; want alice's certificate", parsed, err)
	}

	if err := os.Remove(files.Key); err != nil {
		t.Fatal(err)
	}
	if missing, _ := files.Missing(); !reflect.DeepEqual(missing, []string{"key.pem"}) {
		t.Errorf("Missing() after removing key.pem = %v", missing)
	}

	server, err := ServerFiles(state, "web")
	if err != nil || server.Dir != filepath.Join(state, "servers", "web") {
		t.Errorf("ServerFiles = %+v, %v", server, err)
	}
	if missing, _ := server.Missing(); len(missing) != 3 {
		t.Errorf("Missing() for an absent server = %v, want all three", missing)
	}
}

func TestCertNamesCannotEscape(t *testing.T) {
	for _, name := range []string{"", "../servers/web", "a/b", ".hidden", "-flag", string(make([]byte, 65))} {
		if _, err := ClientFiles("/state", name); err == nil {
			t.Errorf("ClientFiles(%q) succeeded, want an error", name)
		}
		if _, err := ServerFiles("/state", name); err == nil {
			t.Errorf("ServerFiles(%q) succeeded, want an error", name)
		}
	}
}
