package gateway

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"sync"
)

// handshakeErrorPrefix starts net/http's line for a failed TLS handshake:
// "http: TLS handshake error from ADDR: ERR".
const handshakeErrorPrefix = "http: TLS handshake error from "

// maxLoggedRefusals bounds the addresses serverLog remembers; past it the
// set starts over, so that a lost line can only cost one duplicate.
const maxLoggedRefusals = 4096

// serverLog is net/http's error log: each line goes to the gateway's log at
// info, except net/http's line for a handshake the gateway refused and
// already logged itself (with the reason and the client's address), so
// that one refusal is one log line.
type serverLog struct {
	log *slog.Logger

	mu      sync.Mutex
	refused map[string]struct{} // remote addresses whose refusal is logged
}

func newServerLog(l *slog.Logger) *serverLog {
	return &serverLog{log: l, refused: make(map[string]struct{})}
}

// logger is the *log.Logger for http.Server.ErrorLog.
func (s *serverLog) logger() *log.Logger { return log.New(s, "", 0) }

// refusalLogged notes that the refusal of the handshake from remote is in
// the log already.
func (s *serverLog) refusalLogged(remote string) {
	if remote == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refused) >= maxLoggedRefusals {
		clear(s.refused)
	}
	s.refused[remote] = struct{}{}
}

// Write takes one line of net/http's log.
func (s *serverLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	if s.isLoggedRefusal(line) {
		return len(p), nil
	}
	s.log.Info(line)
	return len(p), nil
}

// isLoggedRefusal reports whether line is net/http's report of a
// handshake whose refusal is logged already, and forgets the address.
// An address holds no ": " (an IPv6 one is bracketed), so the first one
// ends it.
func (s *serverLog) isLoggedRefusal(line string) bool {
	rest, ok := strings.CutPrefix(line, handshakeErrorPrefix)
	if !ok {
		return false
	}
	remote, _, ok := strings.Cut(rest, ": ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.refused[remote]; !ok {
		return false
	}
	delete(s.refused, remote)
	return true
}
