package dockerconf

import (
	"reflect"
	"testing"
)

func TestParseMeta(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Context
	}{
		{
			"as docker 28 writes it",
			`{"Name":"my-ctx","Metadata":{"Description":"hello world"},"Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2376","SkipTLSVerify":false}}}`,
			Context{Name: "my-ctx", Description: "hello world", Host: "tcp://127.0.0.1:2376"},
		},
		{
			"lower-case keys, extra fields, other endpoints",
			`{"name":"x","metadata":{"Description":"d","StackOrchestrator":"swarm"},"endpoints":{"kubernetes":{"x":1},"docker":{"Host":"ssh://h","SkipTLSVerify":true}}}`,
			Context{Name: "x", Description: "d", Host: "ssh://h", SkipTLSVerify: true},
		},
		{"null metadata and endpoints", `{"Name":"x","Metadata":null,"Endpoints":null}`, Context{Name: "x"}},
		{"no docker endpoint", `{"Name":"x","Endpoints":{}}`, Context{Name: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMeta([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMeta = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMetaRefuses(t *testing.T) {
	for _, in := range []string{``, `[]`, `{}`, `{"Name":""}`, `{"Name":1}`, `{"Name":"x","Metadata":[]}`, `{"Name":"x","Endpoints":{"docker":"tcp://h"}}`} {
		if got, err := ParseMeta([]byte(in)); err == nil {
			t.Errorf("ParseMeta(%s) = %+v, want an error", in, got)
		}
	}
}

func TestMarshalMetaRoundTrip(t *testing.T) {
	for _, c := range []Context{
		{Name: "prod", Host: "tcp://h:2376"},
		{Name: "prod", Description: `quotes " and <html> & unicode é`, Host: "tcp://[::1]:2376"},
	} {
		data, err := MarshalMeta(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseMeta(data)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("ParseMeta(MarshalMeta(%+v)) = %+v, %v", c, got, err)
		}
	}
}

// FuzzParseMeta checks that any accepted meta.json survives a round trip
// through MarshalMeta unchanged.
func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"Name":"my-ctx","Metadata":{"Description":"hello"},"Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2376","SkipTLSVerify":false}}}`))
	f.Add([]byte(`{"Name":"x","Metadata":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseMeta(data)
		if err != nil {
			return
		}
		if c.Name == "" {
			t.Fatalf("ParseMeta(%q) accepted an empty name", data)
		}
		again, err := MarshalMeta(c)
		if err != nil {
			t.Fatalf("MarshalMeta(%+v): %v", c, err)
		}
		back, err := ParseMeta(again)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip of %+v gave %+v, %v", c, back, err)
		}
	})
}
