package enroll

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits of the enrollment listener. Its requests are small and quick, so
// unlike the Docker API port it can bound whole requests: a slow or idle
// client cannot hold a connection open.
const (
	enrollReadHeaderTimeout = 10 * time.Second
	enrollRequestTimeout    = 30 * time.Second
	enrollIdleTimeout       = time.Minute
	enrollMaxHeaderBytes    = 16 << 10
	enrollShutdownTimeout   = 5 * time.Second
)

// Serve serves EnrollHandler over TLS on ln until ctx ends. getCert is the
// gateway's certificate source (gateway.Gateway.ServerCertificate), so the
// enrollment port presents the same certificate as the Docker API port,
// across reloads. No client certificate is asked for.
func (s *Server) Serve(ctx context.Context, ln net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) error {
	srv := &http.Server{
		Handler:           s.EnrollHandler(),
		ReadHeaderTimeout: enrollReadHeaderTimeout,
		ReadTimeout:       enrollRequestTimeout,
		WriteTimeout:      enrollRequestTimeout,
		IdleTimeout:       enrollIdleTimeout,
		MaxHeaderBytes:    enrollMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelInfo),
	}
	tl := tls.NewListener(ln, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     tls.NoClientCert,
		GetCertificate: getCert,
		NextProtos:     []string{"http/1.1"},
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tl) }()
	s.log().Info("enrollment listener ready", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), enrollShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	srv.Close()
	return nil
}
