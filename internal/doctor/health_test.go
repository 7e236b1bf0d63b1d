package doctor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.Write([]byte("ok\n"))
		case "/not-ready":
			http.Error(w, "\nupstream docker daemon: dial unix /var/run/docker.sock: connect: permission denied\nmore", http.StatusServiceUnavailable)
		case "/empty":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		path    string
		wantErr string // "" means healthy
	}{
		{"/readyz", ""},
		{"/not-ready", "answered 503 Service Unavailable: upstream docker daemon: dial unix /var/run/docker.sock: connect: permission denied"},
		{"/empty", "answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := CheckHealth(t.Context(), srv.Client(), srv.URL+tt.path)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want healthy", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q spans lines, want one", err)
			}
		})
	}
}

func TestCheckHealthUnreachable(t *testing.T) {
	url := "http://" + closedPort(t) + "/readyz"
	err := CheckHealth(t.Context(), nil, url)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Count(err.Error(), url) != 1 {
		t.Errorf("got %v, want a connection-refused error naming %s once", err, url)
	}
}

func TestHealthURL(t *testing.T) {
	tests := []struct {
		listen, want string
		wantErr      bool
	}{
		{"127.0.0.1:2378", "http://127.0.0.1:2378/readyz", false},
		{":9100", "http://127.0.0.1:9100/readyz", false},
		{"0.0.0.0:9100", "http://127.0.0.1:9100/readyz", false},
		{"[::]:9100", "http://[::1]:9100/readyz", false},
		{"[::1]:2378", "http://[::1]:2378/readyz", false},
		{"admin.internal:2378", "http://admin.internal:2378/readyz", false},
		{"off", "", true},
		{"", "", true},
		{"2378", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			got, err := HealthURL(tt.listen)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("HealthURL(%q) = %q, %v; want %q, error %v", tt.listen, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
