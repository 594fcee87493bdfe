package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-kv/cairn/version"
)

// TestRun covers what main prints and the exit status, for every path that
// does not start a server.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		status      int
		stdout      string // substring; "" means empty
		stderr      string // substring; "" means empty
		exactStdout bool
	}{
		{args: []string{"--version"}, status: 0, exactStdout: true, stdout: fmt.Sprintf(
			"etcd Version: %s\nGit SHA: %s\nGo Version: %s\nGo OS/Arch: %s/%s\nCairn Version: %s\n",
			version.APIVersion, gitSHA(), runtime.Version(), runtime.GOOS, runtime.GOARCH, version.Version)},
		{args: []string{"--help"}, status: 0, stdout: "  --listen-client-urls 'http://127.0.0.1:2379'\n"},
		{args: []string{"--bogus"}, status: 2, stderr: "cairn: flag provided but not defined: --bogus\n"},
		{args: []string{"--snapshot-count=x"}, status: 2, stderr: `cairn: invalid value "x" for flag --snapshot-count: parse error`},
		{args: []string{"gateway"}, status: 1, stderr: "cairn: \"gateway\" is not a valid flag\n"},
	} {
		var stdout, stderr bytes.Buffer
		status := run(tc.args, nil, &stdout, &stderr)
		if status != tc.status {
			t.Errorf("%q: status got %d, want %d", tc.args, status, tc.status)
		}
		switch {
		case tc.exactStdout && stdout.String() != tc.stdout:
			t.Errorf("%q: stdout got %q, want %q", tc.args, stdout.String(), tc.stdout)
		case tc.stdout == "" && stdout.Len() != 0, !strings.Contains(stdout.String(), tc.stdout):
			t.Errorf("%q: stdout got %q, want it to contain %q", tc.args, stdout.String(), tc.stdout)
		}
		if (tc.stderr == "" && stderr.Len() != 0) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%q: stderr got %q, want it to contain %q", tc.args, stderr.String(), tc.stderr)
		}
	}
}
