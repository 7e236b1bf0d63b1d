package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; migrations[i] brings the schema from
// version i to version i+1. Only ever append: a released migration is never
// edited, because databases in the field have already run it.
var migrations = []string{
	// 1: certificates (with their revocation), CRL numbers, onboarding tokens.
	`
CREATE TABLE certs (
	serial      TEXT    PRIMARY KEY NOT NULL,   -- lower-case hex, no separators
	kind        TEXT    NOT NULL CHECK (kind IN ('ca', 'server', 'client')),
	name        TEXT    NOT NULL,
	groups_json TEXT    NOT NULL DEFAULT '[]',
	sans_json   TEXT    NOT NULL DEFAULT '[]',
	not_before  INTEGER NOT NULL,               -- Unix seconds, as in X.509
	not_after   INTEGER NOT NULL,
	fingerprint TEXT    NOT NULL,               -- SHA-256 of the DER, hex
	revoked_at  INTEGER,                        -- Unix seconds; NULL while valid
	reason      TEXT    NOT NULL DEFAULT '',
	pem         BLOB    NOT NULL
) STRICT;
CREATE INDEX certs_by_name ON certs (name, not_before);
CREATE INDEX certs_revoked ON certs (serial, revoked_at) WHERE revoked_at IS NOT NULL;

-- revocation_generation changes with every revocation, so a poller can tell
-- in one row read whether the revoked set changed.
CREATE TABLE counters (
	name  TEXT    PRIMARY KEY NOT NULL,
	value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('crl_number', 0), ('revocation_generation', 0);

CREATE TABLE tokens (
	name        TEXT    PRIMARY KEY NOT NULL,
	secret_hash BLOB    NOT NULL UNIQUE,
	groups_json TEXT    NOT NULL DEFAULT '[]',
	cert_days   INTEGER NOT NULL,
	uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
	expires_at  INTEGER NOT NULL,
	revoked_at  INTEGER,
	created_at  INTEGER NOT NULL
) STRICT;
`,
	// 2: a token's name is no longer its key: once a token is revoked, used
	// up or expired, a new token may take its name (re-enrolling a client
	// under the same name). The rows keep their history.
	`
CREATE TABLE tokens_v2 (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL,
	secret_hash BLOB    NOT NULL UNIQUE,
	groups_json TEXT    NOT NULL DEFAULT '[]',
	cert_days   INTEGER NOT NULL,
	uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
	expires_at  INTEGER NOT NULL,
	revoked_at  INTEGER,
	created_at  INTEGER NOT NULL
) STRICT;
INSERT INTO tokens_v2 (name, secret_hash, groups_json, cert_days, uses_left, expires_at, revoked_at, created_at)
	SELECT name, secret_hash, groups_json, cert_days, uses_left, expires_at, revoked_at, created_at
	FROM tokens ORDER BY created_at, name;
DROP TABLE tokens;
ALTER TABLE tokens_v2 RENAME TO tokens;
CREATE INDEX tokens_by_name ON tokens (name, id);
`,
	// 3: inventory first. A certificate's row is written as 'pending' before
	// it is signed and becomes 'issued' once its files exist; a renewal marks
	// the certificate it replaces superseded (refused from superseded_at on).
	// Rows from before version 3 were all written after their files: 'issued'.
	`
ALTER TABLE certs ADD COLUMN state TEXT NOT NULL DEFAULT 'issued' CHECK (state IN ('pending', 'issued'));
ALTER TABLE certs ADD COLUMN superseded_at INTEGER;            -- Unix seconds; NULL while current
ALTER TABLE certs ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
CREATE INDEX certs_pending ON certs (serial) WHERE state = 'pending';
`,
	// 4 (config versions): the serve config a fleet's gateways load
	// (config --from-store), one row per pushed version, never edited.
	`
CREATE TABLE config_versions (
	version    INTEGER PRIMARY KEY AUTOINCREMENT,
	yaml       TEXT    NOT NULL,
	sha256     TEXT    NOT NULL,               -- of yaml, hex
	author     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,               -- Unix seconds
	comment    TEXT    NOT NULL DEFAULT ''
) STRICT;
`,
	// 5 (audit records): audit.sink postgres writes here; SQLite has the
	// same table so that both backends answer the same queries.
	`
CREATE TABLE audit_records (
	id         INTEGER PRIMARY KEY,
	time_us    INTEGER NOT NULL,               -- Unix microseconds
	host       TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	cn         TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	op         TEXT    NOT NULL,
	decision   TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	record     TEXT    NOT NULL                -- the JSON line, as the file sink writes it
) STRICT;
CREATE INDEX audit_records_by_time ON audit_records (time_us);
`,
	// 6 (hosts): the host registry. Every gateway on the store registers
	// itself at start and moves last_seen at each heartbeat.
	`
CREATE TABLE hosts (
	name                  TEXT    PRIMARY KEY NOT NULL,
	addresses_json        TEXT    NOT NULL DEFAULT '[]', -- Docker API, HOST:PORT
	enroll_addresses_json TEXT    NOT NULL DEFAULT '[]', -- enrollment, HOST:PORT
	labels_json           TEXT    NOT NULL DEFAULT '{}',
	version               TEXT    NOT NULL DEFAULT '',
	ca_fingerprint        TEXT    NOT NULL DEFAULT '',
	first_seen            INTEGER NOT NULL,              -- Unix seconds
	last_seen             INTEGER NOT NULL
) STRICT;
`,
	// 7 (host tokens): a token yields client certificates, or the server
	// certificate of a host joining the fleet.
	`
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'client' CHECK (kind IN ('client', 'server'));
`,
}

// pgMigrations are the PostgreSQL schema's steps, under the same rule. The
// first is SQLite's version 3 in PostgreSQL's types: BIGINT for Unix
// seconds (past 2038), BYTEA for blobs, an identity column for token rows,
// and serials compared byte-wise (COLLATE "C") so CertBySerial's prefix
// range means the same as in SQLite.
var pgMigrations = []string{
	`
CREATE TABLE certs (
	serial        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
	kind          TEXT   NOT NULL CHECK (kind IN ('ca', 'server', 'client')),
	name          TEXT   NOT NULL,
	groups_json   TEXT   NOT NULL DEFAULT '[]',
	sans_json     TEXT   NOT NULL DEFAULT '[]',
	not_before    BIGINT NOT NULL,
	not_after     BIGINT NOT NULL,
	fingerprint   TEXT   NOT NULL,
	revoked_at    BIGINT,
	reason        TEXT   NOT NULL DEFAULT '',
	pem           BYTEA  NOT NULL,
	state         TEXT   NOT NULL DEFAULT 'issued' CHECK (state IN ('pending', 'issued')),
	superseded_at BIGINT,
	superseded_by TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX certs_by_name ON certs (name, not_before);
CREATE INDEX certs_revoked ON certs (serial, revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX certs_pending ON certs (serial) WHERE state = 'pending';

CREATE TABLE counters (
	name  TEXT   PRIMARY KEY NOT NULL,
	value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('crl_number', 0), ('revocation_generation', 0);

CREATE TABLE tokens (
	id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name        TEXT    NOT NULL,
	secret_hash BYTEA   NOT NULL UNIQUE,
	groups_json TEXT    NOT NULL DEFAULT '[]',
	cert_days   INTEGER NOT NULL,
	uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
	expires_at  BIGINT  NOT NULL,
	revoked_at  BIGINT,
	created_at  BIGINT  NOT NULL
);
CREATE INDEX tokens_by_name ON tokens (name, id);
`,
	// 2 (config versions): as SQLite's config_versions.
	`
CREATE TABLE config_versions (
	version    BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	yaml       TEXT   NOT NULL,
	sha256     TEXT   NOT NULL,
	author     TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	comment    TEXT   NOT NULL DEFAULT ''
);
`,
	// 3 (audit records): as SQLite's audit_records.
	`
CREATE TABLE audit_records (
	id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	time_us    BIGINT  NOT NULL,
	host       TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	cn         TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	op         TEXT    NOT NULL,
	decision   TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	reason     TEXT    NOT NULL,
	record     TEXT    NOT NULL
);
CREATE INDEX audit_records_by_time ON audit_records (time_us);
`,
	// 4 (hosts): SQLite's hosts step.
	`
CREATE TABLE hosts (
	name                  TEXT   PRIMARY KEY NOT NULL,
	addresses_json        TEXT   NOT NULL DEFAULT '[]',
	enroll_addresses_json TEXT   NOT NULL DEFAULT '[]',
	labels_json           TEXT   NOT NULL DEFAULT '{}',
	version               TEXT   NOT NULL DEFAULT '',
	ca_fingerprint        TEXT   NOT NULL DEFAULT '',
	first_seen            BIGINT NOT NULL,
	last_seen             BIGINT NOT NULL
);
`,
	// 5 (host tokens): SQLite's host tokens step.
	`
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'client' CHECK (kind IN ('client', 'server'));
`,
}

// SchemaVersion is the schema version this build writes to SQLite.
func SchemaVersion() int { return len(migrations) }

// migrate brings the database to the newest schema. It runs in one write
// transaction, so concurrent first runs serialise and each migration
// applies exactly once. An up-to-date database is recognised with a read
// alone, so opening the store does not take the write lock.
func (s *Store) migrate(ctx context.Context) error {
	migrations := s.d.migrations
	var v int
	err := s.q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v)
	if err == nil && v == len(migrations) {
		return nil
	}
	return s.inTx(ctx, func(tx tx) error {
		if _, err := tx.ExecContext(ctx,
			`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("failed to create the schema version table: %w", err)
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > len(migrations) {
			return fmt.Errorf("the inventory has schema version %d, newer than this dockgate (%d): upgrade dockgate", current, len(migrations))
		}
		for v := current; v < len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("failed to migrate the schema to version %d: %w", v+1, err)
			}
		}
		return setSchemaVersion(ctx, tx, len(migrations))
	})
}

func schemaVersion(ctx context.Context, tx tx) (int, error) {
	var v sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("failed to read the schema version: %w", err)
	}
	return int(v.Int64), nil
}

func setSchemaVersion(ctx context.Context, tx tx, v int) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("failed to record the schema version: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, v); err != nil {
		return fmt.Errorf("failed to record the schema version: %w", err)
	}
	return nil
}
