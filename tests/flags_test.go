package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVersionFlag: `cairn --version` prints the "etcd Version:" line that
// etcd tooling parses, and exits 0.
func TestVersionFlag(t *testing.T) {
	p := startCairn(t, "--version")
	if code := p.wait(t); code != 0 {
		t.Fatalf("cairn --version: exit code %d, want 0; stderr:\n%s", code, p.stderr)
	}
	out := p.stdout.String()
	if !regexp.MustCompile(`(?m)^etcd Version: 3\.7\.4$`).MatchString(out) {
		t.Errorf("cairn --version: stdout %q has no line %q", out, "etcd Version: 3.7.4")
	}
}

// TestUnknownFlag: an unknown flag fails before anything starts, and the
// message names it.
func TestUnknownFlag(t *testing.T) {
	dir := t.TempDir()
	p := startCairn(t, "--data-dir", dir+"/data", "--no-such-flag=1")
	code := p.wait(t)
	stderr := p.stderr.String()
	if code == 0 {
		t.Errorf("cairn --no-such-flag: exit code 0, want non-zero")
	}
	if !strings.Contains(stderr, "no-such-flag") {
		t.Errorf("cairn --no-such-flag: stderr %q does not name the flag", stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("cairn --no-such-flag created %v in its parent directory", entries)
	}
}
