package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-kv/cairn/mvcc"
	"github.com/cairn-kv/cairn/storage"
)

// hashedKeyspaces are the replicated keyspaces Hash covers besides the
// versions: leases, lease attachments, members, alarms, auth.
var hashedKeyspaces = []byte{storage.KeyspaceLeases, storage.KeyspaceAttach, storage.KeyspaceMembers, storage.KeyspaceAlarms, storage.KeyspaceAuth}

// hashedMeta are the replicated meta keys Hash covers: the revision, the
// compacted revision, the cluster ID and the removed members. Local
// bookkeeping (applied index, physical compaction progress, this member's
// ID) is left out, as etcd's Hash ignores its consistent index and term.
var hashedMeta = [][]byte{storage.MetaKey("rev"), storage.MetaKey("compact"), storage.MetaKey("cluster-id"), storage.MetaKey("removed/")}

// Hash is a CRC-32C of the member's whole replicated state (etcd's
// Maintenance.Hash, a consistency check between members): every version a
// read can still reach, as mvcc.ForEachVersion gives them (so members agree
// whatever their physical compaction's progress), then the leases,
// attachments, members, alarms, auth state and replicated meta keys. Two
// members at the same applied index have the same hash. The header's
// revision is the store revision hashed.
func (m *Member) Hash(ctx context.Context) (*pb.HashResponse, error) {
	snap := m.eng.DB.NewSnapshot()
	defer snap.Close()
	meta, err := mvcc.ReadExportMeta(snap)
	if err != nil {
		return nil, err
	}
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	var num [8]byte
	writeInt := func(v int64) {
		binary.BigEndian.PutUint64(num[:], uint64(v))
		h.Write(num[:])
	}
	n := 0
	err = mvcc.ForEachVersion(snap, meta.Compacted, func(v mvcc.Version) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		writeInt(int64(len(v.KV.Key)))
		h.Write(v.KV.Key)
		writeInt(v.KV.ModRevision)
		writeInt(v.Sub)
		if v.Tombstone {
			h.Write([]byte{'t'})
			return nil
		}
		writeInt(v.KV.CreateRevision)
		writeInt(v.KV.Version)
		writeInt(v.KV.Lease)
		writeInt(int64(len(v.KV.Value)))
		h.Write(v.KV.Value)
		return nil
	})
	if err != nil {
		return nil, err
	}
	hashRange := func(lo, hi []byte) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			writeInt(int64(len(it.Key())))
			h.Write(it.Key())
			writeInt(int64(len(it.Value())))
			h.Write(it.Value())
		}
		return it.Error()
	}
	for _, ks := range hashedKeyspaces {
		if err := hashRange([]byte{ks}, storage.KeyspaceEnd(ks)); err != nil {
			return nil, err
		}
	}
	for _, k := range hashedMeta {
		// A key, or every key under a prefix ending in '/'.
		hi := append(bytes.Clone(k), 0)
		if k[len(k)-1] == '/' {
			hi = append(bytes.Clone(k[:len(k)-1]), '/'+1)
		}
		if err := hashRange(k, hi); err != nil {
			return nil, err
		}
	}
	return &pb.HashResponse{Header: m.Header(meta.Rev), Hash: h.Sum32()}, nil
}
