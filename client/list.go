package client

import (
	"context"
	"errors"
	"iter"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A ListOption changes what List and ListSeq read.
type ListOption func(*listOptions)

type listOptions struct {
	rev      int64
	keysOnly bool
	pageSize int64
}

// ListAtRevision reads the keys as of revision rev instead of the current
// one. A compacted revision fails with rpctypes.ErrCompacted.
func ListAtRevision(rev int64) ListOption { return func(o *listOptions) { o.rev = rev } }

// ListKeysOnly leaves values out: KeyValue.Value is empty. (Servers that
// serve keys-only reads from an index, etcd 3.7 and Cairn, also leave
// Lease out.)
func ListKeysOnly() ListOption { return func(o *listOptions) { o.keysOnly = true } }

// ListPageSize sets how many keys each Range asks for when the server does
// not serve RangeStream (default 1000). It changes nothing on servers that
// stream.
func ListPageSize(n int64) ListOption { return func(o *listOptions) { o.pageSize = n } }

// List calls fn with every key that starts with prefix ("" means all
// keys), in key order, as of one revision, which it returns (the
// ListAtRevision one, or the store revision when the read started). It reads
// through KV.RangeStream (etcd 3.7 and Cairn), which sends the keys in
// chunks as fn consumes them, so neither side holds the whole prefix in
// memory: this is the way to read a prefix of any size. On a server that
// answers RangeStream with Unimplemented (etcd before 3.7, gRPC proxies),
// it reads pages of Range at the revision of the first page instead, with
// the same result.
//
// An error from fn stops the read and is returned as it is. Other errors
// come from the server, wrapped (rpctypes.ErrCompacted when the revision
// is compacted, even midway); fn may have seen some keys by then.
func (c *Client) List(ctx context.Context, prefix string, fn func(KeyValue) error, opts ...ListOption) (int64, error) {
	o := listOptions{pageSize: getPageSize}
	for _, f := range opts {
		f(&o)
	}
	key, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
	if prefix == "" {
		key, end = "\x00", "\x00"
	}
	getOpts := []clientv3.OpOption{clientv3.WithRange(end)}
	if o.rev > 0 {
		getOpts = append(getOpts, clientv3.WithRev(o.rev))
	}
	if o.keysOnly {
		getOpts = append(getOpts, clientv3.WithKeysOnly())
	}
	var fnErr error
	call := func(kv KeyValue) bool {
		fnErr = fn(kv)
		return fnErr == nil
	}
	rev, started, err := c.listStream(ctx, key, getOpts, call)
	if err != nil && !started && status.Code(err) == codes.Unimplemented {
		rev, err = c.listPages(ctx, key, getOpts, o, call)
	}
	switch {
	case fnErr != nil:
		return 0, fnErr
	case err != nil:
		return 0, c.wrap("list "+prefix, rpctypes.Error(err))
	case o.rev > 0:
		return o.rev, nil
	}
	return rev, nil
}

// ListSeq is List as an iterator: range over it to get each key, or an
// error as the last pair. Breaking out of the loop ends the read and
// releases its stream. Use List to learn the revision read.
func (c *Client) ListSeq(ctx context.Context, prefix string, opts ...ListOption) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		stopped := errors.New("stopped")
		_, err := c.List(ctx, prefix, func(kv KeyValue) error {
			if !yield(kv, nil) {
				return stopped
			}
			return nil
		}, opts...)
		if err != nil && err != stopped {
			yield(KeyValue{}, err)
		}
	}
}

// listStream reads through RangeStream until fn returns false, and
// returns the header's revision. started tells whether any chunk arrived
// (after which an error cannot be answered by falling back).
func (c *Client) listStream(ctx context.Context, key string, opts []clientv3.OpOption, fn func(KeyValue) bool) (rev int64, started bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	ch, err := c.etcd.GetStream(ctx, key, opts...)
	if err != nil {
		cancel()
		return 0, false, err
	}
	defer func() {
		// Stop the stream and let clientv3's reader goroutine finish: it
		// blocks sending to ch until someone receives.
		cancel()
		for range ch {
		}
	}()
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return 0, started, err
		}
		started = true
		for _, kv := range resp.Kvs {
			if !fn(fromPB(kv)) {
				return 0, true, nil
			}
		}
		if resp.Header != nil {
			rev = resp.Header.Revision
		}
	}
	return rev, started, ctx.Err()
}

// listPages reads with Range, o.pageSize keys at a time, all at the
// revision of the first page.
func (c *Client) listPages(ctx context.Context, key string, opts []clientv3.OpOption, o listOptions, fn func(KeyValue) bool) (int64, error) {
	rev := o.rev
	for {
		page := append(opts[:len(opts):len(opts)], clientv3.WithLimit(o.pageSize))
		if rev > 0 {
			page = append(page, clientv3.WithRev(rev))
		}
		resp, err := c.etcd.Get(ctx, key, page...)
		if err != nil {
			return 0, err
		}
		if rev <= 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if !fn(fromPB(kv)) {
				return 0, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
