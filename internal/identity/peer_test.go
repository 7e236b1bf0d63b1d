package identity

import "testing"

func TestFromPeer(t *testing.T) {
	tests := []struct {
		peer     Peer
		wantCN   string
		wantName string
	}{
		{Peer{UID: 1001, GID: 1001, PID: 42, User: "alice", Groups: []string{"alice", "developers"}}, "uid:1001", "uid 1001 (alice)"},
		{Peer{UID: 0, User: "root"}, "uid:0", "uid 0 (root)"},
		{Peer{UID: 70000}, "uid:70000", "uid 70000"}, // no user database entry
	}
	for _, tt := range tests {
		t.Run(tt.wantCN, func(t *testing.T) {
			id := FromPeer(tt.peer)
			if id.CN != tt.wantCN || id.Serial != "" || id.Groups != nil {
				t.Errorf("FromPeer(%+v) = cn %q serial %q groups %v; want cn %q, no certificate fields", tt.peer, id.CN, id.Serial, id.Groups, tt.wantCN)
			}
			if id.Peer == nil || id.Peer.UID != tt.peer.UID || id.Peer.User != tt.peer.User {
				t.Errorf("Peer = %+v, want %+v", id.Peer, tt.peer)
			}
			if got := id.Peer.String(); got != tt.wantName {
				t.Errorf("String() = %q, want %q", got, tt.wantName)
			}
			if !IsPeerCN(id.CN) {
				t.Errorf("IsPeerCN(%q) = false", id.CN)
			}
		})
	}
	if IsPeerCN("alice") || IsPeerCN("unix-uid:1") {
		t.Error("IsPeerCN accepts a certificate-style name")
	}
}

func TestWhoamiOfAPeer(t *testing.T) {
	id := FromPeer(Peer{UID: 1001, User: "alice", Groups: []string{"alice", "developers"}})
	w := id.Whoami("operator")
	if w.CN != "uid:1001" || w.UID == nil || *w.UID != 1001 || w.User != "alice" || len(w.UnixGroups) != 2 || w.Role != "operator" {
		t.Errorf("Whoami = %+v", w)
	}
	if w := (&Identity{CN: "ci-7"}).Whoami(""); w.UID != nil || w.User != "" || w.UnixGroups != nil {
		t.Errorf("a certificate's Whoami has peer fields: %+v", w)
	}
}
