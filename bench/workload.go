package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseTTL is the TTL, in seconds, of the leases lease-keepalive renews, as
// in etcd's tool; long enough that none expires during a run.
const leaseTTL = 100

// newWorkload returns the workload of every command but watch.
func newWorkload(cfg Config) (workload, error) {
	keys := keyGen{size: cfg.KeySize, space: int64(cfg.KeySpaceSize), sequential: cfg.SequentialKeys}
	val := randomValue(cfg.ValSize)
	var readOpts []clientv3.OpOption
	if cfg.Consistency == "s" {
		readOpts = append(readOpts, clientv3.WithSerializable())
	}
	switch cfg.Command {
	case CmdPut:
		return workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
			resp, err := w.c.Put(ctx, keys.key(w, n), val)
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		}}, nil

	case CmdRange:
		opts := readOpts
		if cfg.End != "" {
			opts = append(opts, clientv3.WithRange(cfg.End))
		}
		if cfg.Limit > 0 {
			opts = append(opts, clientv3.WithLimit(cfg.Limit))
		}
		if cfg.Stream {
			return workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
				return streamRange(ctx, w.c, cfg.Key, opts)
			}}, nil
		}
		return workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
			resp, err := w.c.Get(ctx, cfg.Key, opts...)
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		}}, nil

	case CmdTxnPut:
		return workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
			// One transaction may not put a key twice: its keys follow
			// the first one, which is sequential or random.
			ops := make([]clientv3.Op, cfg.TxnOps)
			first := keys.index(w, n*int64(cfg.TxnOps))
			for i := range ops {
				ops[i] = clientv3.OpPut(keys.format(w, first+int64(i)), val)
			}
			resp, err := w.c.Txn(ctx).Then(ops...).Commit()
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		}}, nil

	case CmdTxnMixed:
		readShare := cfg.RWRatio / (cfg.RWRatio + 1)
		return workload{op: func(ctx context.Context, w *worker, n int64) (int64, error) {
			var op clientv3.Op
			if w.rng.Float64() < readShare {
				op = clientv3.OpGet(keys.key(w, n), readOpts...)
			} else {
				op = clientv3.OpPut(keys.key(w, n), val)
			}
			resp, err := w.c.Txn(ctx).Then(op).Commit()
			if err != nil {
				return 0, err
			}
			return resp.Header.Revision, nil
		}}, nil

	case CmdLeaseKeepalive:
		return workload{
			setup: func(ctx context.Context, w *worker) error {
				resp, err := w.c.Grant(ctx, leaseTTL)
				if err != nil {
					return err
				}
				w.lease = resp.ID
				return nil
			},
			op: func(ctx context.Context, w *worker, n int64) (int64, error) {
				resp, err := w.c.KeepAliveOnce(ctx, w.lease)
				if err != nil {
					return 0, err
				}
				return resp.Revision, nil
			},
		}, nil
	}
	return workload{}, fmt.Errorf("bench: no workload for command %q", cfg.Command)
}

// streamRange reads a range through KV.RangeStream (etcd 3.7), dropping
// each chunk as it arrives, and returns the revision of the last chunk's
// header. The stream must end with that header: a stream cut short is an
// error.
func streamRange(ctx context.Context, c *clientv3.Client, key string, opts []clientv3.OpOption) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := c.GetStream(ctx, key, opts...)
	if err != nil {
		return 0, err
	}
	rev := int64(0)
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return 0, err
		}
		if resp.Header != nil {
			rev = resp.Header.Revision
		}
	}
	if rev == 0 {
		return 0, fmt.Errorf("bench: range stream ended without a header")
	}
	return rev, nil
}

// keyGen makes the keys of put-like commands.
type keyGen struct {
	size       int
	space      int64
	sequential bool
}

// key returns the key of request n.
func (g keyGen) key(w *worker, n int64) string { return g.format(w, g.index(w, n)) }

// index returns the number of request n's key: n mod space when
// sequential, a random one of the space otherwise.
func (g keyGen) index(w *worker, n int64) int64 {
	if g.sequential {
		return n % g.space
	}
	return w.rng.Int64N(g.space)
}

// format returns key number i mod space.
func (g keyGen) format(w *worker, i int64) string {
	w.buf = formatKey(w.buf[:0], i%g.space, g.size)
	return string(w.buf)
}

// formatKey appends i in decimal, zero-padded on the left to size bytes.
// Validate ensures the digits fit.
func formatKey(dst []byte, i int64, size int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], i, 10)
	for range size - len(d) {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// randomValue returns n random printable bytes, the value every put writes.
func randomValue(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}
