package dockerconf

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestSetCurrentContext(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		context string
		want    string
	}{
		{"absent file", "", "prod", "{\n\t\"currentContext\": \"prod\"\n}"},
		{"null", "null", "prod", "{\n\t\"currentContext\": \"prod\"\n}"},
		{"empty object", "{}", "prod", "{\n\t\"currentContext\": \"prod\"\n}"},
		{
			"keeps order and values",
			`{"auths":{"r.example":{"auth":"dTpw"}},"currentContext":"old","credHelpers":{"gcr.io":"gcloud"},"x-unknown":[1,2.50,true]}`,
			"prod",
			"{\n\t\"auths\": {\n\t\t\"r.example\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}\n\t},\n\t\"currentContext\": \"prod\",\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"x-unknown\": [\n\t\t1,\n\t\t2.50,\n\t\ttrue\n\t]\n}",
		},
		{"appends when absent", `{"auths":{}}`, "prod", "{\n\t\"auths\": {},\n\t\"currentContext\": \"prod\"\n}"},
		{"drops duplicates", `{"currentContext":"a","b":1,"currentContext":"c"}`, "prod", "{\n\t\"currentContext\": \"prod\",\n\t\"b\": 1\n}"},
		{"default removes", `{"auths":{},"currentContext":"prod"}`, "default", "{\n\t\"auths\": {}\n}"},
		{"default on empty", ``, "default", "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SetCurrentContext([]byte(tt.in), tt.context)
			if err != nil {
				t.Fatalf("SetCurrentContext error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("SetCurrentContext(%s, %q) =\n%s\nwant\n%s", tt.in, tt.context, got, tt.want)
			}
		})
	}
}

func TestSetCurrentContextRefusesInvalidJSON(t *testing.T) {
	for _, in := range []string{`[]`, `"x"`, `{"a":}`, `{"a":1`, `{"a":1} {}`, `{1:2}`, `{"a" 1}`} {
		t.Run(in, func(t *testing.T) {
			if got, err := SetCurrentContext([]byte(in), "prod"); err == nil {
				t.Errorf("SetCurrentContext(%s) = %s, want an error", in, got)
			} else if !strings.Contains(err.Error(), "config.json") {
				t.Errorf("error %q does not name config.json", err)
			}
		})
	}
}

func TestSetCurrentContextRefusesInvalidName(t *testing.T) {
	for _, name := range []string{"a", "a b", "\xff\xfe", `a"b`, "../x"} {
		if got, err := SetCurrentContext([]byte(`{}`), name); err == nil {
			t.Errorf("SetCurrentContext(%q) = %s, want an error", name, got)
		}
	}
}

func TestCurrentContextOf(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, ""},
		{`{}`, ""},
		{`{"currentContext":"prod"}`, "prod"},
		{`{"currentContext":null}`, ""},
		{`{"currentContext":"a","currentContext":"b"}`, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CurrentContextOf([]byte(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("CurrentContextOf(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := CurrentContextOf([]byte(`{"currentContext":3}`)); err == nil {
		t.Error("CurrentContextOf with a number: want an error")
	}
}

// FuzzSetCurrentContext checks that setting the context never changes any
// other key and always yields JSON whose currentContext is the one set.
func FuzzSetCurrentContext(f *testing.F) {
	f.Add([]byte(`{"auths":{"a":{"auth":"eDp5"}},"currentContext":"old","plugins":{"p":{"k":"v"}}}`), "prod")
	f.Add([]byte(``), "default")
	f.Add([]byte(`{"a":1e400,"b":"\u00e9"}`), "x.y")
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		out, err := SetCurrentContext(in, name)
		if err != nil {
			return
		}
		var before, after map[string]any
		if len(strings.TrimSpace(string(in))) > 0 {
			if err := decodeNumbers(in, &before); err != nil {
				t.Fatalf("accepted %q that encoding/json refuses: %v", in, err)
			}
		}
		if err := decodeNumbers(out, &after); err != nil {
			t.Fatalf("output %q is not a JSON object: %v", out, err)
		}
		got, err := CurrentContextOf(out)
		want := name
		if name == DefaultContextName {
			want = ""
		}
		if err != nil || got != want {
			t.Fatalf("currentContext after setting %q = %q, %v", name, got, err)
		}
		delete(before, currentContextKey)
		delete(after, currentContextKey)
		if len(before) == 0 && len(after) == 0 {
			return
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("other keys changed:\nbefore %v\nafter  %v", before, after)
		}
	})
}

// decodeNumbers decodes keeping numbers as written, since config.json values
// are carried through untouched even when they overflow a float64.
func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
