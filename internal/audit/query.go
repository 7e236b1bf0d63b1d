package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"time"
)

// Entry is one stored record: its searchable columns, the host whose
// gateway wrote it, and its JSON line as AppendJSON wrote it.
type Entry struct {
	Time      time.Time
	Host      string
	RequestID string
	CN        string
	Role      string
	Operation string
	Decision  string
	Status    int
	Reason    string
	JSON      []byte // without the newline
}

// ParseLine reads an Entry from one JSON line; Host stays empty.
func ParseLine(line []byte) (Entry, error) {
	line = bytes.TrimRight(line, "\n")
	var r struct {
		Time      time.Time `json:"time"`
		RequestID string    `json:"request_id"`
		CN        string    `json:"cn"`
		Role      string    `json:"role"`
		Operation string    `json:"operation"`
		Decision  string    `json:"decision"`
		Status    int       `json:"status"`
		Reason    string    `json:"reason"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return Entry{}, fmt.Errorf("failed to parse an audit record: %w", err)
	}
	return Entry{
		Time: r.Time, RequestID: r.RequestID, CN: r.CN, Role: r.Role, Operation: r.Operation,
		Decision: r.Decision, Status: r.Status, Reason: r.Reason, JSON: slices.Clone(line),
	}, nil
}

// SplitBatch cuts a batch a Sink gets into its lines, without newlines.
func SplitBatch(batch []byte) [][]byte {
	var out [][]byte
	for len(batch) > 0 {
		i := bytes.IndexByte(batch, '\n')
		if i < 0 {
			out = append(out, batch)
			break
		}
		out = append(out, batch[:i])
		batch = batch[i+1:]
	}
	return out
}

// Filter selects records; a zero field selects everything.
type Filter struct {
	CN       string
	Host     string
	Op       string // a glob: * any run of characters, ? one
	Decision string
	Since    time.Time
	Limit    int // the newest Limit records; <= 0 means all
}

// Match reports whether e passes every field of f but Limit.
func (f Filter) Match(e Entry) bool {
	if f.CN != "" && e.CN != f.CN || f.Host != "" && e.Host != f.Host ||
		f.Decision != "" && e.Decision != f.Decision || !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if f.Op != "" {
		ok, err := path.Match(f.Op, e.Operation)
		return ok && err == nil
	}
	return true
}

// QueryFile searches a JSON-lines audit log, newest first. Lines that do
// not parse (a line cut by a crash) are skipped. host is set on every
// entry (the file's records are all this host's).
func QueryFile(file, host string, f Filter) ([]Entry, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("failed to open the audit log: %w", err)
	}
	defer fh.Close()
	var out []Entry
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		e, err := ParseLine(sc.Bytes())
		if err != nil {
			continue
		}
		e.Host = host
		if f.Match(e) {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the audit log: %w", err)
	}
	slices.Reverse(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}
