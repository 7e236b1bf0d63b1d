package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestCheckJSONAccepts(t *testing.T) {
	cases := []string{
		`{}`,
		` {"a":1} `,
		"\t{\n\"a\" : [ 1 , -2.5e+3 , 0 , 0.5 , 1E9 , true , false , null , \"s\" , {} , [] ] }\r\n",
		`{"Image":"busybox","HostConfig":{"Privileged":false,"Binds":["/srv:/srv"]}}`,
		`{"Labels":{"a":"1","b":"2"},"Env":["A=1","A=2"]}`,
		`{"a":{"x":1},"b":{"x":1}}`,                  // the same key in sibling objects
		`{"a":{"a":{"a":1}}}`,                        // the same key at different depths
		`{"esc\"aped":1,"esc\\aped":2,"\u00e9":3}`,   // escapes in keys
		`{"caf\u00e9":1,"café2":2,"\ud83d\ude00":3}`, // non-ASCII keys
		`{"Image":"x","Volumes":{"/data":{}},"Mounts":[{"Type":"bind"},{"Type":"volume"}]}`,
		`{"s":"\"\\\/\b\f\n\r\t\u0041"}`,
	}
	for _, body := range cases {
		t.Run(body, func(t *testing.T) {
			if err := CheckJSON([]byte(body), 0, JSONObject); err != nil {
				t.Errorf("CheckJSON(%s) = %v, want nil", body, err)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("test case %s is not valid JSON", body)
			}
		})
	}
	if err := CheckJSON([]byte(` [{"Name":"network","Value":["host"]}] `), 0, JSONArray); err != nil {
		t.Errorf("CheckJSON(array) = %v", err)
	}
}

func TestCheckJSONRefusesDuplicates(t *testing.T) {
	cases := []struct {
		name, body string
		want       error
		inMessage  string
	}{
		{"exact", `{"a":1,"a":2}`, ErrDuplicateKey, `"a" (written twice)`},
		{"case variant", `{"Privileged":false,"privileged":true}`, ErrDuplicateKey, `"Privileged" (also written "privileged"`},
		{"nested", `{"HostConfig":{"Privileged":false,"PRIVILEGED":true}}`, ErrDuplicateKey, `"HostConfig.Privileged"`},
		{"unicode escape", `{"HostConfig":{"Privileged":false,"Privil\u0065ged":true}}`, ErrDuplicateKey, `"HostConfig.Privileged"`},
		{"all escaped", `{"\u0050\u0072ivileged":true,"privileged":false}`, ErrDuplicateKey, ""},
		{"escaped slash", `{"a\/b":1,"a/b":2}`, ErrDuplicateKey, ""},
		{"in array element", `{"HostConfig":{"Mounts":[{"Type":"volume","type":"bind"}]}}`, ErrDuplicateKey, `"HostConfig.Mounts[].Type"`},
		{"in top-level array", `[{"Name":"a","NAME":"b"}]`, ErrDuplicateKey, ""},
		{"map keys", `{"Labels":{"dockgate.owner":"a","Dockgate.Owner":"b"}}`, ErrDuplicateKey, ""},
		{"driver opts", `{"DriverOpts":{"type":"tmpfs","type":"none"}}`, ErrDuplicateKey, ""},
		{"after nested object", `{"HostConfig":{"a":{"b":1}},"hostconfig":{}}`, ErrDuplicateKey, ""},
		{"invalid utf8 folds to U+FFFD", "{\"\xff\":1,\"\xfe\":2}", ErrDuplicateKey, ""},
		{"lone surrogates fold to U+FFFD", `{"\ud800":1,"\udc00":2}`, ErrDuplicateKey, ""},
		{"surrogate and replacement", `{"\ud800":1,"\ufffd":2}`, ErrDuplicateKey, ""},
		{"non-ASCII case", `{"\u00e9":1,"\u00c9":2}`, ErrDuplicateKey, ""},
		{"dotless i", `{"Prıvileged":true}`, ErrAmbiguousKey, "'ı'"},
		{"dotted capital I", `{"Pr\u0130vileged":true}`, ErrAmbiguousKey, ""},
		{"long s", `{"HostConfig":{"\u017fecurityOpt":["seccomp=unconfined"]}}`, ErrAmbiguousKey, `"HostConfig.ſecurityOpt"`},
		{"kelvin", `{"Mas\u212aedPaths":[]}`, ErrAmbiguousKey, ""},
		{"long s raw", `{"Bindſ":["/:/host"]}`, ErrAmbiguousKey, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body), 0, JSONAny)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrBody) {
				t.Fatalf("CheckJSON(%s) = %v, want %v", tc.body, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.inMessage) {
				t.Errorf("error %q does not contain %q", err, tc.inMessage)
			}
		})
	}
}

// TestCheckJSONLargeObjects exercises the sorting path for objects with
// many keys.
func TestCheckJSONLargeObjects(t *testing.T) {
	build := func(n int, extra string) []byte {
		var b strings.Builder
		b.WriteString(`{"Labels":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"label.%d":"v"`, i)
		}
		b.WriteString(extra + `}}`)
		return []byte(b.String())
	}
	if err := CheckJSON(build(5000, ""), 0, JSONObject); err != nil {
		t.Errorf("5000 distinct keys: %v", err)
	}
	if err := CheckJSON(build(5000, `,"LABEL.17":"w"`), 0, JSONObject); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("5000 keys with a case variant of one: %v, want ErrDuplicateKey", err)
	}
	if err := CheckJSON(build(17, `,"label.0":"w"`), 0, JSONObject); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("18 keys with a duplicate: %v, want ErrDuplicateKey", err)
	}
}

func TestCheckJSONRefusesShapes(t *testing.T) {
	deep := strings.Repeat(`{"a":`, maxJSONDepth+1) + "1" + strings.Repeat("}", maxJSONDepth+1)
	okDeep := strings.Repeat(`[`, maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	cases := []struct {
		name, body string
		want       JSONKind
		max        int
		err        error
	}{
		{"empty", ``, JSONObject, 0, ErrBodyEmpty},
		{"blank", " \n\t", JSONObject, 0, ErrBodyEmpty},
		{"array for object", `[]`, JSONObject, 0, ErrBodyTopLevel},
		{"object for array", `{}`, JSONArray, 0, ErrBodyTopLevel},
		{"null", `null`, JSONObject, 0, ErrBodyTopLevel},
		{"string", `"x"`, JSONObject, 0, ErrBodyTopLevel},
		{"number", `1`, JSONObject, 0, ErrBodyTopLevel},
		{"two values", `{} {}`, JSONObject, 0, ErrBodySyntax},
		{"trailing brace", `{"a":1}}`, JSONObject, 0, ErrBodySyntax},
		{"trailing garbage", `{"a":1}x`, JSONObject, 0, ErrBodySyntax},
		{"too large", `{"a":"0123456789"}`, JSONObject, 10, ErrBodyTooLarge},
		{"too deep", deep, JSONObject, 0, ErrBodyTooDeep},
		{"unterminated", `{"a":1`, JSONObject, 0, ErrBodySyntax},
		{"unterminated string", `{"a`, JSONObject, 0, ErrBodySyntax},
		{"missing colon", `{"a" 1}`, JSONObject, 0, ErrBodySyntax},
		{"trailing comma", `{"a":1,}`, JSONObject, 0, ErrBodySyntax},
		{"array trailing comma", `{"a":[1,]}`, JSONObject, 0, ErrBodySyntax},
		{"bare key", `{a:1}`, JSONObject, 0, ErrBodySyntax},
		{"single quotes", `{'a':1}`, JSONObject, 0, ErrBodySyntax},
		{"bad escape", `{"a":"\x"}`, JSONObject, 0, ErrBodySyntax},
		{"apostrophe escape", `{"a":"\'"}`, JSONObject, 0, ErrBodySyntax},
		{"short unicode", `{"a":"\u12"}`, JSONObject, 0, ErrBodySyntax},
		{"control char", "{\"a\":\"x\ty\"}", JSONObject, 0, ErrBodySyntax},
		{"control char in key", "{\"a\x01\":1}", JSONObject, 0, ErrBodySyntax},
		{"leading zero", `{"a":01}`, JSONObject, 0, ErrBodySyntax},
		{"bare minus", `{"a":-}`, JSONObject, 0, ErrBodySyntax},
		{"dot end", `{"a":1.}`, JSONObject, 0, ErrBodySyntax},
		{"dot start", `{"a":.5}`, JSONObject, 0, ErrBodySyntax},
		{"plus", `{"a":+1}`, JSONObject, 0, ErrBodySyntax},
		{"exp end", `{"a":1e}`, JSONObject, 0, ErrBodySyntax},
		{"bad literal", `{"a":tru}`, JSONObject, 0, ErrBodySyntax},
		{"NaN", `{"a":NaN}`, JSONObject, 0, ErrBodySyntax},
		{"BOM", "\ufeff{}", JSONObject, 0, ErrBodyTopLevel},
		{"comment", `{"a":1 /* c */}`, JSONObject, 0, ErrBodySyntax},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckJSON([]byte(tc.body), tc.max, tc.want)
			if !errors.Is(err, tc.err) {
				t.Errorf("CheckJSON(%q) = %v, want %v", tc.body, err, tc.err)
			}
		})
	}
	if err := CheckJSON([]byte(okDeep), 0, JSONArray); err != nil {
		t.Errorf("nesting at the limit: %v", err)
	}
}

// TestCheckJSONSyntaxMatchesEncodingJSON compares syntax acceptance with
// json.Valid on bodies without duplicate keys.
func TestCheckJSONSyntaxMatchesEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"a":1e5}`, `{"a":1E-5}`, `{"a":-0}`, `{"a":-0.0e0}`, `{"a":00}`, `{"a":1.5.5}`,
		`{"a":"\u00"}`, `{"a":"\uD834\uDD1E"}`, `{"a":"\uDD1E"}`, "{\"a\":\"\xff\"}", `{"a":[]}`,
		`{"a":[,]}`, `{"a":{,}}`, `{"a"::1}`, `{"a":1,,"b":2}`, `{"":1}`, `{"a":"\/"}`, `{"a":"\U0041"}`,
		`{"a":truex}`, `{"a":true false}`, `{"a":nulll}`, "{\"a\":1}\n", "{\"a\":\"\x7f\"}",
	}
	for _, body := range bodies {
		err := CheckJSON([]byte(body), 0, JSONObject)
		if got, want := err == nil, json.Valid([]byte(body)); got != want {
			t.Errorf("CheckJSON(%q) = %v, json.Valid = %v", body, err, want)
		}
	}
}

// TestASCIIFoldingRunes recomputes, from the unicode tables, the runes
// above ASCII that any case mapping or simple fold takes to ASCII.
func TestASCIIFoldingRunes(t *testing.T) {
	var got []rune
	for r := rune(utf8RuneSelf); r <= unicode.MaxRune; r++ {
		for _, m := range []rune{unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r), foldRune(r),
			unicode.ToUpper(unicode.ToLower(r)), unicode.ToLower(unicode.ToUpper(r))} {
			if m < utf8RuneSelf {
				got = append(got, r)
				break
			}
		}
	}
	if !slices.Equal(got, asciiFolding[:]) {
		t.Errorf("runes folding to ASCII = %q, asciiFolding = %q", got, asciiFolding)
	}
}

const utf8RuneSelf = 0x80

// TestUnquoteJSONMatchesEncodingJSON decodes keys as encoding/json does.
func TestUnquoteJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`plain`, `\u0041\u00e9\u4e2d`, `\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83dx`, `\ud83d\u0041`,
		`\ud83d\ud83d\ude00`, `\"\\\/\b\f\n\r\t`, "caf\xc3\xa9", "\xff\xfe", "a\xe2\x82", `\u0000`,
	} {
		var want string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &want); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", s, err)
		}
		if got := string(unquoteJSON(nil, []byte(s))); got != want {
			t.Errorf("unquoteJSON(%q) = %q, encoding/json = %q", s, got, want)
		}
	}
}
