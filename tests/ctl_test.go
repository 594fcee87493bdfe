package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ctlResult is what one `cairn ctl` process printed and how it exited.
type ctlResult struct {
	stdout, stderr string
	code           int
}

// ctl runs `cairn ctl args...` to completion (at most startTimeout) with
// extra environment entries ("KEY=value") on top of this process's.
func ctl(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, append([]string{"ctl"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cairn ctl %q still running after %v; stderr:\n%s", args, startTimeout, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("cairn ctl %q: %v", args, err)
	}
	return ctlResult{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// wantCtl runs `cairn ctl` and expects exit status 0 and exactly stdout.
func wantCtl(t *testing.T, env []string, stdout string, args ...string) {
	t.Helper()
	r := ctl(t, env, args...)
	if r.code != 0 || r.stdout != stdout {
		t.Errorf("cairn ctl %q: exit %d, stdout %q; want exit 0, stdout %q; stderr:\n%s", args, r.code, r.stdout, stdout, r.stderr)
	}
}

// TestCtl: `cairn ctl` is etcdctl 3.7.4: its subcommands, global flags,
// output formats, ETCDCTL_* variables and exit statuses, against a real
// cairn process.
func TestCtl(t *testing.T) {
	m := newMember(t)
	m.start(t)
	ep := "--endpoints=" + m.endpoint()

	wantCtl(t, nil, "etcdctl version: 3.7.4\nAPI version: 3.7\n", "version")
	wantCtl(t, nil, "OK\n", ep, "put", "greeting", "hello")
	wantCtl(t, nil, "OK\n", ep, "put", "greeting", "world")
	wantCtl(t, nil, "greeting\nworld\n", ep, "get", "greeting")
	// The endpoint from the environment, as etcdctl reads it.
	wantCtl(t, []string{"ETCDCTL_ENDPOINTS=" + m.endpoint()}, "greeting\nhello\n", "get", "greeting", "--rev=2")

	t.Run("json", func(t *testing.T) {
		r := ctl(t, nil, ep, "-w", "json", "get", "greeting")
		if r.code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		var resp struct {
			Header struct {
				Revision int64 `json:"revision"`
				MemberID uint64
			} `json:"header"`
			Kvs []struct {
				Key            string `json:"key"`
				Value          string `json:"value"`
				CreateRevision int64  `json:"create_revision"`
				ModRevision    int64  `json:"mod_revision"`
				Version        int64  `json:"version"`
			} `json:"kvs"`
			Count int64 `json:"count"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
		}
		b64 := base64.StdEncoding.EncodeToString
		if resp.Header.Revision != 3 || resp.Count != 1 || len(resp.Kvs) != 1 ||
			resp.Kvs[0].Key != b64([]byte("greeting")) || resp.Kvs[0].Value != b64([]byte("world")) ||
			resp.Kvs[0].CreateRevision != 2 || resp.Kvs[0].ModRevision != 3 || resp.Kvs[0].Version != 2 {
			t.Errorf("got %+v, want revision 3, one kv greeting=world created at 2, modified at 3, version 2", resp)
		}
	})

	t.Run("watch", func(t *testing.T) {
		// From a past revision, so the first event does not race the
		// watch's creation; then one put made while it runs.
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, cairnBin, "ctl", ep, "watch", "greeting", "--rev=3")
		out := &lockedBuffer{}
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = out, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		waitOutput := func(want string) {
			t.Helper()
			for deadline := time.Now().Add(opTimeout); out.String() != want; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("watch printed %q, want %q; stderr:\n%s", out.String(), want, stderr.String())
				}
			}
		}
		waitOutput("PUT\ngreeting\nworld\n")
		wantCtl(t, nil, "OK\n", ep, "put", "greeting", "again")
		waitOutput("PUT\ngreeting\nworld\nPUT\ngreeting\nagain\n")
	})

	t.Run("endpoint status", func(t *testing.T) {
		r := ctl(t, nil, ep, "endpoint", "status", "-w", "json")
		if r.code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		var st []struct {
			Endpoint string `json:"Endpoint"`
			Status   struct {
				Header struct {
					MemberID uint64 `json:"member_id"`
				} `json:"header"`
				Version string `json:"version"`
				Leader  uint64 `json:"leader"`
			} `json:"Status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
		}
		if len(st) != 1 || st[0].Endpoint != m.endpoint() || st[0].Status.Version != "3.7.4" ||
			st[0].Status.Leader == 0 || st[0].Status.Leader != st[0].Status.Header.MemberID {
			t.Errorf("got %+v, want one endpoint %s, version 3.7.4, leading", st, m.endpoint())
		}
	})

	t.Run("errors", func(t *testing.T) {
		wantCtl(t, nil, "compacted revision 3\n", ep, "compaction", "3")
		for _, tc := range []struct {
			args   []string
			code   int
			stderr string
		}{
			// A server error: etcdctl's ExitError and rpctypes' message.
			{[]string{ep, "get", "greeting", "--rev=2"}, 1, "Error: etcdserver: mvcc: required revision has been compacted\n"},
			// Bad arguments: etcdctl's ExitBadArgs.
			{[]string{ep, "get"}, 128, "Error: get command needs one argument as key and an optional argument as range_end\n"},
			// An unknown command: cobra's message, status 1.
			{[]string{"nosuch"}, 1, "Error: unknown command \"nosuch\" for \"etcdctl\"\nRun 'etcdctl --help' for usage.\n"},
		} {
			// The last lines: before them, clientv3 may log its retries
			// as JSON, as etcdctl's does.
			r := ctl(t, nil, tc.args...)
			if r.code != tc.code || !strings.HasSuffix(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("cairn ctl %q: exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr ending %q",
					tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
		}
		// Nothing listens: the client's deadline, after --dial-timeout and
		// --command-timeout.
		r := ctl(t, nil, "--endpoints="+freeAddr(t), "--command-timeout=1s", "get", "greeting")
		if r.code != 1 || !strings.HasSuffix(r.stderr, "Error: context deadline exceeded\n") {
			t.Errorf("cairn ctl get on a closed port: exit %d, stderr %q; want exit 1 and \"Error: context deadline exceeded\"", r.code, r.stderr)
		}
	})
}

// TestEtcd36FlagsAndGates: a member started with etcd 3.6's experimental
// flags (which etcd 3.7 refuses) and 3.7's feature gates serves, warns as
// etcd 3.7 would, and answers keep-alives with the gates flipped.
func TestEtcd36FlagsAndGates(t *testing.T) {
	m := newMember(t, "--experimental-watch-progress-notify-interval=5s",
		"--experimental-compact-hash-check-enabled=true",
		"--feature-gates=FastLeaseKeepAlive=false,PriorityRequest=true,LeaseCheckpoint=true")
	p := m.start(t)
	stderr := p.stderr.String()
	for _, want := range []string{
		"--experimental-watch-progress-notify-interval is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--watch-progress-notify-interval' instead",
		"--experimental-compact-hash-check-enabled is deprecated in etcd 3.6 and decommissioned in etcd 3.7, which refuses it; use '--feature-gates=CompactHashCheck=true' instead",
		"feature-gates=LeaseCheckpoint",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	ep := "--endpoints=" + m.endpoint()
	r := ctl(t, nil, ep, "lease", "grant", "60")
	var id string
	if _, err := fmt.Sscanf(r.stdout, "lease %s granted with TTL(60s)\n", &id); err != nil || r.code != 0 {
		t.Fatalf("lease grant: exit %d, stdout %q (%v); stderr:\n%s", r.code, r.stdout, err, r.stderr)
	}
	wantCtl(t, nil, "lease "+id+" keepalived with TTL(60)\n", ep, "lease", "keep-alive", "--once", id)
	wantCtl(t, nil, "lease "+id+" revoked\n", ep, "lease", "revoke", id)
}
