package dockerapi

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxBody bounds a JSON body when a caller passes no limit: 4 MiB,
// the gateway's default (a container create body is a few KiB; a service
// spec with many secrets tens of KiB).
const DefaultMaxBody = 4 << 20

// maxJSONDepth bounds nesting. The deepest Engine API bodies (service specs)
// nest under a dozen levels; encoding/json allows 10000. A bound keeps the
// checker's recursion small.
const maxJSONDepth = 128

// JSONKind is the JSON value a body must be at its top level.
type JSONKind uint8

const (
	// JSONAny: any JSON value.
	JSONAny JSONKind = iota
	// JSONObject: the body is an object, as for every create and update.
	JSONObject
	// JSONArray: the body is an array (plugin privileges, plugin set).
	JSONArray
)

// Body refusals. Every error from CheckJSON and the Decode functions wraps
// ErrBody and one of the more precise errors below.
var (
	ErrBody          = errors.New("body refused")
	ErrBodyTooLarge  = fmt.Errorf("%w: too large", ErrBody)
	ErrBodyEmpty     = fmt.Errorf("%w: empty", ErrBody)
	ErrBodySyntax    = fmt.Errorf("%w: invalid JSON", ErrBody)
	ErrBodyTopLevel  = fmt.Errorf("%w: wrong top-level JSON value", ErrBody)
	ErrBodyTooDeep   = fmt.Errorf("%w: nested too deeply", ErrBody)
	ErrDuplicateKey  = fmt.Errorf("%w: duplicate key", ErrBody)
	ErrAmbiguousKey  = fmt.Errorf("%w: key with a character some Go versions fold to ASCII", ErrBody)
	ErrBodyNotDocker = fmt.Errorf("%w: not a valid Engine API body", ErrBody)
)

// CheckJSON checks a JSON body before it is decoded with encoding/json, so
// that the value dockgate inspects is the value dockerd acts on:
//
//   - the body is at most max bytes (DefaultMaxBody when max <= 0), exactly
//     one JSON value of the wanted kind, with nothing but white space after
//     it (dockerd tolerates some trailing bytes; nothing needs them);
//   - no object, at any depth, has two keys that encoding/json could read as
//     the same field. encoding/json matches struct fields case-insensitively
//     and keeps the last duplicate, so {"Privileged":false,"privileged":true}
//     creates a privileged container. Keys are compared after decoding
//     escapes ("Privil\u0065ged") and folding case the way encoding/json
//     does. Map-valued objects (Labels) are checked the same way: their
//     case variants are distinct to Go but refused here too;
//   - no key contains 'İ', 'ı', 'ſ' or the Kelvin sign 'K': Go releases
//     disagree on whether they fold to 'i', 's' or 'k' (Go 1.21 to 1.25 fold
//     "Prİvileged" to "Privileged"; later ones do not), so dockerd built with
//     another Go could read such a key as a field dockgate decoded as
//     unknown.
func CheckJSON(body []byte, max int, want JSONKind) error {
	if max <= 0 {
		max = DefaultMaxBody
	}
	if len(body) > max {
		return fmt.Errorf("%w (%d bytes, limit %d)", ErrBodyTooLarge, len(body), max)
	}
	// Sized for a docker CLI create body (about 100 keys, 2 KiB of names),
	// so a typical check allocates these three slices once.
	c := jsonChecker{
		data:  body,
		keys:  make([]keyRef, 0, 128),
		arena: make([]byte, 0, 2048),
		path:  make([]span, 0, 16),
	}
	c.skipSpace()
	if c.pos == len(body) {
		return ErrBodyEmpty
	}
	switch top := body[c.pos]; {
	case want == JSONObject && top != '{':
		return fmt.Errorf("%w: want a JSON object", ErrBodyTopLevel)
	case want == JSONArray && top != '[':
		return fmt.Errorf("%w: want a JSON array", ErrBodyTopLevel)
	}
	if err := c.value(); err != nil {
		return err
	}
	c.skipSpace()
	if c.pos != len(body) {
		return c.syntaxError("content after the JSON value")
	}
	return nil
}

// jsonChecker is a small recursive-descent JSON parser that accepts what
// encoding/json's scanner accepts and records object keys.
type jsonChecker struct {
	data  []byte
	pos   int
	depth int
	// keys holds, for every open object from the outermost in, the folded
	// form of each key seen so far (as spans of arena).
	keys  []keyRef
	arena []byte
	// path is the chain of keys leading to the current value, for messages.
	path    []span
	scratch []byte
	table   []int32 // hash table for checkDuplicates, reused
}

// keyRef is one key: its folded form in arena and its raw form in data.
type keyRef struct {
	fold span
	raw  span
}

type span struct{ start, end int }

// arrayElem marks an array element in path.
var arrayElem = span{-1, -1}

func (c *jsonChecker) skipSpace() {
	for c.pos < len(c.data) {
		switch c.data[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *jsonChecker) value() error {
	c.skipSpace()
	if c.pos == len(c.data) {
		return c.syntaxError("unexpected end of JSON")
	}
	switch ch := c.data[c.pos]; {
	case ch == '{':
		return c.object()
	case ch == '[':
		return c.array()
	case ch == '"':
		_, err := c.str()
		return err
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	}
	return c.syntaxError("unexpected character")
}

func (c *jsonChecker) enter() error {
	c.depth++
	if c.depth > maxJSONDepth {
		return fmt.Errorf("%w (more than %d levels)", ErrBodyTooDeep, maxJSONDepth)
	}
	return nil
}

func (c *jsonChecker) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '{'
	base, arenaBase := len(c.keys), len(c.arena)
	c.skipSpace()
	if c.pos < len(c.data) && c.data[c.pos] == '}' {
		c.pos++
		c.depth--
		return nil
	}
	for {
		c.skipSpace()
		if c.pos == len(c.data) || c.data[c.pos] != '"' {
			return c.syntaxError("want an object key")
		}
		if err := c.key(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos == len(c.data) || c.data[c.pos] != ':' {
			return c.syntaxError("want ':' after an object key")
		}
		c.pos++
		c.path = append(c.path, c.keys[len(c.keys)-1].raw)
		if err := c.value(); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.skipSpace()
		if c.pos == len(c.data) {
			return c.syntaxError("unexpected end of JSON")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
			continue
		case '}':
			c.pos++
		default:
			return c.syntaxError("want ',' or '}' in an object")
		}
		break
	}
	err := c.checkDuplicates(c.keys[base:])
	c.keys, c.arena = c.keys[:base], c.arena[:arenaBase]
	c.depth--
	return err
}

func (c *jsonChecker) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++ // '['
	c.skipSpace()
	if c.pos < len(c.data) && c.data[c.pos] == ']' {
		c.pos++
		c.depth--
		return nil
	}
	c.path = append(c.path, arrayElem)
	for {
		if err := c.value(); err != nil {
			return err
		}
		c.skipSpace()
		if c.pos == len(c.data) {
			return c.syntaxError("unexpected end of JSON")
		}
		switch c.data[c.pos] {
		case ',':
			c.pos++
			continue
		case ']':
			c.pos++
		default:
			return c.syntaxError("want ',' or ']' in an array")
		}
		break
	}
	c.path = c.path[:len(c.path)-1]
	c.depth--
	return nil
}

func (c *jsonChecker) literal(word string) error {
	if !bytes.HasPrefix(c.data[c.pos:], []byte(word)) {
		return c.syntaxError("invalid literal")
	}
	c.pos += len(word)
	return nil
}

// number accepts -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *jsonChecker) number() error {
	if c.data[c.pos] == '-' {
		c.pos++
	}
	switch {
	case c.pos < len(c.data) && c.data[c.pos] == '0':
		c.pos++
	case c.digits() == 0:
		return c.syntaxError("invalid number")
	}
	if c.pos < len(c.data) && c.data[c.pos] == '.' {
		c.pos++
		if c.digits() == 0 {
			return c.syntaxError("invalid number")
		}
	}
	if c.pos < len(c.data) && (c.data[c.pos] == 'e' || c.data[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.data) && (c.data[c.pos] == '+' || c.data[c.pos] == '-') {
			c.pos++
		}
		if c.digits() == 0 {
			return c.syntaxError("invalid number")
		}
	}
	return nil
}

func (c *jsonChecker) digits() int {
	start := c.pos
	for c.pos < len(c.data) && c.data[c.pos] >= '0' && c.data[c.pos] <= '9' {
		c.pos++
	}
	return c.pos - start
}

// str scans a string starting at its opening quote and returns the span of
// its contents (between the quotes). It reports whether the contents need
// decoding: escapes or bytes outside ASCII.
func (c *jsonChecker) str() (plain bool, err error) {
	c.pos++ // '"'
	plain = true
	for c.pos < len(c.data) {
		ch := c.data[c.pos]
		switch {
		case ch == '"':
			c.pos++
			return plain, nil
		case ch == '\\':
			plain = false
			if err := c.escape(); err != nil {
				return false, err
			}
		case ch < 0x20:
			return false, c.syntaxError("control character in a string")
		default:
			if ch >= utf8.RuneSelf {
				plain = false
			}
			c.pos++
		}
	}
	return false, c.syntaxError("unterminated string")
}

func (c *jsonChecker) escape() error {
	c.pos++ // '\\'
	if c.pos == len(c.data) {
		return c.syntaxError("unterminated string")
	}
	switch c.data[c.pos] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		c.pos++
		return nil
	case 'u':
		if c.pos+5 > len(c.data) {
			return c.syntaxError("invalid \\u escape")
		}
		for _, h := range c.data[c.pos+1 : c.pos+5] {
			if !isHex(h) {
				return c.syntaxError("invalid \\u escape")
			}
		}
		c.pos += 5
		return nil
	}
	return c.syntaxError("invalid escape")
}

// key scans an object key, folds it and records it.
func (c *jsonChecker) key() error {
	start := c.pos
	plain, err := c.str()
	if err != nil {
		return err
	}
	raw := span{start + 1, c.pos - 1}
	name := c.data[raw.start:raw.end]
	if !plain {
		c.scratch = unquoteJSON(c.scratch[:0], name)
		name = c.scratch
		if r, ok := foldsToASCII(name); ok {
			return fmt.Errorf("%w: %s has %q", ErrAmbiguousKey, c.keyPath(raw), r)
		}
	}
	foldStart := len(c.arena)
	c.arena = appendFolded(c.arena, name)
	c.keys = append(c.keys, keyRef{fold: span{foldStart, len(c.arena)}, raw: raw})
	return nil
}

// checkDuplicates refuses two keys of one object with the same folded form.
// Small objects compare pairwise; larger ones (a HostConfig has about 70
// keys, a Labels map may have thousands) go through an open-addressing hash
// table, so a hostile body cannot make the check quadratic.
func (c *jsonChecker) checkDuplicates(keys []keyRef) error {
	const pairwiseMax = 8 // below this, pairwise comparison beats hashing
	if len(keys) <= pairwiseMax {
		for i := 1; i < len(keys); i++ {
			for j := 0; j < i; j++ {
				if c.sameFold(keys[i], keys[j]) {
					return c.duplicateError(keys[j], keys[i])
				}
			}
		}
		return nil
	}
	size := 1
	for size < 2*len(keys) {
		size <<= 1
	}
	if cap(c.table) < size {
		c.table = make([]int32, size)
	}
	table := c.table[:size]
	for i := range table {
		table[i] = -1
	}
	mask := uint32(size - 1)
	for i, k := range keys {
		slot := fnv32(c.foldOf(k)) & mask
		for table[slot] >= 0 {
			if other := keys[table[slot]]; c.sameFold(k, other) {
				return c.duplicateError(other, k)
			}
			slot = (slot + 1) & mask
		}
		table[slot] = int32(i)
	}
	return nil
}

// fnv32 is the 32-bit FNV-1a hash.
func fnv32(b []byte) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for _, x := range b {
		h ^= uint32(x)
		h *= prime
	}
	return h
}

func (c *jsonChecker) foldOf(k keyRef) []byte { return c.arena[k.fold.start:k.fold.end] }

func (c *jsonChecker) sameFold(a, b keyRef) bool { return bytes.Equal(c.foldOf(a), c.foldOf(b)) }

func (c *jsonChecker) duplicateError(first, second keyRef) error {
	a, b := c.keyPath(first.raw), quoteKey(c.data[second.raw.start:second.raw.end])
	if bytes.Equal(c.data[first.raw.start:first.raw.end], c.data[second.raw.start:second.raw.end]) {
		return fmt.Errorf("%w %s (written twice)", ErrDuplicateKey, a)
	}
	return fmt.Errorf("%w %s (also written %s; Docker reads key names case-insensitively)", ErrDuplicateKey, a, b)
}

// keyPath renders the path of a key for a message: HostConfig.Mounts[].Type.
func (c *jsonChecker) keyPath(last span) string {
	var b strings.Builder
	for _, s := range append(c.path, last) {
		if s == arrayElem {
			b.WriteString("[]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(displayKey(unquoteJSON(nil, c.data[s.start:s.end])))
	}
	return fmt.Sprintf("%q", b.String())
}

// maxKeyInMessage bounds how much of a client's key an error repeats.
const maxKeyInMessage = 64

func displayKey(k []byte) string {
	if len(k) > maxKeyInMessage {
		return string(k[:maxKeyInMessage]) + "..."
	}
	return string(k)
}

func quoteKey(raw []byte) string {
	return fmt.Sprintf("%q", displayKey(unquoteJSON(nil, raw)))
}

func (c *jsonChecker) syntaxError(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrBodySyntax, what, c.pos)
}

// unquoteJSON decodes the contents of a JSON string exactly as
// encoding/json's unquote does: escapes, surrogate pairs (a lone surrogate
// becomes U+FFFD) and invalid UTF-8 (each bad byte becomes U+FFFD). s is
// known to be syntactically valid.
func unquoteJSON(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == '\\':
			i++
			switch s[i] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i+1 : i+5])
				i += 5
				if utf16.IsSurrogate(r) && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' && validHex4(s[i+2:i+6]) {
					if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				if utf16.IsSurrogate(r) {
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, s[i])
			}
			i++
		case ch < utf8.RuneSelf:
			dst = append(dst, ch)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, h := range b {
		r = r<<4 | rune(unhex(h))
	}
	return r
}

func validHex4(b []byte) bool {
	for _, h := range b {
		if !isHex(h) {
			return false
		}
	}
	return true
}

// foldsToASCII reports whether a decoded key has a non-ASCII rune that some
// Go release's encoding/json folds to an ASCII letter, and which.
func foldsToASCII(name []byte) (rune, bool) {
	for i := 0; i < len(name); {
		if name[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		if isASCIIFolding(r) {
			return r, true
		}
		i += size
	}
	return 0, false
}

// asciiFolding are the runes above ASCII whose lower, upper, title or
// simple-fold forms are ASCII letters (TestASCIIFoldingRunes recomputes the
// list from the unicode tables).
var asciiFolding = [...]rune{'\u0130', '\u0131', '\u017f', '\u212a'}

func isASCIIFolding(r rune) bool {
	for _, f := range asciiFolding {
		if r == f {
			return true
		}
	}
	return false
}

// appendFolded appends the case-folded form of a decoded key, as
// encoding/json's foldName: ASCII letters upper-cased, other runes mapped to
// the smallest rune of their Unicode simple-fold orbit.
func appendFolded(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		ch := name[i]
		if ch < utf8.RuneSelf {
			if 'a' <= ch && ch <= 'z' {
				ch -= 'a' - 'A'
			}
			dst = append(dst, ch)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += size
	}
	return dst
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}
