package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dockgate/dockgate/internal/audit"
)

// auditInsertRows bounds one INSERT: 500 rows of 10 values stay far below
// both backends' limit on parameters.
const auditInsertRows = 500

// auditWriteTimeout bounds one batch's write, so that a database that
// hangs is retried like one that refuses.
const auditWriteTimeout = 5 * time.Second

// AuditSink is an audit.Sink that writes into the audit_records table,
// each record tagged with host.
type AuditSink struct {
	s    *Store
	host string
}

// AuditSink returns a sink that writes this store's audit_records as host.
func (s *Store) AuditSink(host string) *AuditSink { return &AuditSink{s: s, host: host} }

// Write stores one batch in one transaction of multi-row INSERTs. A store
// that does not answer fails with audit.ErrRetry, so the batch is kept
// and written again; a line that does not parse fails the batch for good.
func (a *AuditSink) Write(batch []byte, n int) error {
	lines := audit.SplitBatch(batch)
	entries := make([]audit.Entry, 0, len(lines))
	for _, l := range lines {
		e, err := audit.ParseLine(l)
		if err != nil {
			return err
		}
		e.Host = a.host
		entries = append(entries, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditWriteTimeout)
	defer cancel()
	err := a.s.InsertAudit(ctx, entries)
	if err != nil && a.retryable(err) {
		return fmt.Errorf("%w: %w", audit.ErrRetry, err)
	}
	return err
}

// retryable: anything but PostgreSQL's answer to the statement (a broken
// or closed connection, a timeout) may pass on another try.
func (a *AuditSink) retryable(err error) bool {
	if errors.Is(err, ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	return a.s.pg != nil && !errors.As(err, &pgErr)
}

// Close does nothing: the store is closed by its owner.
func (a *AuditSink) Close() error { return nil }

// InsertAudit stores entries (with their Host) in one transaction. It does
// not take the inventory's write lock: audit rows never conflict.
func (s *Store) InsertAudit(ctx context.Context, entries []audit.Entry) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.connErr(err)
	}
	t := conn{q: sqlTx, d: s.d}
	for len(entries) > 0 {
		chunk := entries[:min(len(entries), auditInsertRows)]
		entries = entries[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_records (time_us, host, request_id, cn, role, op, decision, status, reason, record) VALUES `)
		args := make([]any, 0, 10*len(chunk))
		for i, e := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
			args = append(args, e.Time.UnixMicro(), e.Host, e.RequestID, e.CN, e.Role, e.Operation,
				e.Decision, e.Status, e.Reason, string(e.JSON))
		}
		if _, err := t.ExecContext(ctx, q.String(), args...); err != nil {
			sqlTx.Rollback()
			return s.connErr(fmt.Errorf("failed to store audit records: %w", err))
		}
	}
	return s.connErr(sqlTx.Commit())
}

// QueryAudit returns the records f selects, newest first.
func (s *Store) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Entry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.CN != "" {
		add(`cn = ?`, f.CN)
	}
	if f.Host != "" {
		add(`host = ?`, f.Host)
	}
	if f.Decision != "" {
		add(`decision = ?`, f.Decision)
	}
	if f.Op != "" {
		add(`op LIKE ? ESCAPE '\'`, globToLike(f.Op))
	}
	if !f.Since.IsZero() {
		add(`time_us >= ?`, f.Since.UnixMicro())
	}
	q := `SELECT time_us, host, request_id, cn, role, op, decision, status, reason, record FROM audit_records`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY time_us DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.connErr(fmt.Errorf("failed to query audit records: %w", err))
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var us int64
		var rec string
		if err := rows.Scan(&us, &e.Host, &e.RequestID, &e.CN, &e.Role, &e.Operation, &e.Decision, &e.Status, &e.Reason, &rec); err != nil {
			return nil, fmt.Errorf("failed to read audit records: %w", err)
		}
		e.Time, e.JSON = time.UnixMicro(us).UTC(), []byte(rec)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.connErr(fmt.Errorf("failed to read audit records: %w", err))
	}
	return out, nil
}

// globToLike turns a glob (* and ?) into a LIKE pattern escaped with \.
// SQLite's LIKE ignores ASCII case; operation names are lower-case.
func globToLike(glob string) string {
	var b strings.Builder
	for _, r := range glob {
		switch r {
		case '\\', '%', '_':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '*':
			b.WriteByte('%')
		case '?':
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
