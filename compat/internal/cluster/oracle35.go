package cluster

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// BuildEtcd35 builds the etcd v3.5.21 oracle (with --enable-v2, the v2
// keys API's reference) into dir from the module in compat/oracle35, a
// module of its own, and returns its path.
func BuildEtcd35(dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate compat/oracle35")
	}
	src := filepath.Join(filepath.Dir(file), "..", "..", "oracle35")
	server := filepath.Join(dir, "etcd35")
	cmd := exec.Command("go", "build", "-o", server, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, out)
	}
	return server, nil
}

// StartEtcd35 starts a single etcd v3.5.21 member with the v2 API, the
// server BuildEtcd35 built, in its own process (its command line is the
// 3.6 oracle's, see StartEtcd36), and returns its client endpoints and a
// cleanup that stops it.
func StartEtcd35(t testing.TB, server string) (endpoints []string, cleanup func()) {
	t.Helper()
	return StartEtcd36(t, server, Options{})
}
