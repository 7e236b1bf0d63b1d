package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scenarios run "dockgate" in-process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"dockgate": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
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
	})
}
