package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzReadHead checks the daemon answer parser against net/http's: what
// readHead accepts, http.ReadResponse accepts and reads the same way
// (status, header, how the body ends, whether the connection closes); what
// http.ReadResponse accepts, readHead accepts too unless it refuses it on
// purpose (a strict headError). It must never panic.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		h := &respHead{}
		err := readHead(bufio.NewReader(bytes.NewReader(data)), h, method)
		resp, stdErr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
		if err != nil {
			var he *headError
			if stdErr == nil && !(errors.As(err, &he) && he.strict) {
				t.Fatalf("readHead refused %q (%v), net/http accepts it", data, err)
			}
			return
		}
		if stdErr != nil {
			t.Fatalf("readHead accepted %q, net/http refuses it: %v", data, stdErr)
		}
		compareHead(t, data, h, resp)
	})
}

func compareHead(t *testing.T, data []byte, h *respHead, resp *http.Response) {
	t.Helper()
	if h.status != resp.StatusCode || !strings.HasSuffix(resp.Status, h.reason) {
		t.Fatalf("%q: status %d %q, net/http %q", data, h.status, h.reason, resp.Status)
	}
	if h.close != resp.Close {
		t.Fatalf("%q: close %v, net/http %v", data, h.close, resp.Close)
	}
	if got, want := h.framing, stdFraming(resp); got != want {
		t.Fatalf("%q: framing %d, net/http %d", data, got, want)
	}
	if h.framing == bodyLength && h.contentLength != resp.ContentLength {
		t.Fatalf("%q: length %d, net/http %d", data, h.contentLength, resp.ContentLength)
	}
	if resp.Request.Method == http.MethodHead && h.contentLength != resp.ContentLength {
		t.Fatalf("%q: HEAD length %d, net/http %d", data, h.contentLength, resp.ContentLength)
	}
	mine := http.Header{}
	for _, f := range h.fields {
		mine[f.key] = append(mine[f.key], f.value)
	}
	// net/http rewrites the framing fields and adds Cache-Control for a
	// Pragma: no-cache.
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Trailer", "Cache-Control"} {
		delete(mine, k)
		delete(resp.Header, k)
	}
	for k, vs := range resp.Header {
		if !slices.Equal(mine[k], vs) {
			t.Fatalf("%q: %s = %q, net/http %q", data, k, mine[k], vs)
		}
	}
	if len(mine) != len(resp.Header) {
		t.Fatalf("%q: header %v, net/http %v", data, mine, resp.Header)
	}
}

// stdFraming is how net/http will read the body of resp.
func stdFraming(resp *http.Response) framing {
	switch {
	case resp.Body == http.NoBody:
		return bodyNone
	case slices.Contains(resp.TransferEncoding, "chunked"):
		return bodyChunked
	case resp.ContentLength > 0:
		return bodyLength
	}
	return bodyToClose
}

func TestReadHeadRefusals(t *testing.T) {
	cases := []struct {
		name, head string
		want       error // nil: any non-strict error
	}{
		{"both lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", errBothLengths},
		{"folding", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\n\r\n", errObsFold},
		{"folding first", "HTTP/1.1 200 OK\r\n X-A: 1\r\n\r\n", errObsFold},
		{"space in a name", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n", errKeySpace},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", errVersion},
		{"status +01", "HTTP/1.1 +01 OK\r\n\r\n", errStatusCode},
		{"status 099", "HTTP/1.1 099 OK\r\n\r\n", errStatusCode},
		{"CR in the reason", "HTTP/1.1 200 O\rK\r\n\r\n", errReason},
		{"chunked HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", errChunkedHTTP10},
		{"too large", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: 0123456789abcdef\r\n", 4000) + "\r\n", errHeadTooLarge},
		{"non-numeric length", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", nil},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", nil},
		{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", nil},
		{"gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", nil},
		{"two codings", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", nil},
		{"NUL in a value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", nil},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n", nil},
		{"cut short", "HTTP/1.1 200 OK\r\nX-A: 1\r\n", nil},
		{"empty", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := readHead(bufio.NewReader(strings.NewReader(c.head)), &respHead{}, http.MethodGet)
			var he *headError
			switch {
			case err == nil:
				t.Fatal("accepted")
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("error %v, want %v", err, c.want)
			case c.want == nil && errors.As(err, &he) && he.strict:
				t.Fatalf("error %v is strict; net/http refuses this too", err)
			}
		})
	}
}
