package client

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompareAndSwap writes value to key only if the key's ModRevision is still
// expectedModRev; expectedModRev 0 means "only if the key does not exist".
// It is one Txn, so no write can slip in between the check and the put.
//
// When the swap happens, ok is true and rev is the revision of the write
// (the key's new ModRevision). When it does not, ok is false and rev is the
// key's current ModRevision (0 if it does not exist): read it again and
// retry with that. err is only for failed requests.
func (c *Client) CompareAndSwap(ctx context.Context, key string, expectedModRev int64, value string, opts ...PutOption) (ok bool, rev int64, err error) {
	resp, err := c.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectedModRev)).
		Then(clientv3.OpPut(key, value, etcdPutOpts(opts)...)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return false, 0, c.wrap("compare-and-swap "+key, err)
	}
	return resp.Succeeded, txnRevision(resp), nil
}

// CompareAndDelete deletes key only if its ModRevision is still
// expectedModRev. ok and rev are as for CompareAndSwap: on success rev is
// the revision of the deletion; otherwise the key's current ModRevision
// (0 if it does not exist).
func (c *Client) CompareAndDelete(ctx context.Context, key string, expectedModRev int64) (ok bool, rev int64, err error) {
	resp, err := c.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", expectedModRev)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return false, 0, c.wrap("compare-and-delete "+key, err)
	}
	return resp.Succeeded, txnRevision(resp), nil
}

// txnRevision is the revision a compare-and-* call reports: the Txn's
// revision if it succeeded, else the current ModRevision the Else branch
// read.
func txnRevision(resp *clientv3.TxnResponse) int64 {
	if resp.Succeeded {
		return resp.Header.Revision
	}
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
		return kvs[0].ModRevision
	}
	return 0
}
