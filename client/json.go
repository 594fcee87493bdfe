package client

import (
	"context"
	"encoding/json"
	"fmt"
)

// PutJSON stores v, encoded with encoding/json, at key and returns the
// revision of the write. It fails before writing if v cannot be encoded.
func PutJSON[T any](ctx context.Context, c *Client, key string, v T, opts ...PutOption) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("client: put json %s: %w", key, err)
	}
	return c.Put(ctx, key, string(b), opts...)
}

// GetJSON reads key and decodes its value into a T with encoding/json. It
// also returns the raw KeyValue, whose ModRevision is what CompareAndSwapJSON
// expects. It fails with ErrNotFound if the key does not exist, and with
// the decoding error (wrapped) if the value is not a JSON T.
func GetJSON[T any](ctx context.Context, c *Client, key string) (T, KeyValue, error) {
	var v T
	kv, err := c.Get(ctx, key)
	if err != nil {
		return v, KeyValue{}, err
	}
	if err := json.Unmarshal([]byte(kv.Value), &v); err != nil {
		return v, kv, fmt.Errorf("client: get json %s at revision %d: %w", key, kv.ModRevision, err)
	}
	return v, kv, nil
}

// CompareAndSwapJSON is CompareAndSwap with v encoded by encoding/json.
func CompareAndSwapJSON[T any](ctx context.Context, c *Client, key string, expectedModRev int64, v T, opts ...PutOption) (ok bool, rev int64, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, 0, fmt.Errorf("client: compare-and-swap json %s: %w", key, err)
	}
	return c.CompareAndSwap(ctx, key, expectedModRev, string(b), opts...)
}
