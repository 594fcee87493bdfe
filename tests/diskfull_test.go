package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDiskFullRaisesNoSpace: on a small file system a member refuses
// writes with etcd's "database space exceeded" and raises NOSPACE before
// the disk is full, instead of dying on ENOSPC; it keeps serving reads and
// deletes, every acknowledged write is there, and once space is made and
// the alarm disarmed, writes go on.
func TestDiskFullRaisesNoSpace(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=320m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v: %s)", err, out)
	}
	m := newMember(t)
	m.dataDir = filepath.Join(mnt, "data")
	// Registered after the mount: cleanups run last-first, so the member
	// stops (its own cleanup) before the file system goes.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	// Other files share the volume; deleting them is how room is made.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 96<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p := m.start(t)
	cli := newClient(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	value := strings.Repeat("x", 256<<10)
	acked := 0
	var full error
	for i := 0; i < 1600 && full == nil; i++ { // 400 MiB would not fit
		if _, full = cli.Put(ctx, fmt.Sprintf("big/%04d", i), value); full == nil {
			acked++
		}
	}
	if !errors.Is(full, rpctypes.ErrNoSpace) {
		t.Fatalf("filling a 320 MiB file system: %v after %d writes, want %v; stderr:\n%s", full, acked, rpctypes.ErrNoSpace, p.stderr)
	}
	select {
	case <-p.exited:
		t.Fatalf("the member exited on a full disk; stderr:\n%s", p.stderr)
	default:
	}
	eventually(t, "the NOSPACE alarm", func() error {
		a, err := cli.AlarmList(ctx)
		if err != nil {
			return err
		}
		if len(a.Alarms) != 1 || a.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
			return fmt.Errorf("alarms %v", a.Alarms)
		}
		return nil
	})
	got, err := cli.Get(ctx, "big/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(got.Kvs) != acked {
		t.Fatalf("after the disk filled: %d keys (%v), want every one of the %d acknowledged", len(got.Kvs), err, acked)
	}
	if _, err := cli.Delete(ctx, "big/0000"); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	if _, err := cli.Put(ctx, "after", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Errorf("put on a full disk: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	// The refused put above may still be raising the alarm: disarm until a
	// write goes through, as an operator would.
	eventually(t, "a write once room is made and the alarm disarmed", func() error {
		if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: got.Header.MemberId, Alarm: pb.AlarmType_NOSPACE}); err != nil {
			return err
		}
		_, err := cli.Put(ctx, "after", "v")
		if err != nil {
			a, _ := cli.AlarmList(ctx)
			df, _ := exec.Command("df", "-m", mnt).CombinedOutput()
			return fmt.Errorf("%w (alarms %v; %s)", err, a.Alarms, df)
		}
		return err
	})
}
