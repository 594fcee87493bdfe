package compat

import (
	"fmt"
	"os"
	"testing"
)

// binDir holds binaries built for this run (etcdctl); TestMain removes it.
var binDir string

// TestMain makes binDir and, after the tests, prints what the random
// differential test compared (see randomSummary).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-compat-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if s := randomSummary(); s != "" {
		fmt.Println(s)
	}
	os.Exit(code)
}
