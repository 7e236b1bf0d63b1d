package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// The daemon's answers are read without net/http: the status line and the
// header go into a respHead that is reused from answer to answer, and the
// body is relayed straight from the connection's read buffer. What the
// parser accepts is a subset of what http.ReadResponse accepts (the fuzz
// target checks it), narrowed on purpose where an answer would be
// ambiguous to a proxy: those refusals are strict headErrors.

// maxHeadBytes bounds a daemon answer's status line and header. dockerd's
// heads are a few hundred bytes (the largest, X-Docker-Container-Path-Stat
// on an archive HEAD, is a small base64 JSON); 64 KiB is generous.
const maxHeadBytes = 64 << 10

// max1xxAnswers bounds the informational answers skipped before the real
// one, as http.Transport does (it allows 5).
const max1xxAnswers = 5

// framing is how the body of an answer ends.
type framing uint8

const (
	bodyNone    framing = iota // HEAD, 1xx, 204, 304, or Content-Length: 0
	bodyLength                 // Content-Length bytes
	bodyChunked                // Transfer-Encoding: chunked
	bodyToClose                // neither: the body ends when the daemon closes
)

// headerField is one header line as received, the key canonical.
type headerField struct{ key, value string }

// respHead is one parsed answer head.
type respHead struct {
	status int
	reason string // after the code, for stream heads relayed verbatim
	fields []headerField
	// contentLength is the Content-Length the daemon announced, -1 for
	// none; for a HEAD it describes the body a GET would have had.
	contentLength int64
	framing       framing
	// close: the daemon closes the connection after this answer
	// (Connection: close, HTTP/1.0 without keep-alive, or a body
	// delimited by the close).
	close bool
	raw   []byte // the head's bytes as read, reused
}

var respHeads = sync.Pool{New: func() any { return &respHead{fields: make([]headerField, 0, 16)} }}

func getHead() *respHead { return respHeads.Get().(*respHead) }

func putHead(h *respHead) {
	if cap(h.raw) > 4<<10 {
		h.raw = nil // a rare huge head is not kept
	}
	clear(h.fields) // drop the strings
	h.fields = h.fields[:0]
	respHeads.Put(h)
}

// headError is a daemon answer the gateway cannot relay. strict marks the
// answers net/http would take and the gateway refuses on purpose.
type headError struct {
	msg    string
	strict bool
}

func (e *headError) Error() string { return "malformed answer from the docker daemon: " + e.msg }

func malformed(msg string) error { return &headError{msg: msg} }

var (
	errHeadTooLarge   = &headError{msg: "header larger than 64 KiB", strict: true}
	errObsFold        = &headError{msg: "obsolete header line folding", strict: true}
	errBothLengths    = &headError{msg: "both Content-Length and Transfer-Encoding", strict: true}
	errVersion        = &headError{msg: "not HTTP/1.1 or HTTP/1.0", strict: true}
	errStatusCode     = &headError{msg: "status code not 100 to 999", strict: true}
	errReason         = &headError{msg: "control character in the status line", strict: true}
	errKeySpace       = &headError{msg: "space in a header name", strict: true}
	errChunkedHTTP10  = &headError{msg: "Transfer-Encoding in an HTTP/1.0 answer", strict: true}
	errTooMany1xx     = &headError{msg: "too many informational answers", strict: true}
	errUnexpected101  = &headError{msg: "101 Switching Protocols to a request that asked for no upgrade", strict: true}
	errHeadIncomplete = malformed("connection closed inside the header")
)

// readHead reads one answer head from br into h. The bytes are read with
// ReadSlice, so br must not be used by anyone else meanwhile. On error,
// len(h.raw) says how many bytes of the answer had arrived.
func readHead(br *bufio.Reader, h *respHead, method string) error {
	h.raw = h.raw[:0]
	lineStart := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if len(h.raw)+len(chunk) > maxHeadBytes {
			return errHeadTooLarge
		}
		h.raw = append(h.raw, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(h.raw) > 0 {
				return errHeadIncomplete
			}
			return err
		}
		line := h.raw[lineStart:]
		if lineStart > 0 && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			break // the empty line that ends the head
		}
		lineStart = len(h.raw)
	}
	return parseHead(h, string(h.raw), method)
}

// parseHead parses a complete head, its final empty line included, as the
// answer to a request with method. s must stay alive with h: the fields
// are substrings of it.
func parseHead(h *respHead, s, method string) error {
	h.fields = h.fields[:0]
	h.status, h.reason, h.contentLength, h.framing, h.close = 0, "", -1, bodyNone, false
	line, rest, ok := nextLine(s)
	if !ok {
		return errHeadIncomplete
	}
	http10, err := h.parseStatusLine(line)
	if err != nil {
		return err
	}
	var f frameHeaders
	for {
		if line, rest, ok = nextLine(rest); !ok {
			return errHeadIncomplete
		}
		if line == "" {
			break
		}
		if err := h.parseField(line, &f); err != nil {
			return err
		}
	}
	if rest != "" {
		return malformed("bytes after the header")
	}
	return h.frame(&f, method, http10)
}

// nextLine cuts the first line off s, without its "\n" or "\r\n"; ok is
// false when s holds no complete line.
func nextLine(s string) (line, rest string, ok bool) {
	line, rest, ok = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest, ok
}

// parseStatusLine reads "HTTP/1.1 200 OK" the way http.ReadResponse does,
// then applies the strict checks.
func (h *respHead) parseStatusLine(line string) (http10 bool, err error) {
	proto, status, ok := strings.Cut(line, " ")
	if !ok {
		return false, malformed("no status line")
	}
	status = strings.TrimLeft(status, " ")
	code, reason, _ := strings.Cut(status, " ")
	n, err := strconv.Atoi(code)
	if len(code) != 3 || err != nil || n < 0 {
		return false, malformed("bad status code")
	}
	if _, _, ok := http.ParseHTTPVersion(proto); !ok {
		return false, malformed("bad HTTP version")
	}
	switch {
	case proto != "HTTP/1.1" && proto != "HTTP/1.0":
		return false, errVersion
	case code[0] < '1' || code[0] > '9' || !isDigit(code[1]) || !isDigit(code[2]):
		return false, errStatusCode
	case !validFieldValue(reason):
		return false, errReason
	}
	h.status, h.reason = n, reason
	return proto == "HTTP/1.0", nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// frameHeaders are what the fields say about how the body ends.
type frameHeaders struct {
	contentLength    string // the first value
	lengths          int    // Content-Length fields
	lengthsDiffer    bool
	transferEncoding string // the first value
	encodings        int    // Transfer-Encoding fields
	close, keepAlive bool   // Connection tokens
	badTrailer       bool   // a Trailer names a framing field
}

func (f *frameHeaders) add(key, v string) {
	switch key {
	case "Content-Length":
		if f.lengths == 0 {
			f.contentLength = v
		} else if v != f.contentLength {
			f.lengthsDiffer = true
		}
		f.lengths++
	case "Transfer-Encoding":
		if f.encodings == 0 {
			f.transferEncoding = v
		}
		f.encodings++
	case "Connection":
		f.close = f.close || hasToken(v, "close")
		f.keepAlive = f.keepAlive || hasToken(v, "keep-alive")
	case "Trailer":
		f.badTrailer = f.badTrailer || namesFramingField(v)
	}
}

// parseField reads one "Key: value" line as net/textproto does (the value
// trimmed of spaces and tabs), refusing what it would take with a
// warning: a continuation line, a space in the name.
func (h *respHead) parseField(line string, f *frameHeaders) error {
	if line[0] == ' ' || line[0] == '\t' {
		return errObsFold
	}
	k, v, ok := strings.Cut(line, ":")
	if !ok || k == "" {
		return malformed("header line without a name")
	}
	for i := 0; i < len(k); i++ {
		if k[i] == ' ' {
			return errKeySpace
		}
		if !validFieldNameByte(k[i]) {
			return malformed("bad header name")
		}
	}
	v = strings.TrimRight(v, " \t")
	if !validFieldValue(v) {
		return malformed("bad header value")
	}
	v = strings.TrimLeft(v, " \t")
	key := http.CanonicalHeaderKey(k) // no copy when k is canonical, as dockerd sends it
	f.add(key, v)
	h.fields = append(h.fields, headerField{key: key, value: v})
	return nil
}

// frame decides how the body ends (RFC 9112 section 6.3), refusing an
// answer that announces its length twice.
func (h *respHead) frame(f *frameHeaders, method string, http10 bool) error {
	chunked := false
	if f.encodings > 0 {
		switch {
		case http10:
			return errChunkedHTTP10
		case f.encodings != 1 || !strings.EqualFold(f.transferEncoding, "chunked"):
			return malformed("unsupported Transfer-Encoding")
		case f.lengths > 0:
			return errBothLengths
		case f.badTrailer:
			return malformed("bad Trailer key")
		}
		chunked = true
	}
	if f.lengths > 0 {
		if f.lengthsDiffer {
			return malformed("differing Content-Length values")
		}
		n, err := strconv.ParseUint(f.contentLength, 10, 63)
		if err != nil {
			return malformed("bad Content-Length")
		}
		h.contentLength = int64(n)
	}
	h.close = f.close || http10 && !f.keepAlive
	switch {
	case method == http.MethodHead || h.status < 200 || h.status == http.StatusNoContent || h.status == http.StatusNotModified:
		h.framing = bodyNone
	case chunked:
		h.framing = bodyChunked
	case h.contentLength == 0:
		h.framing = bodyNone
	case h.contentLength > 0:
		h.framing = bodyLength
	default:
		h.framing, h.close = bodyToClose, true
	}
	return nil
}

// namesFramingField reports whether a Trailer value names a field that
// would redefine the framing; net/http refuses those.
func namesFramingField(v string) bool {
	for v != "" {
		var k string
		k, v, _ = strings.Cut(v, ",")
		switch http.CanonicalHeaderKey(strings.Trim(k, " \t")) {
		case "Content-Length", "Transfer-Encoding", "Trailer":
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated header value holds token.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

// isStream reports whether the daemon switched the connection to a raw
// stream: 101 for upgrades, or 200 with Docker's raw-stream content types
// for the legacy hijack.
func (h *respHead) isStream() bool {
	if h.status == http.StatusSwitchingProtocols {
		return true
	}
	if h.status != http.StatusOK {
		return false
	}
	ct := h.get("Content-Type")
	return strings.HasPrefix(ct, "application/vnd.docker.raw-stream") ||
		strings.HasPrefix(ct, "application/vnd.docker.multiplexed-stream")
}

// get returns the first value of a canonical key.
func (h *respHead) get(key string) string {
	for _, f := range h.fields {
		if f.key == key {
			return f.value
		}
	}
	return ""
}

// validFieldNameByte: RFC 9110 token characters.
func validFieldNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validFieldValue: visible characters, spaces, tabs and obs-text (RFC 9110
// section 5.5), as net/textproto checks them.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
