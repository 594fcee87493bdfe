package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// cairnBin is the path of the cairn binary that TestMain builds.
var cairnBin string

// raceEnabled builds cairn with -race: set CAIRN_E2E_RACE=1. Any race
// report on a process's stderr then fails the test that started it. (The
// binary is not built with -race just because the tests run with -race: a
// race-enabled server is several times slower.)
var raceEnabled = os.Getenv("CAIRN_E2E_RACE") == "1"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the binary into a temporary directory, runs the tests
// and removes the directory.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	cairnBin = filepath.Join(dir, "cairn")
	args := []string{"build", "-o", cairnBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/cairn-kv/cairn/cmd/cairn")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building cairn:", err)
		return 1
	}
	return m.Run()
}
