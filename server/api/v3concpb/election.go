package v3concpb

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// The messages of etcd's v3election.proto (proto package v3electionpb).

// CampaignRequest campaigns for leadership of the election Name with
// Value, under Lease.
type CampaignRequest struct {
	Name  []byte // 1
	Lease int64  // 2
	Value []byte // 3
}

// CampaignResponse names the key that makes the caller leader.
type CampaignResponse struct {
	Header *pb.ResponseHeader // 1
	Leader *LeaderKey         // 2
}

// LeaderKey identifies a leader: Proclaim and Resign take it.
type LeaderKey struct {
	Name  []byte // 1: the election
	Key   []byte // 2: the leader's key in the election
	Rev   int64  // 3: the key's creation revision
	Lease int64  // 4
}

// LeaderRequest names an election (Leader and Observe).
type LeaderRequest struct {
	Name []byte // 1
}

// LeaderResponse carries the leader's key and value.
type LeaderResponse struct {
	Header *pb.ResponseHeader // 1
	Kv     *mvccpb.KeyValue   // 2
}

// ResignRequest gives up leadership.
type ResignRequest struct {
	Leader *LeaderKey // 1
}

// ResignResponse answers ResignRequest.
type ResignResponse struct {
	Header *pb.ResponseHeader // 1
}

// ProclaimRequest sets a new value for the leader.
type ProclaimRequest struct {
	Leader *LeaderKey // 1
	Value  []byte     // 2
}

// ProclaimResponse answers ProclaimRequest.
type ProclaimResponse struct {
	Header *pb.ResponseHeader // 1
}

func (m *CampaignRequest) Marshal() ([]byte, error) {
	b := appendBytes(nil, 1, m.Name)
	b = appendInt64(b, 2, m.Lease)
	return appendBytes(b, 3, m.Value), nil
}

func (m *CampaignRequest) Unmarshal(b []byte) error {
	*m = CampaignRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return consumeBytes("CampaignRequest.name", typ, b, &m.Name)
		case 2:
			return consumeInt64("CampaignRequest.lease", typ, b, &m.Lease)
		case 3:
			return consumeBytes("CampaignRequest.value", typ, b, &m.Value)
		}
		return 0, nil
	})
}

func (m *CampaignResponse) Marshal() ([]byte, error) {
	b, err := appendProto(nil, 1, m.Header, m.Header == nil)
	if err != nil {
		return nil, err
	}
	return appendMessage(b, 2, m.Leader, m.Leader == nil)
}

func (m *CampaignResponse) Unmarshal(b []byte) error {
	*m = CampaignResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("CampaignResponse.header", typ, b, m.Header)
		case 2:
			if m.Leader == nil {
				m.Leader = new(LeaderKey)
			}
			return consumeMessage("CampaignResponse.leader", typ, b, (*mergedLeaderKey)(m.Leader))
		}
		return 0, nil
	})
}

func (m *LeaderKey) Marshal() ([]byte, error) {
	b := appendBytes(nil, 1, m.Name)
	b = appendBytes(b, 2, m.Key)
	b = appendInt64(b, 3, m.Rev)
	return appendInt64(b, 4, m.Lease), nil
}

func (m *LeaderKey) Unmarshal(b []byte) error {
	*m = LeaderKey{}
	return (*mergedLeaderKey)(m).Unmarshal(b)
}

// mergedLeaderKey unmarshals into a LeaderKey without clearing it first,
// as protobuf merges a message field that occurs more than once.
type mergedLeaderKey LeaderKey

func (m *mergedLeaderKey) Marshal() ([]byte, error) { return (*LeaderKey)(m).Marshal() }

func (m *mergedLeaderKey) Unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			return consumeBytes("LeaderKey.name", typ, b, &m.Name)
		case 2:
			return consumeBytes("LeaderKey.key", typ, b, &m.Key)
		case 3:
			return consumeInt64("LeaderKey.rev", typ, b, &m.Rev)
		case 4:
			return consumeInt64("LeaderKey.lease", typ, b, &m.Lease)
		}
		return 0, nil
	})
}

func (m *LeaderRequest) Marshal() ([]byte, error) {
	return appendBytes(nil, 1, m.Name), nil
}

func (m *LeaderRequest) Unmarshal(b []byte) error {
	*m = LeaderRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			return consumeBytes("LeaderRequest.name", typ, b, &m.Name)
		}
		return 0, nil
	})
}

func (m *LeaderResponse) Marshal() ([]byte, error) {
	b, err := appendProto(nil, 1, m.Header, m.Header == nil)
	if err != nil {
		return nil, err
	}
	return appendProto(b, 2, m.Kv, m.Kv == nil)
}

func (m *LeaderResponse) Unmarshal(b []byte) error {
	*m = LeaderResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("LeaderResponse.header", typ, b, m.Header)
		case 2:
			if m.Kv == nil {
				m.Kv = new(mvccpb.KeyValue)
			}
			return consumeProto("LeaderResponse.kv", typ, b, m.Kv)
		}
		return 0, nil
	})
}

func (m *ResignRequest) Marshal() ([]byte, error) {
	return appendMessage(nil, 1, m.Leader, m.Leader == nil)
}

func (m *ResignRequest) Unmarshal(b []byte) error {
	*m = ResignRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			if m.Leader == nil {
				m.Leader = new(LeaderKey)
			}
			return consumeMessage("ResignRequest.leader", typ, b, (*mergedLeaderKey)(m.Leader))
		}
		return 0, nil
	})
}

func (m *ResignResponse) Marshal() ([]byte, error) {
	return appendProto(nil, 1, m.Header, m.Header == nil)
}

func (m *ResignResponse) Unmarshal(b []byte) error {
	*m = ResignResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("ResignResponse.header", typ, b, m.Header)
		}
		return 0, nil
	})
}

func (m *ProclaimRequest) Marshal() ([]byte, error) {
	b, err := appendMessage(nil, 1, m.Leader, m.Leader == nil)
	if err != nil {
		return nil, err
	}
	return appendBytes(b, 2, m.Value), nil
}

func (m *ProclaimRequest) Unmarshal(b []byte) error {
	*m = ProclaimRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch num {
		case 1:
			if m.Leader == nil {
				m.Leader = new(LeaderKey)
			}
			return consumeMessage("ProclaimRequest.leader", typ, b, (*mergedLeaderKey)(m.Leader))
		case 2:
			return consumeBytes("ProclaimRequest.value", typ, b, &m.Value)
		}
		return 0, nil
	})
}

func (m *ProclaimResponse) Marshal() ([]byte, error) {
	return appendProto(nil, 1, m.Header, m.Header == nil)
}

func (m *ProclaimResponse) Unmarshal(b []byte) error {
	*m = ProclaimResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 {
			if m.Header == nil {
				m.Header = new(pb.ResponseHeader)
			}
			return consumeProto("ProclaimResponse.header", typ, b, m.Header)
		}
		return 0, nil
	})
}
