package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/dockgate/dockgate/internal/policy"
)

// Redacting an answer: the verdict says where the daemon's answer carries
// "NAME=value" lists (policy.Redaction); the gateway reads the answer
// whole, bounded by maxRedactedAnswer, replaces each value with
// policy.EnvMarker and sends the result with its new Content-Length.
//
// The rewrite edits the answer in place rather than decoding and encoding
// it: every byte outside the rewritten lists (key order, fields no moby
// type knows yet, numbers) reaches the client as dockerd sent it. A list
// the rewrite cannot read as strings fails the request (502) rather than
// pass unredacted.

// maxRedactedAnswer bounds an answer the gateway reads whole to redact.
// A container's inspect answer is a few KiB and a task or a service about
// 2 KiB of JSON, so 32 MiB holds a list of more than ten thousand tasks;
// a larger answer is refused rather than held in memory.
const maxRedactedAnswer = 32 << 20

// edit replaces answer[start:end], which holds old, with value.
type edit struct {
	start, end int
	old, value []byte
}

// redactEnv returns answer with the value of every "NAME=value" entry at
// r's paths replaced with policy.EnvMarker, in one pass over the answer.
// Entries without '=' (a name only) are kept; a missing or null object or
// list on the way is nothing to redact.
func redactEnv(answer []byte, r *policy.Redaction) ([]byte, error) {
	if !r.Env() {
		return answer, nil
	}
	value, base, err := topValue(answer)
	if err != nil {
		return nil, err
	}
	var edits []edit
	if r.List {
		err = redactList(value, base, r.Paths, &edits)
	} else {
		err = redactAt(value, base, r.Paths, &edits)
	}
	if err != nil {
		return nil, err
	}
	return applyEdits(answer, edits)
}

// topValue returns the answer's one JSON value and where it starts.
func topValue(answer []byte) (json.RawMessage, int, error) {
	dec := json.NewDecoder(bytes.NewReader(answer))
	var value json.RawMessage
	if err := dec.Decode(&value); err != nil {
		return nil, 0, fmt.Errorf("failed to read the answer as JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, 0, errors.New("failed to read the answer as JSON: more after its value")
	}
	return value, int(dec.InputOffset()) - len(value), nil
}

// redactList redacts paths in each element of a JSON array, which starts
// at base in the answer; null is an empty list.
func redactList(list []byte, base int, paths [][]string, edits *[]edit) error {
	if string(list) == "null" {
		return nil
	}
	if list[0] != '[' {
		return errors.New("failed to redact the answer: it is not a list")
	}
	dec := json.NewDecoder(bytes.NewReader(list))
	dec.Token() // '['
	for dec.More() {
		var elem json.RawMessage
		if err := dec.Decode(&elem); err != nil {
			return fmt.Errorf("failed to read the answer as JSON: %w", err)
		}
		start := int(dec.InputOffset()) - len(elem)
		if err := redactAt(elem, base+start, paths, edits); err != nil {
			return err
		}
	}
	return nil
}

// redactAt redacts the environment lists at paths inside value, which
// starts at base in the answer; a path that ends here makes value one.
// Keys match as encoding/json matches them into moby's types: without
// regard to case; a key given twice is redacted twice.
func redactAt(value []byte, base int, paths [][]string, edits *[]edit) error {
	if slices.ContainsFunc(paths, func(p []string) bool { return len(p) == 0 }) {
		return redactEnvList(value, base, edits)
	}
	if value[0] != '{' {
		return nil // null, or not the object moby's types expect: nothing the client reads as env
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.Token() // '{'
	var below [][]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("failed to read the answer as JSON: %w", err)
		}
		key, _ := tok.(string)
		var field json.RawMessage
		if err := dec.Decode(&field); err != nil {
			return fmt.Errorf("failed to read the answer as JSON: %w", err)
		}
		below = below[:0]
		for _, p := range paths {
			if strings.EqualFold(key, p[0]) {
				below = append(below, p[1:])
			}
		}
		if len(below) == 0 {
			continue
		}
		start := int(dec.InputOffset()) - len(field)
		if err := redactAt(field, base+start, below, edits); err != nil {
			return err
		}
	}
	return nil
}

// redactEnvList replaces one "NAME=value" list, which starts at base.
func redactEnvList(list []byte, base int, edits *[]edit) error {
	if string(list) == "null" {
		return nil
	}
	var env []string
	if err := json.Unmarshal(list, &env); err != nil {
		return fmt.Errorf("failed to read an environment list: %w", err)
	}
	changed := false
	for i, e := range env {
		if name, _, ok := strings.Cut(e, "="); ok {
			env[i] = name + "=" + policy.EnvMarker
			changed = true
		}
	}
	if !changed {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the marker's angle brackets as they are
	if err := enc.Encode(env); err != nil {
		return fmt.Errorf("failed to write an environment list: %w", err)
	}
	*edits = append(*edits, edit{start: base, end: base + len(list), old: list, value: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))})
	return nil
}

// applyEdits returns answer with the edits made; edits may not overlap.
func applyEdits(answer []byte, edits []edit) ([]byte, error) {
	if len(edits) == 0 {
		return answer, nil
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := make([]byte, 0, len(answer))
	at := 0
	for _, e := range edits {
		// A decoded value is its bytes in the answer, so this holds; it is
		// checked because a misplaced edit would leave a value in clear.
		if e.start < at || e.end > len(answer) || !bytes.Equal(answer[e.start:e.end], e.old) {
			return nil, errors.New("failed to redact the answer: an environment list is not where it was read")
		}
		out = append(out, answer[at:e.start]...)
		out = append(out, e.value...)
		at = e.end
	}
	return append(out, answer[at:]...), nil
}

// relayRedacted reads a successful answer whole and relays it redacted
// as r says. An answer that cannot be redacted (too large, encoded, not
// the JSON the operation answers with) is refused with 502: its values
// must not reach the client.
func (d *daemon) relayRedacted(w http.ResponseWriter, req *http.Request, dc *daemonConn, h *respHead, r *policy.Redaction) {
	ours := dc.stop == nil
	dc.guard(req.Context())
	body, whole, err := readBody(dc.br, h, maxRedactedAnswer)
	reusable := (!ours || dc.unguard()) && whole && err == nil
	d.release(dc, reusable)
	switch {
	case err != nil:
		d.fail(w, req, fmt.Errorf("failed to read the answer: %w", err))
		return
	case int64(len(body)) >= maxRedactedAnswer && !whole:
		writeError(w, http.StatusBadGateway, fmt.Sprintf("dockgate: the docker daemon's answer is larger than %d MiB, "+
			"more than the gateway reads to redact its environment values; narrow the request (filters)", maxRedactedAnswer>>20))
		return
	}
	if ce := h.get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeError(w, http.StatusBadGateway, "dockgate: the docker daemon's answer is encoded ("+ce+"), so its environment values cannot be redacted")
		return
	}
	if body, err = redactEnv(body, r); err != nil {
		writeError(w, http.StatusBadGateway, "dockgate: "+err.Error())
		return
	}
	copyAnswerHeader(w.Header(), h)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(h.status)
	w.Write(body)
}
