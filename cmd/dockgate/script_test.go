package main

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scenarios run "dockgate" in-process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dockgate": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		// As the docker CLI runs the installed plugin.
		"docker-gate": func() { os.Exit(runArgv(append([]string{"docker-gate"}, os.Args[1:]...))) },
	})
}

// TestScripts runs the CLI scenarios in testdata/script/*.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("DOCKGATE_HOME", env.WorkDir+"/state")
			env.Setenv("DOCKER_CONFIG", env.WorkDir+"/.docker")
			env.Setenv("XDG_DATA_HOME", env.WorkDir+"/xdg")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"perm":    cmdPerm,
			"capture": cmdCapture,
			"listen":  cmdListen,
		},
	})
}

// cmdPerm checks a file's permission bits: perm FILE 0600.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	if err != nil {
		ts.Fatalf("bad mode %q: %v", args[1], err)
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == os.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %#o, want%s %#o", args[0], got, map[bool]string{true: " not"}[neg], want)
	}
}

// cmdCapture sets an environment variable to the first submatch of a
// regular expression in a file (or stdout/stderr of the last command):
// capture VAR FILE REGEXP.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: capture VAR FILE REGEXP")
	}
	re, err := regexp.Compile(args[2])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	if len(m) < 2 {
		ts.Fatalf("no match for %q in %s", args[2], args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdListen holds a loopback port for the rest of the script and sets an
// environment variable to its address: listen VAR.
func cmdListen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listen VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	ts.Setenv(args[0], ln.Addr().String())
}
