package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// idleSettle is how long the connections sit idle before RSS is read:
	// long enough for the gateway's goroutines to park and for the Go
	// runtime's background scavenger to run once.
	idleSettle = 3 * time.Second
	// idleDialers open the idle connections in parallel.
	idleDialers = 8
)

// idleResult is the memory of a fresh gateway before and with idle
// connections.
type idleResult struct {
	conns            int
	baseRSS, idleRSS int64
	peakRSS          int64
	// Private (anonymous) memory: heap, stacks, runtime. The rest of the
	// RSS is pages of the dockgate binary itself.
	baseAnon, idleAnon int64
}

// measureIdle starts a fresh ECDSA gateway, reads its RSS, opens n mTLS
// connections that each complete one GET /_ping and then stay open and
// idle, and reads the RSS again.
func measureIdle(ctx context.Context, env *environment, n int, log io.Writer) (*idleResult, error) {
	fmt.Fprintf(log, "bench: %d idle mTLS connections to a fresh gateway\n", n)
	g, err := startGateway(ctx, env, gatewayECDSA, "idle", "")
	if err != nil {
		if g != nil {
			err = errors.Join(err, g.stop())
		}
		return nil, err
	}
	defer g.stop()
	time.Sleep(idleSettle)
	res := &idleResult{conns: n}
	if res.baseRSS, err = procStatusBytes(g.pid(), "VmRSS"); err != nil {
		return nil, err
	}
	if res.baseAnon, err = procStatusBytes(g.pid(), "RssAnon"); err != nil {
		return nil, err
	}
	cfg, err := env.states[gatewayECDSA].clientTLS()
	if err != nil {
		return nil, err
	}
	conns, err := openIdle(ctx, g.addr, cfg, n)
	defer closeAll(conns)
	if err != nil {
		return nil, err
	}
	time.Sleep(idleSettle)
	if res.peakRSS, res.idleRSS, err = g.memory(); err != nil {
		return nil, err
	}
	if res.idleAnon, err = procStatusBytes(g.pid(), "RssAnon"); err != nil {
		return nil, err
	}
	return res, nil
}

// openIdle opens n connections with idleDialers goroutines.
func openIdle(ctx context.Context, addr string, cfg *tls.Config, n int) ([]net.Conn, error) {
	var (
		mu      sync.Mutex
		conns   []net.Conn
		firstEr error
		wg      sync.WaitGroup
		next    = make(chan struct{}, n)
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				conn, err := openOne(ctx, dialer, addr)
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
				}
				if conn != nil {
					conns = append(conns, conn)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return conns, fmt.Errorf("failed to open idle connection %d of %d: %w", len(conns)+1, n, firstEr)
	}
	return conns, nil
}

func openOne(ctx context.Context, d *tls.Dialer, addr string) (net.Conn, error) {
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := pingOn(conn); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
