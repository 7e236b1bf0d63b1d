// Command testdockerd runs one private Docker daemon for a whole test run.
//
// ./scripts/test starts it, waits for --ready-file, exports the address it
// holds as DOCKGATE_TEST_DOCKER_HOST so that every test package reuses the
// daemon, and stops it with SIGTERM. The daemon is stopped and its
// directory removed before testdockerd exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/dockgate/dockgate/internal/dockertest"
)

func main() {
	readyFile := flag.String("ready-file", "", "once the daemon is ready, write its DOCKER_HOST to this file")
	logCopy := flag.String("log-copy", "", "when stopping, copy dockerd's log to this file")
	flag.Parse()
	if err := run(*readyFile, *logCopy); err != nil {
		fmt.Fprintf(os.Stderr, "testdockerd: %v\n", err)
		os.Exit(1)
	}
}

func run(readyFile, logCopy string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	d, err := dockertest.Start(ctx, dockertest.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "testdockerd: dockerd pid %d at %s, image %s\n", d.PID(), d.Host(), d.Image())
	if readyFile != "" {
		if err := writeAtomic(readyFile, d.Host()+"\n"); err != nil {
			return stopAfter(d, logCopy, err)
		}
	}
	select {
	case <-ctx.Done():
		return stopAfter(d, logCopy, nil)
	case <-d.Exited():
		return stopAfter(d, logCopy, fmt.Errorf("dockerd exited unexpectedly"))
	}
}

// stopAfter stops the daemon, keeping a copy of its log, and returns cause
// together with any stop failure.
func stopAfter(d *dockertest.Daemon, logCopy string, cause error) error {
	if logCopy != "" {
		if err := os.WriteFile(logCopy, []byte(d.Logs()), 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "testdockerd: failed to copy the dockerd log: %v\n", err)
		}
	}
	if err := d.Stop(); err != nil {
		if cause == nil {
			return fmt.Errorf("failed to stop the daemon: %w", err)
		}
		return fmt.Errorf("%w; failed to stop the daemon: %w", cause, err)
	}
	if cause == nil {
		fmt.Fprintln(os.Stderr, "testdockerd: stopped")
	}
	return cause
}

// writeAtomic writes the ready file in one step, so a reader polling for
// it never sees it half written.
func writeAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
