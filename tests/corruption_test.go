package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Parameters of TestDamagedDataDir.
const (
	damageWriters   = 8
	damageValueSize = 3 << 10
	// damageAcks is how many acknowledged puts the load waits for before
	// the kill (about two WAL segments of 8 MiB); damageLoadMax bounds it.
	damageAcks    = 4000
	damageLoadMax = 4 * time.Second
)

// TestDamagedDataDir is the fault-injection suite of issue 15. One member
// of the real binary takes writes and is killed with SIGKILL mid-stream;
// each case then damages a copy of its data dir as a disk or an operator
// might, and starts the binary on it. Every case must end in one of:
//
//   - it starts, and every acknowledged write reads back with its value;
//   - it refuses to start, exiting with an error that names the damage;
//   - (damage Pebble only finds when it reads a block) a read fails and the
//     member stops with a corruption error.
//
// Never: a member that serves without an acknowledged write. Cases marked
// mustStart are damage a crash itself can cause (a torn tail) or that the
// Raft WAL makes harmless, which must not cost availability.
func TestDamagedDataDir(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 15))

	src := newMember(t, "--snapshot-count=500")
	p := src.start(t)
	acked := loadUntilKilled(t, src, p, rng)
	t.Logf("%d puts acknowledged before the kill", len(acked))

	type damage func(t *testing.T, dir string, rng *rand.Rand) string
	cases := []struct {
		name      string
		damage    damage
		mustStart bool
	}{
		{"wal torn final record", tornTail, true},
		{"wal newest segment cut at a random offset", cutNewest, false},
		{"wal newest segment cut at another random offset", cutNewest, false},
		{"wal random bytes mid-segment", garbageMidSegment, false},
		{"wal zeroed page", zeroPage, false},
		{"wal hard state corrupted", corruptHardState, false},
		{"wal newest segment deleted", deleteNewest, false},
		{"sstable block corrupted", corruptSSTable, false},
		{"pebble MANIFEST corrupted", corruptManifest, false},
		{"pebble MANIFEST last record corrupted", corruptManifestLast, false},
		{"pebble log garbage mid-file", garbagePebbleLog, true},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			m := *src
			m.dataDir = filepath.Join(t.TempDir(), "data")
			copyDir(t, src.dataDir, m.dataDir)
			t.Logf("damage: %s", tc.damage(t, m.dataDir, rng))
			if tc.name == "pebble MANIFEST last record corrupted" {
				// Pebble would take it for a torn write and drop the
				// edit: storage.Open must refuse it.
				p := startCairn(t, m.args()...)
				if code := p.wait(t); code == 0 || !strings.Contains(p.stderr.String(), "is corrupt at offset") {
					t.Fatalf("exit status %d, want a refusal naming the MANIFEST; stderr:\n%s", code, p.stderr)
				}
				t.Logf("refused to start: %s", lastErrorLine(p.stderr.String()))
				return
			}
			checkRestart(t, &m, acked, tc.mustStart)
		})
	}
}

// loadUntilKilled writes unique keys with random values from several
// writers and kills p once damageAcks are acknowledged; it returns the
// acknowledged key/value pairs.
func loadUntilKilled(t *testing.T, m *member, p *proc, rng *rand.Rand) map[string]string {
	t.Helper()
	cli := newClient(t, m)
	defer cli.Close()
	var mu sync.Mutex
	acked := map[string]string{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range damageWriters {
		wseed := rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.NewChaCha8([32]byte{byte(w), byte(wseed), byte(wseed >> 8)})
			buf := make([]byte, damageValueSize)
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = r.Read(buf)
				k, v := fmt.Sprintf("d/%d/%06d", w, i), string(buf)
				if _, err := cli.Put(ctx, k, v); err != nil {
					return
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(damageLoadMax)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= damageAcks {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill(t)
	cancel()
	wg.Wait()
	return acked
}

// checkRestart starts m and checks the outcome against acked.
func checkRestart(t *testing.T, m *member, acked map[string]string, mustStart bool) {
	t.Helper()
	p := startCairn(t, m.args()...)
	select {
	case <-p.stderr.ready:
	case <-p.exited:
		msg := lastErrorLine(p.stderr.String())
		if mustStart {
			t.Fatalf("refused to start, want a start: %s", msg)
		}
		if p.cmd.ProcessState.ExitCode() == 0 || !clearError(msg) {
			t.Fatalf("exited (code %d) without a clear error; stderr:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr)
		}
		t.Logf("refused to start: %s", msg)
		return
	case <-time.After(startTimeout):
		t.Fatalf("not ready after %v; stderr:\n%s", startTimeout, p.stderr)
	}
	if repair := repairLine(p.stderr.String()); repair != "" {
		t.Logf("started after %s", repair)
	}
	cli := newClient(t, m)
	defer cli.Close()
	got, err := readAll(cli)
	if err != nil {
		// Damage found at read time: the member must stop, not go on
		// serving from bad data.
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("a read failed (%v) but the member kept running; stderr:\n%s", err, p.stderr)
		}
		msg := lastErrorLine(p.stderr.String())
		if mustStart || !strings.Contains(msg, "corrupt") {
			t.Fatalf("a read failed (%v) and the member stopped without a corruption error; stderr:\n%s", err, p.stderr)
		}
		t.Logf("started, then stopped at the first read of the damage: %s", msg)
		return
	}
	missing, wrong := 0, 0
	for k, v := range acked {
		switch g, ok := got[k]; {
		case !ok:
			missing++
		case g != v:
			wrong++
		}
	}
	if missing+wrong > 0 {
		t.Fatalf("started healthy but %d of %d acknowledged writes are missing and %d have the wrong value; stderr:\n%s",
			missing, len(acked), wrong, p.stderr)
	}
	t.Logf("started; all %d acknowledged writes present", len(acked))
	p.stop(t)
}

// readAll reads every key under d/ in pages.
func readAll(cli *clientv3.Client) (map[string]string, error) {
	out := map[string]string{}
	key, end := "d/", clientv3.GetPrefixRangeEnd("d/")
	for {
		ctx, cancel := opCtx()
		resp, err := cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(1000))
		cancel()
		if err != nil {
			return nil, err
		}
		for _, kv := range resp.Kvs {
			out[string(kv.Key)] = string(kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// clearError reports whether an exit message names the damage.
func clearError(msg string) bool {
	for _, s := range []string{"wal:", "refusing to start", "corrupt", "checksum", "pebble"} {
		if strings.Contains(strings.ToLower(msg), s) {
			return true
		}
	}
	return false
}

func lastErrorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "error") || strings.Contains(lines[i], "ERROR") {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

func repairLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "repairing") {
			return l
		}
	}
	return ""
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if info.Name() == "LOCK" {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy data dir: %v", err)
	}
}

// The WAL's record framing (package wal's doc): length and CRC-32C, each
// uint32 little-endian, then the type byte and the data.
const (
	walHeaderLen = 8
	walRecState  = 3
)

type walRecord struct {
	off, end int64
	typ      byte
}

// walRecords lists the records of a segment up to its unused zero tail.
func walRecords(t *testing.T, path string) []walRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []walRecord
	for off := int64(0); off+walHeaderLen < int64(len(b)); {
		n := int64(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 || off+walHeaderLen+n > int64(len(b)) {
			break
		}
		out = append(out, walRecord{off, off + walHeaderLen + n, b[off+walHeaderLen]})
		off += walHeaderLen + n
	}
	return out
}

func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	sort.Strings(segs)
	if len(segs) == 0 {
		t.Fatalf("no WAL segments in %s", dir)
	}
	return segs
}

// newestWithRecords is the newest segment and its records; if that one
// holds only its header records (just cut), the one before it.
func newestWithRecords(t *testing.T, dir string) (string, []walRecord) {
	segs := walSegments(t, dir)
	for i := len(segs) - 1; i >= 0; i-- {
		if recs := walRecords(t, segs[i]); len(recs) > 8 || i == 0 {
			return segs[i], recs
		}
	}
	panic("unreachable")
}

func overwrite(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// tornTail writes half a record after the newest segment's last one: a
// write the crash cut short, never acknowledged.
func tornTail(t *testing.T, dir string, rng *rand.Rand) string {
	segs := walSegments(t, dir)
	path := segs[len(segs)-1]
	recs := walRecords(t, path)
	end := recs[len(recs)-1].end
	rec := make([]byte, 8, 4096)
	binary.LittleEndian.PutUint32(rec, 4000)
	binary.LittleEndian.PutUint32(rec[4:], rng.Uint32())
	rec = append(rec, randomBytes(rng, 1500)...)
	overwrite(t, path, end, rec)
	return fmt.Sprintf("half a record at offset %d of %s", end, filepath.Base(path))
}

func cutNewest(t *testing.T, dir string, rng *rand.Rand) string {
	path, recs := newestWithRecords(t, dir)
	from, to := recs[2].end, recs[len(recs)-1].end
	off := from + rng.Int64N(to-from)
	if err := os.Truncate(path, off); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s cut at offset %d of %d bytes of records", filepath.Base(path), off, to)
}

func garbageMidSegment(t *testing.T, dir string, rng *rand.Rand) string {
	path, recs := newestWithRecords(t, dir)
	r := recs[3+rng.IntN(len(recs)/2)]
	off := r.off + rng.Int64N(r.end-r.off)
	overwrite(t, path, off, randomBytes(rng, 256))
	return fmt.Sprintf("256 random bytes at offset %d of %s (%d records)", off, filepath.Base(path), len(recs))
}

func zeroPage(t *testing.T, dir string, rng *rand.Rand) string {
	path, recs := newestWithRecords(t, dir)
	end := recs[len(recs)-1].end
	off := (recs[2].end/4096 + 1 + rng.Int64N(max(1, end/4096-3))) * 4096
	overwrite(t, path, off, make([]byte, 4096))
	return fmt.Sprintf("page at offset %d of %s zeroed (records end at %d)", off, filepath.Base(path), end)
}

func corruptHardState(t *testing.T, dir string, rng *rand.Rand) string {
	path, recs := newestWithRecords(t, dir)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].typ == walRecState {
			off := recs[i].off + walHeaderLen + 1 + rng.Int64N(recs[i].end-recs[i].off-walHeaderLen-1)
			overwrite(t, path, off, []byte{0xff})
			return fmt.Sprintf("last hard state record of %s (offset %d, %d of %d records) damaged at %d",
				filepath.Base(path), recs[i].off, i+1, len(recs), off)
		}
	}
	t.Fatalf("no hard state record in %s", path)
	return ""
}

func deleteNewest(t *testing.T, dir string, rng *rand.Rand) string {
	segs := walSegments(t, dir)
	if len(segs) < 2 {
		t.Skip("only one WAL segment")
	}
	if err := os.Remove(segs[len(segs)-1]); err != nil {
		t.Fatal(err)
	}
	return "deleted " + filepath.Base(segs[len(segs)-1])
}

func largestFile(t *testing.T, pattern string) string {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	var best string
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > size {
			best, size = f, st.Size()
		}
	}
	if best == "" {
		t.Skipf("no file matches %s", pattern)
	}
	return best
}

func corruptSSTable(t *testing.T, dir string, rng *rand.Rand) string {
	path := largestFile(t, filepath.Join(dir, "db", "*.sst"))
	st, _ := os.Stat(path)
	off := st.Size()/4 + rng.Int64N(st.Size()/4)
	overwrite(t, path, off, randomBytes(rng, 64))
	return fmt.Sprintf("64 random bytes at offset %d of %s (%d bytes)", off, filepath.Base(path), st.Size())
}

// corruptManifest damages a record of Pebble's MANIFEST that has records
// after it (corruptManifestLast damages the last one).
func corruptManifest(t *testing.T, dir string, rng *rand.Rand) string {
	path := largestFile(t, filepath.Join(dir, "db", "MANIFEST-*"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Pebble's record chunks: 7-byte header (CRC, uint16 length, type),
	// payload; 32 KiB blocks whose tails shorter than a header are zeros.
	var chunks [][2]int
	for off := 0; off+7 <= len(b); {
		if blockEnd := (off/(32<<10) + 1) * (32 << 10); blockEnd-off < 7 {
			off = blockEnd
			continue
		}
		n := int(binary.LittleEndian.Uint16(b[off+4:]))
		chunks = append(chunks, [2]int{off, off + 7 + n})
		off += 7 + n
	}
	if len(chunks) < 2 {
		t.Skipf("%s holds %d records", path, len(chunks))
	}
	c := chunks[rng.IntN(len(chunks)-1)]
	off := int64(c[0] + 7 + rng.IntN(max(1, c[1]-c[0]-7)))
	overwrite(t, path, off, randomBytes(rng, 8))
	return fmt.Sprintf("8 random bytes at offset %d of %s (%d bytes, record %d..%d of %d records)", off, filepath.Base(path), len(b), c[0], c[1], len(chunks))
}

// corruptManifestLast overwrites the last bytes of the newest MANIFEST's
// last record with non-zero bytes: a record of full length that fails its
// checksum, which no torn write leaves (storage's tornAt).
func corruptManifestLast(t *testing.T, dir string, rng *rand.Rand) string {
	path := largestFile(t, filepath.Join(dir, "db", "MANIFEST-*"))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for off := 0; off+7 <= len(b); {
		if blockEnd := (off/(32<<10) + 1) * (32 << 10); blockEnd-off < 7 {
			off = blockEnd
			continue
		}
		last = off
		off += 7 + int(binary.LittleEndian.Uint16(b[off+4:]))
	}
	if last < 0 || len(b)-last < 8 {
		t.Skipf("%s has no last record with a payload (%d bytes)", path, len(b))
	}
	n := min(8, len(b)-last-7)
	junk := make([]byte, n)
	for i := range junk {
		junk[i] = byte(1 + rng.IntN(255))
	}
	overwrite(t, path, int64(len(b)-n), junk)
	return fmt.Sprintf("%d non-zero random bytes at the end of %s (%d bytes; last record at %d)", n, filepath.Base(path), len(b), last)
}

// garbagePebbleLog is the damage issue 15 was found with: 256 bytes of
// garbage in the middle of the state LSM's newest log file.
func garbagePebbleLog(t *testing.T, dir string, rng *rand.Rand) string {
	path := largestFile(t, filepath.Join(dir, "db", "*.log"))
	st, _ := os.Stat(path)
	if st.Size() < 4096 {
		t.Skipf("%s holds %d bytes", path, st.Size())
	}
	off := st.Size()/4 + rng.Int64N(st.Size()/2)
	overwrite(t, path, off, randomBytes(rng, 256))
	return fmt.Sprintf("256 random bytes at offset %d of %s (%d bytes)", off, filepath.Base(path), st.Size())
}
