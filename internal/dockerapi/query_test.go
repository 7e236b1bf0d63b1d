package dockerapi

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
)

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery("t=a%3A1&t=b&networkmode=host&remote=https%3A%2F%2Fexample.com%2Fctx.tar&q=a+b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q["t"], []string{"a:1", "b"}; !slices.Equal(got, want) {
		t.Errorf("t = %q, want %q", got, want)
	}
	if got, want := q.Get("remote"), "https://example.com/ctx.tar"; got != want {
		t.Errorf("remote = %q, want %q", got, want)
	}
	if got, want := q.Get("q"), "a b"; got != want {
		t.Errorf("q = %q, want %q (+ is a space in queries)", got, want)
	}

	for _, raw := range []string{
		"networkmode=bridge;x=1&networkmode=host", // net/url drops the first pair, keeps the second
		"a=1;b=2",
		"networkmode=%zz&networkmode=host",
		"a=%",
	} {
		if _, err := ParseQuery(raw); !errors.Is(err, ErrQuery) {
			t.Errorf("ParseQuery(%q) error = %v, want ErrQuery", raw, err)
		}
	}
	if q, err := ParseQuery(""); err != nil || len(q) != 0 {
		t.Errorf("ParseQuery(\"\") = %v, %v", q, err)
	}
}

func TestQueryBool(t *testing.T) {
	cases := map[string]bool{
		"": false, "0": false, "no": false, "false": false, "none": false, " FALSE ": false, "None": false,
		"1": true, "true": true, "yes": true, "off": true, "anything": true,
	}
	for v, want := range cases {
		q := url.Values{"pull": {v}}
		if got := QueryBool(q, "pull"); got != want {
			t.Errorf("QueryBool(pull=%q) = %v, want %v", v, got, want)
		}
	}
	if QueryBool(url.Values{}, "pull") {
		t.Error("QueryBool of an absent key is true")
	}
	if got := QueryBool(url.Values{"pull": {"0", "1"}}, "pull"); got {
		t.Error("QueryBool does not read the first value, as dockerd")
	}
}

func TestRefine(t *testing.T) {
	pull := Route{Op: OpImagePull, Path: "/images/create"}
	cases := []struct {
		query string
		want  Operation
	}{
		{"fromImage=busybox&tag=latest", OpImagePull},
		{"fromImage=busybox&fromSrc=http%3A%2F%2F169.254.169.254%2F", OpImagePull},
		{"fromSrc=http%3A%2F%2F169.254.169.254%2F&repo=x", OpImageImport},
		{"fromSrc=-&repo=x", OpImageImport},
		{"", OpImageImport},
		{"fromImage=&fromImage=busybox", OpImageImport}, // dockerd reads the first value
	}
	for _, tc := range cases {
		q, err := ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := Refine(pull, q).Op; got != tc.want {
			t.Errorf("Refine(image.pull, %q) = %s, want %s", tc.query, got, tc.want)
		}
	}
	other := Route{Op: OpContainerCreate}
	if got := Refine(other, url.Values{}); got != other {
		t.Errorf("Refine changed %+v to %+v", other, got)
	}
}

func TestParseBuildQuery(t *testing.T) {
	q, err := ParseQuery("networkmode=host&remote=git%3A%2F%2Fexample.com%2Fr&cgroupparent=%2F&t=a&t=b&extrahosts=h%3A1.2.3.4&pull=1&version=2&isolation=default&ulimits=%5B%5D&outputs=%5B%5D&session=s1&securityopt=x")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseBuildQuery(q)
	want := BuildQuery{
		NetworkMode: "host", Remote: "git://example.com/r", CgroupParent: "/", Isolation: "default",
		ExtraHosts: []string{"h:1.2.3.4"}, SecurityOpt: []string{"x"}, Ulimits: "[]", Outputs: "[]",
		Tags: []string{"a", "b"}, Version: "2", Session: "s1", Pull: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseBuildQuery = %+v, want %+v", got, want)
	}
}

func TestParseFilters(t *testing.T) {
	cases := []struct {
		raw  string
		want Filters
	}{
		{"", Filters{}},
		{`{"label":{"app=web":true},"status":{"running":true}}`, Filters{"label": {"app=web": true}, "status": {"running": true}}},
		{`{"label":["app=web","tier"]}`, Filters{"label": {"app=web": true, "tier": true}}},
	}
	for _, tc := range cases {
		got, err := ParseFilters(tc.raw)
		if err != nil {
			t.Fatalf("ParseFilters(%s): %v", tc.raw, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFilters(%s) = %v, want %v", tc.raw, got, tc.want)
		}
	}
	for _, raw := range []string{`{"label":{"a":true},"label":{"b":true}}`, `{"label":{"a":true},"Label":{"b":true}}`, `[]`, `{"label":"x"}`, `{`} {
		if _, err := ParseFilters(raw); err == nil {
			t.Errorf("ParseFilters(%s) accepted", raw)
		}
	}

	f, err := ParseFilters(`{"label":["app=web"]}`)
	if err != nil {
		t.Fatal(err)
	}
	f.Add("label", "dockgate.owner=ci-7")
	f.Add("status", "running")
	again, err := ParseFilters(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	want := Filters{"label": {"app=web": true, "dockgate.owner=ci-7": true}, "status": {"running": true}}
	if !reflect.DeepEqual(again, want) {
		t.Errorf("filters after Add and Encode = %v, want %v", again, want)
	}
}

func TestCheckJSONContentType(t *testing.T) {
	cases := []struct {
		ct      string
		hasBody bool
		ok      bool
	}{
		{"application/json", true, true},
		{"application/json; charset=utf-8", true, true},
		{"Application/JSON", true, true},
		{"", false, true},
		{"", true, false},
		{"text/plain", true, false},
		{"application/x-www-form-urlencoded", true, false},
		{"application/json;;", true, false},
		{"application/jsonx", true, false},
	}
	for _, tc := range cases {
		err := CheckJSONContentType(tc.ct, tc.hasBody)
		if (err == nil) != tc.ok {
			t.Errorf("CheckJSONContentType(%q, %v) = %v, want ok=%v", tc.ct, tc.hasBody, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBody) {
			t.Errorf("CheckJSONContentType error %v does not wrap ErrBody", err)
		}
	}
}

func TestIsFormContentType(t *testing.T) {
	cases := map[string]bool{
		"application/x-www-form-urlencoded":                true,
		"application/x-www-form-urlencoded; charset=utf-8": true,
		" Application/X-WWW-Form-Urlencoded":               true,
		"multipart/form-data; boundary=x":                  true,
		"Multipart/Form-Data":                              true,
		"multipart/mixed; boundary=x":                      true,
		"application/json":                                 false,
		"application/x-tar":                                false,
		"":                                                 false,
		"text/plain":                                       false,
	}
	for ct, want := range cases {
		if got := IsFormContentType(ct); got != want {
			t.Errorf("IsFormContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}
