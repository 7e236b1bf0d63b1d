package audit

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Record is one audit line: who asked what, what dockgate decided and how
// it went. It has no field for a body, a query string or a header, so
// nothing a request carries in them (environment values, build args,
// X-Registry-Auth credentials) can reach the log.
type Record struct {
	Time      time.Time // when the request arrived
	RequestID string    // NewRequestID, also in the gateway's log lines
	CN        string    // client certificate
	Serial    string    // lower-case hex
	Groups    []string
	Remote    string // client address, host:port
	Method    string
	RawPath   string // the escaped path as sent, without the query
	Path      string // the canonical path dockerd routes (no version prefix); "" when refused
	Operation string // dockerapi operation name, "unknown_route", or "" when the path was refused
	Decision  string // allow, deny, would_deny
	Role      string
	Rule      string // the policy entry that decided
	Reason    string // why it was denied (or would be)
	Status    int    // the HTTP status the client got
	BytesIn   int64  // request body bytes read from the client
	BytesOut  int64  // response body bytes written to the client
	Duration  time.Duration
	Target    string // the object the request acts on: container, image, volume...
}

// AppendJSON appends the record as one JSON object and a newline. Keys
// are snake_case and always present, so that a line can be read without
// knowing which request it was; time is RFC 3339 in UTC, duration_ms a
// number of milliseconds.
func AppendJSON(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", r.RequestID)
	b = appendField(b, "cn", r.CN)
	b = appendField(b, "serial", r.Serial)
	b = append(b, `,"groups":[`...)
	for i, g := range r.Groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, g)
	}
	b = append(b, ']')
	b = appendField(b, "remote", r.Remote)
	b = appendField(b, "method", r.Method)
	b = appendField(b, "raw_path", r.RawPath)
	b = appendField(b, "path", r.Path)
	b = appendField(b, "operation", r.Operation)
	b = appendField(b, "decision", r.Decision)
	b = appendField(b, "role", r.Role)
	b = appendField(b, "rule", r.Rule)
	b = appendField(b, "reason", r.Reason)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.Duration)/float64(time.Millisecond), 'f', -1, 64)
	b = appendField(b, "target", r.Target)
	return append(b, "}\n"...)
}

func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json writes it:
// control characters, '"', '\\', '<', '>', '&', U+2028 and U+2029
// escaped, invalid UTF-8 replaced with U+FFFD. Clients choose paths and
// CNs, so nothing they send can end a line or break the JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// NewRequestID returns a 64-bit request ID in hex: a random prefix drawn
// once per process and a counter, so IDs never repeat within a run and
// hardly ever across runs, without a crypto/rand read per request.
func NewRequestID() string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], requestIDBase+requestIDCounter.Add(1))
	return hex.EncodeToString(b[:])
}

var (
	requestIDBase = func() uint64 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		return binary.BigEndian.Uint64(b[:])
	}()
	requestIDCounter atomic.Uint64
)
