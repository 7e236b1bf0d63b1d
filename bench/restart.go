package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
)

const (
	// restartWorkers keep-alive clients fill the gateway's pool of daemon
	// connections before the restart and send the requests after it.
	restartWorkers = 8
	// restartRequests per worker after the restart: the first ones meet
	// whatever the pool kept from the dead daemon.
	restartRequests = 100
)

// restartResult is what the clients of the ECDSA gateway saw once dockerd,
// killed and started again, answered on its own socket.
type restartResult struct {
	downtime     time.Duration // from the kill until dockerd answered /_ping
	sent, failed int
	firstErr     error
}

// measureRestart fills the ECDSA gateway's pool with keep-alive requests,
// kills dockerd (SIGKILL) and starts it again on the same socket, then sends
// requests through the gateway and counts the failures; the target is
// none. It runs last: every contender shares the daemon.
func measureRestart(ctx context.Context, env *environment, log io.Writer) (*restartResult, error) {
	fmt.Fprintf(log, "bench: dockerd killed and restarted under %d keep-alive clients of the gateway\n", restartWorkers)
	ep := env.eps[contenderDockgate]
	transport := load.NewTransport(ep, load.KeepAlive, restartWorkers)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	if _, err := requestsFrom(ctx, client, ep.BaseURL, 20); err != nil {
		return nil, fmt.Errorf("before the restart: %w", err)
	}
	start := time.Now()
	if err := env.daemon.Restart(ctx); err != nil {
		return nil, err
	}
	res := &restartResult{downtime: time.Since(start)}
	failures, err := requestsFrom(ctx, client, ep.BaseURL, restartRequests)
	res.sent, res.failed = restartWorkers*restartRequests, len(failures)
	if len(failures) > 0 {
		res.firstErr = failures[0]
	}
	return res, err
}

// requestsFrom sends n requests from each of restartWorkers clients at
// once, alternating /_ping and the container list, and returns the failed
// ones; err is set only when ctx ended.
func requestsFrom(ctx context.Context, c *http.Client, base string, n int) (failed []error, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range restartWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				path := []string{pathPing, pathList}[(w+i)%2]
				if err := getOnce(ctx, c, base+path); err != nil {
					mu.Lock()
					failed = append(failed, fmt.Errorf("GET %s: %w", path, err))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failed, ctx.Err()
}

func getOnce(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	return err
}

func (r *restartResult) print(w io.Writer) {
	fmt.Fprintln(w, "| after a dockerd restart (SIGKILL, same socket) | dockerd down | requests | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| %s, %d keep-alive clients | %s | %d | %d |\n", contenderNames[contenderDockgate], restartWorkers,
		r.downtime.Round(time.Millisecond), r.sent, r.failed)
	if r.firstErr != nil {
		fmt.Fprintf(w, "\nFirst failure: %v\n", r.firstErr)
	}
	fmt.Fprintln(w)
}
