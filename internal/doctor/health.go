package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// HealthURL is the readiness URL of the gateway's admin listener, given its
// address (the config's admin_listen): a wildcard host is probed on
// loopback, where every listener on the port answers.
func HealthURL(adminListen string) (string, error) {
	if adminListen == "" || adminListen == "off" {
		return "", errors.New("the admin listener is off, so there is no /readyz to probe")
	}
	host, port, err := net.SplitHostPort(adminListen)
	if err != nil {
		return "", fmt.Errorf("invalid admin listen address %q: %w", adminListen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// maxHealthReason caps how much of a failing answer's body is quoted.
const maxHealthReason = 200

// CheckHealth GETs url and returns nil on 200 OK, otherwise an error of one
// line saying why. It is the probe behind the image's HEALTHCHECK, which has
// no shell or curl to call. A nil client means http.DefaultClient.
func CheckHealth(ctx context.Context, client *http.Client, rawURL string) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("invalid health URL: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and URL
		}
		return fmt.Errorf("failed to reach %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	reason := firstLine(resp.Body)
	if reason == "" {
		return fmt.Errorf("%s answered %s", rawURL, resp.Status)
	}
	return fmt.Errorf("%s answered %s: %s", rawURL, resp.Status, reason)
}

// firstLine returns the body's first non-empty line, shortened.
func firstLine(r io.Reader) string {
	sc := bufio.NewScanner(io.LimitReader(r, maxHealthReason*4))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			if len(line) > maxHealthReason {
				line = line[:maxHealthReason] + "..."
			}
			return line
		}
	}
	return ""
}
