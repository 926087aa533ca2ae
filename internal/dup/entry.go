package dup

import (
	"fmt"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Batch limits (operations.md §1): a batch is cut once its writes' bodies reach the
// duplicate_log_batch_bytes setting, and never holds more than MaxBatchBytes of them
// (Pegasus's dup_max_allowed_write_size).
const (
	DefaultBatchBytes = 4096
	MaxBatchBytes     = 1 << 20
	// DefaultLinger is the dup_batch_linger_ms default: see [Options].Linger.
	DefaultLinger = 10 * time.Millisecond
)

// Idempotent reports whether rpc names one of the writes that travel to a follower: applying
// one twice leaves what applying it once does.
func Idempotent(rpc string) bool {
	switch rpc {
	case idl.RPCPut, idl.RPCRemove, idl.RPCMultiPut, idl.RPCMultiRemove:
		return true
	}
	return false
}

// Write is one idempotent write of a master partition's log, as a shipper sends it.
type Write struct {
	// Decree is the log index of the entry the write is in (several writes can share one).
	Decree uint64
	// RPC is the write's RPC name (one [Idempotent] accepts) and Body the thrift encoding of
	// its request, which the follower decodes as the master did.
	RPC  string
	Body []byte
	// TimestampUS is the time the master gave the write (its entry's proposal time), in
	// microseconds: the timetag the follower stores the value with.
	TimestampUS int64
	// Hash is the partition hash of the write's key; 0 means [WriteHash] of the write.
	Hash uint64
}

// WriteHash is the partition hash of a write's key, read from its body: 0 when it has none
// (an empty hash key) or the body does not decode.
func WriteHash(w Write) uint64 {
	var hashKey []byte
	switch w.RPC {
	case idl.RPCPut, idl.RPCRemove:
		var k []byte
		if w.RPC == idl.RPCPut {
			var r idl.UpdateRequest
			if idl.Unmarshal(w.Body, &r) != nil {
				return 0
			}
			k = r.Key
		} else {
			var b idl.Blob
			if idl.Unmarshal(w.Body, &b) != nil {
				return 0
			}
			k = b
		}
		h, err := key.HashEncoded(k)
		if err != nil {
			return 0
		}
		return h
	case idl.RPCMultiPut:
		var r idl.MultiPutRequest
		if idl.Unmarshal(w.Body, &r) != nil {
			return 0
		}
		hashKey = r.HashKey
	case idl.RPCMultiRemove:
		var r idl.MultiRemoveRequest
		if idl.Unmarshal(w.Body, &r) != nil {
			return 0
		}
		hashKey = r.HashKey
	}
	if len(hashKey) == 0 {
		return 0
	}
	return key.Hash(hashKey)
}

// Batch is the writes of one RPC_RRDB_RRDB_DUPLICATE.
type Batch struct {
	Req *idl.DuplicateRequest
	// Hash is the partition hash of the batch's last write, sent in the request header.
	Hash uint64
	// Upto is the decree through which every write is shipped once this batch (and those
	// before it) succeeded: a batch that ends inside an entry leaves that entry for the next.
	Upto uint64
	// Writes and Bytes count the batch's writes and their bodies' bytes.
	Writes, Bytes int
}

// Options of the entries a shipper builds.
type Options struct {
	// ClusterID is the master cluster's duplication cluster id.
	ClusterID uint8
	// VerifyTimetag makes the follower apply a put only when it is newer than the value it
	// holds (last writer wins, for two masters duplicating to each other).
	VerifyTimetag bool
	// BatchBytes cuts batches (0: [DefaultBatchBytes]); at most [MaxBatchBytes].
	BatchBytes int
	// Linger is how long a shipper that just sent a batch smaller than BatchBytes (all it
	// had) waits before it reads the log again, so that more writes gather in the next
	// batch: each batch costs an RPC and a raft write (an fsync) on the follower, and
	// without it a busy partition ships a few writes per batch, as many batches as round
	// trips fit. A write made after a quiet spell is shipped at once; under load the lag
	// grows by up to Linger. The wait ends early once the log holds BatchBytes of writes
	// (a full batch). 0 turns it off.
	Linger time.Duration
}

// batchBytes is the size batches are cut at.
func (o Options) batchBytes() int {
	if o.BatchBytes <= 0 {
		return DefaultBatchBytes
	}
	return min(o.BatchBytes, MaxBatchBytes)
}

// Batches cuts ws, the writes of the log entries through decree last (in log order), into
// batches. ws may be empty: there is then no batch, and everything through last is shipped.
func Batches(ws []Write, last uint64, o Options) []Batch {
	limit := o.batchBytes()
	var out []Batch
	cur := Batch{Req: &idl.DuplicateRequest{}}
	for i, w := range ws {
		cur.Req.Entries = append(cur.Req.Entries, Entry(w, o))
		cur.Writes++
		cur.Bytes += len(w.Body)
		if i+1 < len(ws) && cur.Bytes < limit && cur.Bytes+len(ws[i+1].Body) <= MaxBatchBytes {
			continue
		}
		if cur.Hash = w.Hash; cur.Hash == 0 {
			cur.Hash = WriteHash(w)
		}
		switch {
		case i+1 == len(ws):
			cur.Upto = last
		case ws[i+1].Decree != w.Decree:
			cur.Upto = w.Decree
		default:
			cur.Upto = w.Decree - 1
		}
		out = append(out, cur)
		cur = Batch{Req: &idl.DuplicateRequest{}}
	}
	return out
}

// Entry is the duplicate_entry of one write.
func Entry(w Write, o Options) idl.DuplicateEntry {
	return idl.DuplicateEntry{
		Timestamp:     idl.Some(w.TimestampUS),
		TaskCode:      idl.Some(w.RPC),
		RawMessage:    idl.Some(w.Body),
		ClusterID:     idl.Some(int8(o.ClusterID)),
		VerifyTimetag: o.VerifyTimetag,
	}
}

// Timetag is the timetag of a value written by a write duplicated from cluster clusterID at
// timestampUS (protocol.md §5.2): timestamp<<8 | cluster_id<<1 | delete flag. The timestamp
// keeps its low 56 bits.
func Timetag(timestampUS int64, clusterID uint8, isDelete bool) uint64 {
	t := uint64(timestampUS)&(1<<56-1)<<8 | uint64(clusterID&MaxClusterID)<<1
	if isDelete {
		t |= 1
	}
	return t
}

// Follower is what a follower needs to check a RPC_RRDB_RRDB_DUPLICATE.
type Follower struct {
	// Peers gives the configured cluster ids.
	Peers Peers
	// Self is the follower cluster's own id.
	Self uint8
	// IgnoreOthers accepts writes from unconfigured cluster ids (but never from Self): the
	// [replication] dup_ignore_other_cluster_ids setting.
	IgnoreOthers bool
}

// Check checks every entry of a duplicate request, in order, as a follower must before
// applying any: a configured cluster id that is not its own, an idempotent write with a
// body. It returns StatusOK, or the storage status and hint to refuse the whole request
// with.
func (f Follower) Check(req *idl.DuplicateRequest) (wire.Status, string) {
	for _, e := range req.Entries {
		id := uint8(e.ClusterID.V)
		switch {
		case !e.ClusterID.Set || id > MaxClusterID || (!f.IgnoreOthers && !f.Peers.HasID(id)):
			if id == f.Self && e.ClusterID.Set {
				return wire.StatusInvalidArgument, "self-duplicating"
			}
			return wire.StatusInvalidArgument, "request cluster id is unconfigured"
		case id == f.Self:
			return wire.StatusInvalidArgument, "self-duplicating"
		case !Idempotent(e.TaskCode.V):
			return wire.StatusInvalidArgument, fmt.Sprintf("unrecognized task code %s", e.TaskCode.V)
		case !e.RawMessage.Set || !e.Timestamp.Set:
			return wire.StatusInvalidArgument, "duplicate entry without a message or a timestamp"
		}
	}
	return wire.StatusOK, ""
}
