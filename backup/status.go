package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"hash/maphash"
	"io"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
)

// Status is what `etcdutl snapshot status` reports of a snapshot file, with
// its JSON field names.
type Status struct {
	// Hash is a CRC-32C over every bucket name, key and value, in file order.
	Hash uint32 `json:"hash"`
	// Revision is the newest revision in the key bucket.
	Revision int64 `json:"revision"`
	// TotalKey is the number of keys alive at Revision.
	TotalKey int `json:"totalKey"`
	// TotalSize is the bbolt file's size in bytes.
	TotalSize int64 `json:"totalSize"`
	// Version is the storage version recorded in the file ("" before etcd 3.6).
	Version string `json:"version"`
}

// ReadStatus reads a snapshot file (etcd's or Cairn's) as etcdutl snapshot
// status does: bbolt's integrity check first, then one pass over every
// bucket. Live keys are counted by 64-bit hashes of the keys, 8 bytes each
// in memory, rather than by the keys themselves.
func ReadStatus(path string) (Status, error) {
	var ds Status
	if err := CheckFile(path); err != nil {
		return ds, err
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return ds, err
	}
	defer db.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	seed := maphash.MakeSeed()
	live := map[uint64]struct{}{}
	err = db.View(func(tx *bolt.Tx) error {
		var problems []string
		for err := range tx.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			return fmt.Errorf("snapshot file integrity check failed. %d errors found.\n%s", len(problems), strings.Join(problems, "\n"))
		}
		ds.TotalSize = tx.Size()
		if mb := tx.Bucket(bucketMeta); mb != nil {
			ds.Version = string(mb.Get([]byte("storageVersion")))
		}
		c := tx.Cursor()
		for name, _ := c.First(); name != nil; name, _ = c.Next() {
			b := tx.Bucket(name)
			if b == nil {
				return fmt.Errorf("nil bucket: %q", name)
			}
			h.Write(name)
			isKey := bytes.Equal(name, bucketKey)
			if err := b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				if !isKey {
					return nil
				}
				main, tombstone, err := parseRevKey(k)
				if err != nil {
					return err
				}
				ds.Revision = main
				key, err := kvKey(v)
				if err != nil {
					return fmt.Errorf("cannot unmarshal value, key: %q value: %q err: %w", k, v, err)
				}
				kh := maphash.Bytes(seed, key)
				if tombstone {
					delete(live, kh)
				} else {
					live[kh] = struct{}{}
				}
				return nil
			}); err != nil {
				return fmt.Errorf("error during bucket key iteration, name: %q err: %w", name, err)
			}
		}
		return nil
	})
	ds.TotalKey = len(live)
	ds.Hash = h.Sum32()
	return ds, err
}

// parseRevKey reads a key bucket key: 17 bytes, or 18 with a 't'.
func parseRevKey(k []byte) (main int64, tombstone bool, err error) {
	switch {
	case len(k) == 17 && k[8] == '_':
	case len(k) == 18 && k[8] == '_' && k[17] == 't':
		tombstone = true
	default:
		return 0, false, fmt.Errorf("cannot parse revision key: %q", k)
	}
	return int64(binary.BigEndian.Uint64(k)), tombstone, nil
}

// ErrHashMismatch is returned for a snapshot whose SHA-256 trailer does not
// match its contents: it was cut short or damaged.
var ErrHashMismatch = errors.New("backup: snapshot file integrity check failed: sha256 mismatch (the file is truncated or corrupt)")

// ErrNoHash is returned for a snapshot file without a SHA-256 trailer (a
// copy of a data dir's db file, not `snapshot save` output).
var ErrNoHash = errors.New("backup: snapshot file has no sha256 trailer (use --skip-hash-check for a copied db file)")

// VerifySHA256 checks the trailer that `snapshot save` appends, as etcdutl
// restore does: a file whose size is 32 more than a multiple of 512 ends
// with the SHA-256 of everything before it. It returns the size of the
// bbolt part.
func VerifySHA256(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size%512 != sha256.Size {
		return 0, ErrNoHash
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, size-sha256.Size); err != nil {
		return 0, err
	}
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(f, want); err != nil {
		return 0, err
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return 0, ErrHashMismatch
	}
	return size - sha256.Size, nil
}

// kvKey returns the key (field 1) of a marshalled mvccpb.KeyValue without
// decoding the rest.
func kvKey(b []byte) ([]byte, error) {
	var key []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			key = v
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return key, nil
}

// bbolt's meta page layout (bbolt internal/common/meta.go): after a 16-byte
// page header, magic, version, page size, flags, root bucket (16 bytes),
// freelist page, high-water page id, txid, then an FNV-64a checksum of
// what precedes it.
const (
	boltMagic      = 0xED0CDAED
	boltPageHeader = 16
	boltMetaSize   = 64
)

// CheckFile checks, before anything maps the file, that path is a bbolt
// file whose pages are all there: bbolt maps the file and would crash the
// process (SIGBUS) on a truncated one. A SHA-256 trailer, if the size says
// there is one, must match.
func CheckFile(path string) error { return checkFile(path, false) }

// checkFile is CheckFile; with skipHash a trailer is not verified.
func checkFile(path string, skipHash bool) error {
	size, err := VerifySHA256(path)
	if skipHash && errors.Is(err, ErrHashMismatch) {
		size, err = fileSize(path)
		size -= sha256.Size
	}
	if errors.Is(err, ErrNoHash) {
		st, serr := os.Stat(path)
		if serr != nil {
			return serr
		}
		size, err = st.Size(), nil
	}
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, boltPageHeader+boltMetaSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		return fmt.Errorf("backup: %s is not a snapshot file: %w", path, err)
	}
	m0, ok0 := parseMeta(head[boltPageHeader:])
	if m0.pageSize == 0 || m0.magic != boltMagic {
		return fmt.Errorf("backup: %s is not a snapshot file (no bbolt header)", path)
	}
	best, ok := m0, ok0
	second := make([]byte, boltMetaSize)
	if _, err := f.ReadAt(second, int64(m0.pageSize)+boltPageHeader); err == nil {
		if m1, ok1 := parseMeta(second); ok1 && (!ok || m1.txid > best.txid) {
			best, ok = m1, true
		}
	}
	if !ok {
		return fmt.Errorf("backup: %s: both bbolt meta pages are corrupt", path)
	}
	if size%int64(best.pageSize) != 0 {
		return fmt.Errorf("backup: %s is truncated or damaged: %d bytes is not a whole number of %d-byte pages", path, size, best.pageSize)
	}
	if need := int64(best.pgid) * int64(best.pageSize); size < need {
		return fmt.Errorf("backup: %s is truncated: its pages need %d bytes, it has %d", path, need, size)
	}
	return nil
}

type boltMeta struct {
	magic, pageSize uint32
	pgid, txid      uint64
}

func parseMeta(b []byte) (boltMeta, bool) {
	le := binary.LittleEndian
	m := boltMeta{magic: le.Uint32(b[0:]), pageSize: le.Uint32(b[8:]), pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	h := fnv.New64a()
	h.Write(b[:56])
	return m, m.magic == boltMagic && m.pageSize >= 512 && h.Sum64() == le.Uint64(b[56:])
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
