package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

type record struct{ k, v []byte }

// serve runs a transport for member id with handlers h on a real socket,
// with member 1 (the sender's ID) as its peer, and returns its address.
func serve(t *testing.T, id uint64, h Handlers) string {
	t.Helper()
	addr, _ := serveTransport(t, id, h)
	return addr
}

func serveTransport(t *testing.T, id uint64, h Handlers) (string, *Transport) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(ServerOptions(4 << 20)...) // the test sends a 3 MiB record
	tr := New(id, h, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	tr.Register(s)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	// The peer it knows: nothing listens there, its stream only retries.
	if err := tr.SetPeer(1, []string{"http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return l.Addr().String(), tr
}

func sender(t *testing.T, to uint64, addr string) *Transport {
	t.Helper()
	tr := New(1, Handlers{Step: func(*raftpb.Message) {}}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := tr.SetPeer(to, []string{"http://" + addr}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func snapMsg() *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(4),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(1234), Term: proto.Uint64(3), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}}
}

// Several MiB of records, spanning many chunks, arrive intact and in
// order, with the message that heads them.
func TestSendSnapshotDeliversEveryRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sent []record
	for i := 0; i < 20000; i++ {
		v := make([]byte, rng.IntN(600))
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		sent = append(sent, record{[]byte(fmt.Sprintf("k%08d", i)), v})
	}
	sent = append(sent, record{[]byte("big"), bytes.Repeat([]byte{7}, 3<<20)}) // one record over a chunk
	var got []record
	var head *raftpb.Message
	addr := serve(t, 2, Handlers{Snapshot: func(m *raftpb.Message, next func() ([]byte, []byte, error)) error {
		head = m
		for {
			k, v, err := next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			got = append(got, record{bytes.Clone(k), bytes.Clone(v)})
		}
	}})
	tr := sender(t, 2, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := tr.SendSnapshot(ctx, snapMsg(), func(fn func(k, v []byte) error) error {
		for _, r := range sent {
			if err := fn(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if head.Snapshot == nil || head.Snapshot.Metadata.GetIndex() != 1234 || head.GetFrom() != 1 {
		t.Fatalf("head message %+v, want the MsgSnap at index 1234 from 1", head)
	}
	if len(got) != len(sent) {
		t.Fatalf("received %d records, sent %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i].k, sent[i].k) || !bytes.Equal(got[i].v, sent[i].v) {
			t.Fatalf("record %d: got key %q (%d bytes), sent %q (%d bytes)", i, got[i].k, len(got[i].v), sent[i].k, len(sent[i].v))
		}
	}
}

// The sender learns why the member refused a snapshot, and a removed
// member's snapshot is refused.
func TestSendSnapshotRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Handlers
		want string
	}{
		{"handler fails", Handlers{Snapshot: func(*raftpb.Message, func() ([]byte, []byte, error)) error {
			return errors.New("disk full")
		}}, "disk full"},
		{"sender removed", Handlers{
			IsRemoved: func(id uint64) bool { return id == 1 },
			Snapshot:  func(*raftpb.Message, func() ([]byte, []byte, error)) error { return nil },
		}, "permanently removed"},
		{"no handler", Handlers{}, "not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := sender(t, 2, serve(t, 2, tc.h))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := tr.SendSnapshot(ctx, snapMsg(), func(fn func(k, v []byte) error) error {
				for i := 0; i < 5000; i++ {
					if err := fn([]byte(fmt.Sprint(i)), make([]byte, 1000)); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SendSnapshot: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A stream cut short or garbled is refused by the reader, never taken as
// a whole snapshot.
func TestSnapshotReaderRejectsBadStreams(t *testing.T) {
	rec := func(k, v string) []byte {
		var b []byte
		b = appendRecord(b, []byte(k), []byte(v))
		return b
	}
	for _, tc := range []struct {
		name  string
		blobs [][]byte
	}{
		{"no end mark", [][]byte{append([]byte{snapData}, rec("a", "1")...)}},
		{"count too low", [][]byte{append([]byte{snapData}, rec("a", "1")...), {snapEnd, 0}}},
		{"count too high", [][]byte{append([]byte{snapData}, rec("a", "1")...), {snapEnd, 2}}},
		{"truncated record", [][]byte{append([]byte{snapData}, rec("abc", "123")[:4]...), {snapEnd, 1}}},
		{"unknown tag", [][]byte{{'X', 1, 2}}},
		{"empty blob", [][]byte{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &snapReader{s: &fakeStream{blobs: tc.blobs}}
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				_, _, err = r.next()
			}
			if err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("next: %v, want a malformed-stream error", err)
			}
		})
	}
}

func appendRecord(b, k, v []byte) []byte {
	b = append(b, byte(len(k)))
	b = append(b, k...)
	b = append(b, byte(len(v)))
	return append(b, v...)
}

// fakeStream replays blobs, then io.EOF.
type fakeStream struct {
	grpc.ServerStream
	blobs [][]byte
}

func (f *fakeStream) RecvMsg(m any) error {
	if len(f.blobs) == 0 {
		return io.EOF
	}
	b := f.blobs[0]
	f.blobs = f.blobs[1:]
	return m.(*blob).Unmarshal(b)
}

// FuzzSnapshotReader: whatever blobs a peer sends, the reader returns
// records, io.EOF only after a matching end mark, or an error; it never
// panics or returns a record past the data it got.
func FuzzSnapshotReader(f *testing.F) {
	good := append([]byte{snapData}, appendRecord(nil, []byte("k"), []byte("v"))...)
	f.Add(good, []byte{snapEnd, 1})
	f.Add([]byte{snapData, 0x80}, []byte{snapEnd, 0})
	f.Add([]byte{snapData, 5, 'a'}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r := &snapReader{s: &fakeStream{blobs: [][]byte{a, b}}}
		total := len(a) + len(b)
		seen := 0
		for i := 0; i < total+2; i++ {
			k, v, err := r.next()
			if err != nil {
				if errors.Is(err, io.EOF) && (len(b) == 0 || b[0] != snapEnd) && (len(a) == 0 || a[0] != snapEnd) {
					t.Fatalf("io.EOF without an end mark: %q %q", a, b)
				}
				return
			}
			seen += len(k) + len(v)
			if seen > total {
				t.Fatalf("records hold %d bytes, the stream only %d", seen, total)
			}
		}
		t.Fatalf("reader did not finish on %q %q", a, b)
	})
}

// blackhole forwards TCP to target until frozen; then it drops whatever
// either side sends, without closing anything, as a dead route does.
type blackhole struct {
	l      net.Listener
	target string
	frozen atomic.Bool
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{l: l, target: target}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go b.pipe(c, up)
			go b.pipe(up, c)
		}
	}()
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if b.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// A snapshot transfer to a peer that stops answering, without the
// connection being closed, fails once keepalive notices (here within
// 10 s + 1 s), instead of hanging until TCP gives up many minutes later.
func TestSendSnapshotToBlackholedPeerFails(t *testing.T) {
	old := peerKeepaliveTimeout
	peerKeepaliveTimeout = time.Second
	defer func() { peerKeepaliveTimeout = old }()
	addr := serve(t, 2, Handlers{Snapshot: func(m *raftpb.Message, next func() ([]byte, []byte, error)) error {
		for {
			if _, _, err := next(); err != nil {
				return err
			}
		}
	}})
	bh := newBlackhole(t, addr)
	tr := sender(t, 2, bh.l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := tr.SendSnapshot(ctx, snapMsg(), func(fn func(k, v []byte) error) error {
		v := make([]byte, 4096)
		for i := 0; ; i++ {
			if i == 1000 {
				bh.frozen.Store(true) // mid-transfer
			}
			if err := fn([]byte(fmt.Sprintf("k%09d", i)), v); err != nil {
				return err
			}
		}
	})
	took := time.Since(start)
	if err == nil || ctx.Err() != nil || took > 30*time.Second {
		t.Fatalf("SendSnapshot to a blackholed peer: %v after %v; want an error within 30 s", err, took)
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}
