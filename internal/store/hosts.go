package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// HeartbeatInterval is how often a gateway moves its host's last_seen. A
// host is healthy while its last heartbeat is less than StaleAfter old.
const (
	HeartbeatInterval = 10 * time.Second
	StaleAfter        = 3 * HeartbeatInterval
)

// Host is one gateway of the fleet, as it registered itself.
type Host struct {
	Name string `json:"name"`
	// Addresses are where clients dial its Docker API (HOST:PORT, from
	// the server certificate's names and the listen port);
	// EnrollAddresses its enrollment listener, empty when it has none.
	Addresses       []string          `json:"addresses"`
	EnrollAddresses []string          `json:"enroll_addresses"`
	Labels          map[string]string `json:"labels"`
	Version         string            `json:"version"`
	CAFingerprint   string            `json:"ca_fingerprint"`
	FirstSeen       time.Time         `json:"first_seen"`
	LastSeen        time.Time         `json:"last_seen"`
}

// Healthy reports whether the host's last heartbeat is recent at now:
// fewer than three heartbeat intervals ago.
func (h Host) Healthy(now time.Time) bool { return now.Sub(h.LastSeen) < StaleAfter }

// RegisterHost records h as seen at now: a new host is added, a known
// name takes h's addresses, labels, version and CA fingerprint and keeps
// its first_seen.
func (s *Store) RegisterHost(ctx context.Context, h Host, now time.Time) error {
	addrs, _ := json.Marshal(nonNil(h.Addresses))
	enrollAddrs, _ := json.Marshal(nonNil(h.EnrollAddresses))
	labels := h.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	labelsJSON, _ := json.Marshal(labels) // a map of strings always marshals
	_, err := s.q.ExecContext(ctx, `INSERT INTO hosts
		(name, addresses_json, enroll_addresses_json, labels_json, version, ca_fingerprint, first_seen, last_seen)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			addresses_json = excluded.addresses_json,
			enroll_addresses_json = excluded.enroll_addresses_json,
			labels_json = excluded.labels_json,
			version = excluded.version,
			ca_fingerprint = excluded.ca_fingerprint,
			last_seen = excluded.last_seen`,
		h.Name, string(addrs), string(enrollAddrs), string(labelsJSON), h.Version, h.CAFingerprint, now.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("failed to register host %q: %w", h.Name, s.connErr(err))
	}
	return nil
}

// Heartbeat moves the last_seen of the host name to now. A host that is
// not registered (its row deleted meanwhile) is ErrNotFound: register it
// again.
func (s *Store) Heartbeat(ctx context.Context, name string, now time.Time) error {
	res, err := s.q.ExecContext(ctx, `UPDATE hosts SET last_seen = ? WHERE name = ?`, now.Unix(), name)
	if err != nil {
		return fmt.Errorf("failed to record the heartbeat of host %q: %w", name, s.connErr(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("failed to record the heartbeat of host %q: %w", name, ErrNotFound)
	}
	return nil
}

// Hosts lists the registered hosts by name.
func (s *Store) Hosts(ctx context.Context) ([]Host, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, addresses_json, enroll_addresses_json, labels_json,
		version, ca_fingerprint, first_seen, last_seen FROM hosts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("failed to read the hosts: %w", s.connErr(err))
	}
	defer rows.Close()
	var hosts []Host
	for rows.Next() {
		var h Host
		var addrs, enrollAddrs, labels string
		var first, last int64
		if err := rows.Scan(&h.Name, &addrs, &enrollAddrs, &labels, &h.Version, &h.CAFingerprint, &first, &last); err != nil {
			return nil, fmt.Errorf("failed to read the hosts: %w", err)
		}
		if err := json.Unmarshal([]byte(addrs), &h.Addresses); err != nil {
			return nil, fmt.Errorf("failed to read the addresses of host %q: %w", h.Name, err)
		}
		if err := json.Unmarshal([]byte(enrollAddrs), &h.EnrollAddresses); err != nil {
			return nil, fmt.Errorf("failed to read the enrollment addresses of host %q: %w", h.Name, err)
		}
		if err := json.Unmarshal([]byte(labels), &h.Labels); err != nil {
			return nil, fmt.Errorf("failed to read the labels of host %q: %w", h.Name, err)
		}
		h.FirstSeen, h.LastSeen = unixTime(first), unixTime(last)
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the hosts: %w", s.connErr(err))
	}
	return hosts, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
