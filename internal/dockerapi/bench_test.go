package dockerapi

import (
	"os"
	"testing"
)

func BenchmarkClassify(b *testing.B) {
	cases := []struct{ name, method, path string }{
		{"container-inspect", "GET", "/v1.41/containers/abc/json"},
		{"container-create", "POST", "/v1.47/containers/create"},
		{"image-digest", "GET", "/v1.47/images/" + imageRef + "/json"},
		{"ping-unversioned", "HEAD", "/_ping"},
		{"last-route", "POST", "/v1.47/grpc"},
		{"unknown-route", "GET", "/v1.47/nothing/here"},
		{"escaped", "GET", "/v1.41/containers/my%2Dapp/json"},
		{"refused", "GET", "/v1.41/../containers/json"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Classify(tc.method, tc.path)
			}
		})
	}
}

func BenchmarkOpSetHas(b *testing.B) {
	set, err := CompileGlobs([]string{"container.*", "exec.*", "image.build", "image.pull", "volume.*"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, _ := Classify("GET", "/v1.41/containers/abc/json")
		if !set.Has(r.Op) {
			b.Fatal("not allowed")
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	body, err := os.ReadFile("testdata/create-docker-cli.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckJSON(body, 0, JSONObject); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeContainerCreate(b *testing.B) {
	body, err := os.ReadFile("testdata/create-docker-cli.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeContainerCreate(body, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContainerCreateEncode(b *testing.B) {
	body, err := os.ReadFile("testdata/create-docker-cli.json")
	if err != nil {
		b.Fatal(err)
	}
	c, err := DecodeContainerCreate(body, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.SetLabel("dockgate.owner", "ci-7")
		if _, err := c.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
