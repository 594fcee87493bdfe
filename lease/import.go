package lease

import "github.com/cockroachdb/pebble/v2"

// Import writes a lease restored from a backup (granted TTL and remaining
// TTL in seconds; 0 remaining: none checkpointed) into b, for a store that
// no Lessor has open yet.
func Import(b *pebble.Batch, l Lease) error {
	return persist(b, &l)
}

// ImportAttachment records that key is attached to lease id, as Attach
// does, for a store that no Lessor has open yet.
func ImportAttachment(b *pebble.Batch, id int64, key []byte) error {
	return b.Set(attachKey(id, key), nil, nil)
}
