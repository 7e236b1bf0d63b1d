package pki

import (
	"strings"
	"testing"
)

// A certificate named like a local socket peer ("uid:1001") could own that
// user's containers under owner isolation; the CA never issues one.
func TestIssueRefusesLocalPeerNames(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	for _, name := range []string{"uid:0", "uid:1001", "uid:alice"} {
		_, err := ca.Issue(LeafRequest{Kind: KindClient, Name: name, PublicKey: testKey(t, KeyTypeEd25519).Public()})
		if err == nil || !strings.Contains(err.Error(), "local socket users") {
			t.Errorf("Issue(%q) = %v, want a refusal", name, err)
		}
	}
	if _, err := ca.Issue(LeafRequest{Kind: KindClient, Name: "uid-1001", PublicKey: testKey(t, KeyTypeEd25519).Public()}); err != nil {
		t.Errorf("Issue(uid-1001) = %v, want a certificate", err)
	}
}
