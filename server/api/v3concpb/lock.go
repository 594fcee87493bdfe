package v3concpb

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// The messages of etcd's v3lock.proto (proto package v3lockpb).

// LockRequest asks for the lock called Name, held under Lease.
type LockRequest struct {
	Name  []byte // 1
	Lease int64  // 2
}

// LockResponse carries the key that holds the lock; it is what Unlock takes.
type LockResponse struct {
	Header *pb.ResponseHeader // 1
	Key    []byte             // 2
}

// UnlockRequest releases the lock held by Key.
type UnlockRequest struct {
	Key []byte // 1
}

// UnlockResponse answers UnlockRequest.
type UnlockResponse struct {
	Header *pb.ResponseHeader // 1
}

func (m *LockRequest) Marshal() ([]byte, error) {
	b := appendBytes(nil, 1, m.Name)
	return appendInt64(b, 2, m.Lease), nil
}

func (m *LockRequest) Unmarshal(b []byte) error {
	*m = LockRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return consumeBytes("LockRequest.name", typ, b, &m.Name)
		case 2:
			return consumeInt64("LockRequest.lease", typ, b, &m.Lease)
		}
		return 0, nil
	})
}

func (m *LockResponse) Marshal() ([]byte, error) {
	b, err := appendProto(nil, 1, m.Header, m.Header == nil)
	if err != nil {
		return nil, err
	}
	return appendBytes(b, 2, m.Key), nil
}

func (m *LockResponse) Unmarshal(b []byte) error {
	*m = LockResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("LockResponse.header", typ, b, m.Header)
		case 2:
			return consumeBytes("LockResponse.key", typ, b, &m.Key)
		}
		return 0, nil
	})
}

func (m *UnlockRequest) Marshal() ([]byte, error) {
	return appendBytes(nil, 1, m.Key), nil
}

func (m *UnlockRequest) Unmarshal(b []byte) error {
	*m = UnlockRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			return consumeBytes("UnlockRequest.key", typ, b, &m.Key)
		}
		return 0, nil
	})
}

func (m *UnlockResponse) Marshal() ([]byte, error) {
	return appendProto(nil, 1, m.Header, m.Header == nil)
}

func (m *UnlockResponse) Unmarshal(b []byte) error {
	*m = UnlockResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("UnlockResponse.header", typ, b, m.Header)
		}
		return 0, nil
	})
}
