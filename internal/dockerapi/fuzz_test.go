package dockerapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// FuzzClassify: Classify never panics; a classified request reads the same
// when classified again in its canonical form, and agrees with the
// regular-expression model of dockerd's router; a refused one returns the
// zero Route.
func FuzzClassify(f *testing.F) {
	for _, tc := range routeCases {
		f.Add(tc.method, tc.path)
		f.Add(tc.method, "/v1.41"+tc.path)
	}
	for _, p := range []string{"//containers/json", "/v1.41/../containers/json", "/v1.41/containers/a%2Fb/json",
		"/v1.23/containers/json", "/v1/containers/json", "/v%31.41/containers/json", "/containers/a%00/json"} {
		f.Add("GET", p)
	}
	oracle := newMuxOracle()
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := Classify(method, path)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Classify(%q, %q) error %v is not a *PathError", method, path, err)
			}
			if r != (Route{}) {
				t.Fatalf("refused request returned %+v", r)
			}
			return
		}
		canonical := r.Path
		if r.Version != "" {
			canonical = "/v" + r.Version + r.Path
		}
		// The gateway forwards the decoded path; net/http escapes it again.
		canonical = (&url.URL{Path: canonical}).EscapedPath()
		again, err := Classify(method, canonical)
		if err != nil || again != r {
			t.Fatalf("Classify(%q, %q) = %+v, but its canonical form %q gives %+v, %v", method, path, r, canonical, again, err)
		}
		checkAgainstOracle(t, oracle, method, path)
	})
}

// FuzzCheckJSON compares CheckJSON with encoding/json: whatever it accepts
// is valid JSON, and valid JSON without keys encoding/json could confuse is
// accepted.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"A":2}`, `{"a":{"b":[1,{"c":"\u0063"}]}}`, `{"Privil\u0065ged":true}`,
		`[{"Name":"x"}]`, `{"\ud800":1}`, `{"ſ":1}`, `1`, `"s"`, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := CheckJSON(body, 1<<20, JSONAny)
		valid := json.Valid(body)
		if err == nil && !valid {
			t.Fatalf("CheckJSON accepted invalid JSON %q", body)
		}
		if err != nil && valid && !errors.Is(err, ErrBodyTooDeep) {
			if ambiguous, reason := confusableKeys(body); !ambiguous {
				t.Fatalf("CheckJSON(%q) = %v, but encoding/json finds no confusable keys", body, err)
			} else if errors.Is(err, ErrBodySyntax) {
				t.Fatalf("CheckJSON(%q) = %v, a syntax error for valid JSON (%s)", body, err, reason)
			}
		}
		if err == nil {
			if ambiguous, reason := confusableKeys(body); ambiguous {
				t.Fatalf("CheckJSON accepted %q: %s", body, reason)
			}
		}
	})
}

// confusableKeys is an independent reading, with json.Decoder.Token and
// bytes.EqualFold, of whether a valid JSON document has two keys in one
// object that fold alike, or a key with a rune Go releases fold
// differently.
func confusableKeys(body []byte) (bool, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object    bool
		keys      []string
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, ""
		}
		if err != nil {
			return false, ""
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key := tok.(string)
			for _, r := range key {
				if r == '\u0130' || r == '\u0131' || r == '\u017f' || r == '\u212a' {
					return true, "key with a folding rune"
				}
			}
			for _, k := range top.keys {
				if bytes.EqualFold([]byte(k), []byte(key)) {
					return true, "keys " + k + " and " + key
				}
			}
			top.keys = append(top.keys, key)
			top.expectKey = false
			continue
		}
		if top != nil && top.object {
			top.expectKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// legacyCreate is how engines before 27.0 decoded a create body
// (runconfig.ContainerConfigWrapper), written out independently of
// createWire.
type legacyCreate struct {
	*container.Config
	InnerHostConfig  *container.HostConfig     `json:"HostConfig,omitempty"`
	Cpuset           string                    `json:",omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
	*container.HostConfig
}

// effective is the host config such an engine applied (getHostConfig).
func (w *legacyCreate) effective() *container.HostConfig {
	if w.InnerHostConfig != nil {
		return w.InnerHostConfig
	}
	return w.HostConfig
}

// FuzzDecodeContainerCreate: decoding never panics, and when a body passes,
// a privileged container is never missed: not by current engines
// (container.CreateRequest), not by older ones (top-level HostConfig
// fields), not by a generic reading of the JSON. The encoded body decodes
// to the inspected value.
func FuzzDecodeContainerCreate(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox"}`,
		`{"Image":"busybox","HostConfig":{"Privileged":true}}`,
		`{"Image":"busybox","Privileged":true}`,
		`{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}`,
		`{"Image":"busybox","HostConfig":{"Privil\u0065ged":true}}`,
		`{"Image":"busybox","hostconfig":{"PRIVILEGED":true},"Privileged":false}`,
		`{"Image":"x","HostConfig":{"Binds":["/:/host"],"Mounts":[{"Type":"bind","Source":"/"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := DecodeContainerCreate(body, 1<<20)
		if err != nil {
			return
		}
		ours := false
		for _, hc := range c.HostConfigs() {
			ours = ours || hc.Privileged
		}

		var current container.CreateRequest
		if err := json.Unmarshal(body, &current); err != nil {
			t.Fatalf("accepted body that encoding/json refuses: %v", err)
		}
		if current.HostConfig != nil && current.HostConfig.Privileged != c.HostConfig.Privileged {
			t.Fatalf("HostConfig.Privileged: dockerd reads %v, we read %v", current.HostConfig.Privileged, c.HostConfig.Privileged)
		}

		var legacy legacyCreate
		if err := json.Unmarshal(body, &legacy); err != nil {
			t.Fatalf("accepted body the legacy decoder refuses: %v", err)
		}
		if hc := legacy.effective(); hc != nil && hc.Privileged && !ours {
			t.Fatalf("an engine before 27.0 creates a privileged container from %q; we saw none", body)
		}

		if genericPrivileged(body) && !ours {
			t.Fatalf("a generic reading finds Privileged=true in %q; we saw none", body)
		}

		out, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeContainerCreate(out, 0)
		if err != nil {
			t.Fatalf("encoded body %s does not decode: %v", out, err)
		}
		// Encoding is a fixed point: the forwarded body reads back to a
		// value that encodes to the same bytes. (Fields tagged omitempty
		// turn an empty list into an absent one, which dockerd reads alike,
		// so the values themselves may differ in that way only.)
		out2, err := again.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("encode/decode changed the body:\n in %s\nout %s\nout2 %s", body, out, out2)
		}
		if again.HostConfig.Privileged != c.HostConfig.Privileged {
			t.Fatal("the forwarded body changes Privileged")
		}
	})
}

// genericPrivileged reads body as plain JSON and looks, case-insensitively,
// for Privileged=true in the HostConfig object or at the top level.
func genericPrivileged(body []byte) bool {
	var top map[string]any
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	find := func(m map[string]any, name string) any {
		for k, v := range m {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return nil
	}
	if v, ok := find(top, "Privileged").(bool); ok && v {
		return true
	}
	if hc, ok := find(top, "HostConfig").(map[string]any); ok {
		if v, ok := find(hc, "Privileged").(bool); ok && v {
			return true
		}
	}
	return false
}

// TestFuzzHelpers checks the fuzz oracles themselves on known inputs.
func TestFuzzHelpers(t *testing.T) {
	if ok, _ := confusableKeys([]byte(`{"a":{"x":1,"X":2}}`)); !ok {
		t.Error("confusableKeys missed a nested case variant")
	}
	if ok, _ := confusableKeys([]byte(`{"a":{"x":1},"b":{"x":2}}`)); ok {
		t.Error("confusableKeys flagged keys in sibling objects")
	}
	if !genericPrivileged([]byte(`{"hostconfig":{"PRIVILEGED":true}}`)) {
		t.Error("genericPrivileged missed a case variant")
	}
	if ok, _ := confusableKeys([]byte(`{"Kind":1,"\u212aind2":2}`)); !ok {
		t.Error("confusableKeys missed the Kelvin sign")
	}
	if ok, _ := confusableKeys([]byte(`{"Kind":1}`)); ok {
		t.Error("confusableKeys flagged a plain K")
	}
}
