package main

import (
	"context"
	"fmt"
	"io"

	"github.com/dockgate/dockgate/bench/internal/load"
)

// streamContenders export the image; the RSA gateway would only repeat
// the ECDSA one, since the handshake is a negligible part of a stream.
var streamContenders = []string{contenderUnix, contenderNative, contenderDockgate}

// streamResult holds MB/s per contender and round, and the export size.
type streamResult struct {
	bytes int64
	mbps  map[string][]float64
}

// runStreaming exports the image once to warm the page cache, then in
// interleaved rounds through every contender.
func runStreaming(ctx context.Context, env *environment, opts options, log io.Writer) (*streamResult, error) {
	path := "/images/" + env.image + "/get"
	fmt.Fprintf(log, "bench: streaming %s (warm-up export first)\n", path)
	n, _, err := load.Stream(ctx, env.eps[contenderUnix], path)
	if err != nil {
		return nil, err
	}
	res := &streamResult{bytes: n, mbps: map[string][]float64{}}
	for round := range opts.streamRounds {
		for k := range streamContenders {
			id := streamContenders[(k+round)%len(streamContenders)]
			got, elapsed, err := load.Stream(ctx, env.eps[id], path)
			if err != nil {
				return nil, err
			}
			if got != n {
				return nil, fmt.Errorf("export via %s returned %d bytes, want %d", contenderNames[id], got, n)
			}
			res.mbps[id] = append(res.mbps[id], float64(got)/1e6/elapsed.Seconds())
		}
	}
	return res, nil
}

// stats returns the median MB/s and the median ratio to native TLS.
func (s *streamResult) stats(id string) (mbps, ratio float64) {
	native := s.mbps[contenderNative]
	var ratios []float64
	for r, v := range s.mbps[id] {
		if r < len(native) && native[r] > 0 {
			ratios = append(ratios, v/native[r])
		}
	}
	return load.Median(s.mbps[id]), load.Median(ratios)
}
