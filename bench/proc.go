package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// procStatusBytes reads a "kB" field such as VmRSS or VmHWM from
// /proc/PID/status.
func procStatusBytes(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("failed to read the memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to parse %s of pid %d: %q", field, pid, rest)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime is the CPU time all threads of pid have run, from the
// nanosecond counters in /proc/PID/task/*/schedstat (the tick-based
// utime/stime in /proc/PID/stat are only 10 ms precise). The gateway's
// threads live as long as the process, so none are missed.
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("failed to list the threads of pid %d", pid)
	}
	var total int64
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that just exited
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("failed to parse %s: %w", path, err)
		}
		total += ns
	}
	return time.Duration(total), nil
}

// contextSwitches sums the voluntary and involuntary context switches of
// all threads of pid (/proc/PID/task/*/status): each one is a thread that
// slept and had to be woken, which costs far more than the Go scheduler's
// own goroutine switches.
func contextSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("failed to list the threads of pid %d", pid)
	}
	var total int64
	for _, path := range tasks {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that just exited
		}
		for _, line := range strings.Split(string(data), "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok || !strings.HasSuffix(name, "ctxt_switches") {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("failed to parse %s: %w", path, err)
			}
			total += n
		}
	}
	return total, nil
}

// pingOn sends GET /_ping on conn, reads the answer and leaves the
// connection open for reuse.
func pingOn(conn net.Conn) error {
	if _, err := conn.Write([]byte("GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s: %s", resp.Status, bytes.TrimSpace(body.Bytes()))
	}
	return nil
}

// cpuInfo returns the number of CPUs this process may use and their model.
func cpuInfo() (int, string) {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(value)
				break
			}
		}
	}
	return runtime.NumCPU(), model
}

func kernelRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

func dockerdVersion() string {
	for _, p := range []string{"dockerd", "/usr/sbin/dockerd"} {
		if out, err := exec.Command(p, "--version").Output(); err == nil {
			return strings.TrimSpace(string(out))
		}
	}
	return "unknown"
}

func goVersion() string { return runtime.Version() }

// loadAverage is the 1-minute load average, which shows whether other
// work shared the machine with the run.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return "unknown"
	}
	return fields[0]
}
