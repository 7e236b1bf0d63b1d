package gateway

// The local socket (listen_unix) serves the same handler and policy as the
// mTLS port to processes on the gateway's host. The kernel says who the
// peer is (SO_PEERCRED), the user database gives its name and groups, and
// clients: entries with uid:, user: or unix_group: give it a role. There
// is no certificate, so revocation does not apply: remove the entry (and
// reload) or take the user out of the group instead.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

// unixSocket is the local socket's listener and the connections it
// accepted, which shutdown must reach even when net/http no longer sees
// them (hijacked streams).
type unixSocket struct {
	net.Listener
	g      *Gateway
	sem    *semaphore
	path   string
	file   os.FileInfo // the socket file created, removed on close if still ours
	server *http.Server

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

// peerConn is an accepted local socket connection with its peer.
type peerConn struct {
	*trackedConn
	cc     *clientConn
	remote peerAddr
}

// RemoteAddr names the peer's process, for logs and the audit record's
// remote field; a unix socket peer has no address of its own.
func (c *peerConn) RemoteAddr() net.Addr { return c.remote }

type peerAddr string

func (peerAddr) Network() string  { return "unix" }
func (a peerAddr) String() string { return string(a) }

// openUnixSocket creates the configured local socket, or returns nil when
// listen_unix is off.
func (g *Gateway) openUnixSocket(cfg *config.Config, sem *semaphore) (*unixSocket, error) {
	if cfg.ListenUnix == "" {
		return nil, nil
	}
	ln, info, err := listenUnix(cfg)
	if err != nil {
		return nil, err
	}
	s := &unixSocket{Listener: ln, g: g, sem: sem, path: cfg.ListenUnix, file: info, conns: map[*trackedConn]struct{}{}}
	s.server = g.newServer(cfg)
	s.server.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*peerConn); ok {
			return context.WithValue(ctx, connKey{}, pc.cc)
		}
		return ctx
	}
	return s, nil
}

// listenUnix creates the socket at a temporary name in its directory, sets
// its mode and group there, and renames it into place, so that the path
// never accepts connections with looser permissions.
func listenUnix(cfg *config.Config) (*net.UnixListener, os.FileInfo, error) {
	mode, err := cfg.UnixMode()
	if err != nil {
		return nil, nil, fmt.Errorf("listen_unix_mode: %w", err)
	}
	gid, err := lookupGroupID(cfg.ListenUnixGroup)
	if err != nil {
		return nil, nil, fmt.Errorf("listen_unix_group: %w", err)
	}
	path := cfg.ListenUnix
	if err := removeStaleSocket(path); err != nil {
		return nil, nil, err
	}
	// The directory must be searchable by the users the socket's mode and
	// group let in; the socket's own permissions are the gate.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, fmt.Errorf("failed to create the directory of %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid()))
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the socket moves to path; closeUnix removes it there
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	if err := os.Chown(tmp, -1, gid); err != nil {
		return fail(fmt.Errorf("failed to give %s to group %s: %w", path, cfg.ListenUnixGroup, err))
	}
	if err := os.Chmod(tmp, os.FileMode(mode)); err != nil {
		return fail(fmt.Errorf("failed to set the mode of %s: %w", path, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("failed to move the socket to %s: %w", path, err))
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, info, nil
}

// lookupGroupID resolves listen_unix_group, a name or a gid; -1 (leave
// the group alone, i.e. root's) when it is empty.
func lookupGroupID(group string) (int, error) {
	if group == "" {
		return -1, nil
	}
	if gid, err := strconv.ParseUint(group, 10, 32); err == nil {
		return int(gid), nil
	}
	grp, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", group, err)
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %q has gid %q: %w", group, grp.Gid, err)
	}
	return gid, nil
}

// removeStaleSocket clears path for a new socket: nothing there is fine,
// a socket nobody listens on (left by a crash) is removed, and anything
// else — a live socket, a file, a directory — is refused.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen_unix: %w", err)
	}
	if info.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen_unix: %s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen_unix: %s is in use by another process; stop it or choose another path", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen_unix: failed to remove the stale socket %s: %w", path, err)
	}
	return nil
}

// Accept returns the next connection whose peer the kernel could name.
func (s *unixSocket) Accept() (net.Conn, error) {
	for {
		raw, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !s.sem.tryAcquire() {
			s.g.metrics.rejectedConns.Inc()
			s.g.log.Warn("connection refused: max_connections reached", "listener", "unix")
			raw.Close()
			continue
		}
		peer, err := peerOf(raw)
		if err != nil {
			s.g.log.Error("local socket connection refused: unknown peer", "err", err)
			raw.Close()
			s.sem.release()
			continue
		}
		return s.wrap(raw, peer), nil
	}
}

// peerOf is the identity of the process at the other end of c. A uid
// without a user database entry is still a peer, with no name and only
// its primary gid's group, if that has a name.
func peerOf(c net.Conn) (identity.Peer, error) {
	uid, gid, pid, err := peerCred(c)
	if err != nil {
		return identity.Peer{}, err
	}
	p := identity.Peer{UID: uid, GID: gid, PID: pid}
	gids := []string{strconv.FormatUint(uint64(gid), 10)}
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		p.User = u.Username
		if more, err := u.GroupIds(); err == nil {
			gids = append(gids, more...)
		}
	}
	p.Groups = groupNames(gids)
	return p, nil
}

// groupNames maps gids to group names, once each, skipping gids the group
// database does not name.
func groupNames(gids []string) []string {
	var names []string
	seen := map[string]bool{}
	for _, id := range gids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if g, err := user.LookupGroupId(id); err == nil {
			names = append(names, g.Name)
		}
	}
	return names
}

func (s *unixSocket) wrap(raw net.Conn, peer identity.Peer) *peerConn {
	tc := &trackedConn{Conn: raw}
	cc := &clientConn{raw: tc, remote: fmt.Sprintf("unix:pid=%d", peer.PID), opened: time.Now()}
	id := identity.FromPeer(peer)
	cc.id.Store(id)
	tc.onClose = func() {
		s.mu.Lock()
		delete(s.conns, tc)
		s.mu.Unlock()
		cc.releaseConn()
		s.sem.release()
		s.g.metrics.activeConns.Dec()
		s.g.log.Info("client disconnected", "remote", cc.remote, "cn", id.CN,
			"duration", time.Since(cc.opened).Round(time.Millisecond).String())
	}
	s.mu.Lock()
	s.conns[tc] = struct{}{}
	s.mu.Unlock()
	s.g.metrics.activeConns.Inc()
	s.g.log.Info("client connected", "remote", cc.remote, "cn", id.CN, "uid", peer.UID, "user", peer.User, "groups", peer.Groups)
	s.g.admitConn(cc, id)
	return &peerConn{trackedConn: tc, cc: cc, remote: peerAddr(cc.remote)}
}

// serve serves the socket until it is closed; nil s is a no-op.
func (s *unixSocket) serve(errc chan<- error) {
	if s == nil {
		return
	}
	go func() { errc <- s.server.Serve(s) }()
	s.g.log.Info("local socket ready", "path", s.path, "mode", fmt.Sprintf("%#o", s.file.Mode().Perm()))
}

// shutdown stops accepting and waits for requests like http.Server.Shutdown.
func (s *unixSocket) shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	defer s.removeFile()
	return s.server.Shutdown(ctx)
}

// close cuts every connection, hijacked ones too, and removes the socket.
func (s *unixSocket) close() {
	if s == nil {
		return
	}
	s.server.Close()
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.removeFile()
}

// removeFile removes the socket file if it is still the one we created.
func (s *unixSocket) removeFile() {
	if cur, err := os.Lstat(s.path); err == nil && os.SameFile(cur, s.file) {
		os.Remove(s.path)
	}
}
