package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/dockgate/dockgate/internal/store"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags or arguments
)

// hintError is an error with a line that tells the user how to fix it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// withHint attaches a fix-it hint to err. A nil err stays nil.
func withHint(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: fmt.Sprintf(format, args...)}
}

// usageError marks a mistake in how the command was called (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// printError writes "dockgate: error" and, when there is one, the hint line.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "dockgate: error: %v\n", err)
	var h *hintError
	switch {
	case errors.As(err, &h) && h.hint != "":
		fmt.Fprintf(w, "dockgate: hint: %s\n", h.hint)
	case errors.Is(err, store.ErrUnreachable):
		// The PostgreSQL store went away in the middle of a command.
		fmt.Fprintf(w, "dockgate: hint: %s\n", hintStore)
	}
}

func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitError
}
