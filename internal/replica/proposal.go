package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
)

// writeKind identifies the client write a mutation in a raft entry carries.
type writeKind byte

const (
	kindPut writeKind = iota + 1
	kindRemove
	kindMultiPut
	kindMultiRemove
	kindIncr
	kindCheckAndSet
	kindCheckAndMutate
	// kindDuplicate carries the writes of another cluster (RPC_RRDB_RRDB_DUPLICATE, a
	// duplicate_request); a duplication never ships them on (see package dup).
	kindDuplicate
	// kindIngest is a bulk load's ingestion (bulkload.go): always alone in its entry.
	kindIngest
)

// rpcOfKind names the RPC of a write kind that a duplication ships ("" for the others).
func rpcOfKind(k writeKind) string {
	switch k {
	case kindPut:
		return idl.RPCPut
	case kindRemove:
		return idl.RPCRemove
	case kindMultiPut:
		return idl.RPCMultiPut
	case kindMultiRemove:
		return idl.RPCMultiRemove
	}
	return ""
}

// kindOfRPC is the write kind of an idempotent write's RPC name.
func kindOfRPC(rpc string) (writeKind, bool) {
	switch rpc {
	case idl.RPCPut:
		return kindPut, true
	case idl.RPCRemove:
		return kindRemove, true
	case idl.RPCMultiPut:
		return kindMultiPut, true
	case idl.RPCMultiRemove:
		return kindMultiRemove, true
	}
	return 0, false
}

// entryVersion is the first byte of every normal raft entry we propose.
const entryVersion = 1

// entryHeaderLen: version, proposal id, proposer time, default TTL, mutation count.
const entryHeaderLen = 1 + 8 + 8 + 4 + 4

// A raft entry carries one or more client writes, batched by the leader:
//
//	u8 version | u64 proposal id | i64 proposer unix nanos | i32 default_ttl | u32 count
//	count × ( u8 kind | u32 length | the write's thrift-encoded request )
//
// The proposer's time and the table's default TTL travel in the entry so every replica
// applies it identically (storage.Batch). The proposal id lets the leader hand each write's
// result back to the waiting request; other replicas ignore it.

// write is one client write waiting to be proposed and applied.
type write struct {
	kind writeKind
	data []byte // thrift encoding of the request
	done chan writeResult
	// queued is when propose handed the write to the loop (see shedExpired).
	queued time.Time
	// deadline is when its client stops waiting (the header's client timeout from its
	// arrival), zero for none: a write still not proposed then is refused (shedExpired).
	deadline time.Time
}

type writeResult struct {
	res    storage.WriteResult
	decree int64
	err    error
}

// appendEntry encodes writes into one entry payload.
func appendEntry(dst []byte, id uint64, now time.Time, defaultTTL int32, ws []*write) []byte {
	dst = append(dst, entryVersion)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = binary.BigEndian.AppendUint64(dst, uint64(now.UnixNano()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(defaultTTL))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ws)))
	for _, w := range ws {
		dst = append(dst, byte(w.kind))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(w.data)))
		dst = append(dst, w.data...)
	}
	return dst
}

var errBadEntry = errors.New("replica: malformed raft entry")

// decodeEntry turns an entry payload into a storage batch (Index left to the caller) and
// the proposal id. The mutations alias data.
func decodeEntry(data []byte) (id uint64, b storage.Batch, err error) {
	h, err := splitEntry(data, func(kind writeKind, body []byte) error {
		m, err := toMutation(kind, body)
		b.Mutations = append(b.Mutations, m)
		return err
	})
	if err != nil {
		return 0, storage.Batch{}, err
	}
	b.Time, b.DefaultTTL = h.time, h.defaultTTL
	return h.id, b, nil
}

// entryHeader is the header of an entry payload.
type entryHeader struct {
	id         uint64
	time       time.Time
	defaultTTL int32
}

// entryTime returns the proposer time of an entry payload.
func entryTime(data []byte) (time.Time, bool) {
	if len(data) < entryHeaderLen || data[0] != entryVersion {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(data[9:]))), true
}

// splitEntry reads an entry payload's header and calls fn with each write's kind and
// thrift body (aliasing data), in order.
func splitEntry(data []byte, fn func(kind writeKind, body []byte) error) (entryHeader, error) {
	var h entryHeader
	if len(data) < entryHeaderLen || data[0] != entryVersion {
		return h, errBadEntry
	}
	h.id = binary.BigEndian.Uint64(data[1:])
	h.time, _ = entryTime(data)
	h.defaultTTL = int32(binary.BigEndian.Uint32(data[17:]))
	n := int(binary.BigEndian.Uint32(data[21:]))
	rest := data[entryHeaderLen:]
	if n > len(rest)/5 {
		return h, errBadEntry
	}
	for range n {
		if len(rest) < 5 {
			return h, errBadEntry
		}
		kind := writeKind(rest[0])
		l := int(binary.BigEndian.Uint32(rest[1:]))
		if l > len(rest)-5 {
			return h, errBadEntry
		}
		if err := fn(kind, rest[5:5+l]); err != nil {
			return h, err
		}
		rest = rest[5+l:]
	}
	return h, nil
}

// toMutation decodes one write's request into a storage mutation.
func toMutation(kind writeKind, data []byte) (storage.Mutation, error) {
	var m storage.Mutation
	switch kind {
	case kindPut:
		var r idl.UpdateRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		m.Put = &storage.PutRequest{Key: r.Key, Value: r.Value, ExpireTS: r.ExpireTSSeconds}
	case kindRemove:
		var r idl.Blob
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		m.Remove = &storage.RemoveRequest{Key: r}
	case kindMultiPut:
		var r idl.MultiPutRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		kvs := make([]storage.KeyValue, len(r.KVs))
		for i, kv := range r.KVs {
			kvs[i] = storage.KeyValue{Key: kv.Key, Value: kv.Value}
		}
		m.MultiPut = &storage.MultiPutRequest{HashKey: r.HashKey, KVs: kvs, ExpireTS: r.ExpireTSSeconds}
	case kindMultiRemove:
		var r idl.MultiRemoveRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		m.MultiRemove = &storage.MultiRemoveRequest{HashKey: r.HashKey, SortKeys: r.SortKeys}
	case kindIncr:
		var r idl.IncrRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		m.Incr = &storage.IncrRequest{Key: r.Key, Increment: r.Increment, ExpireTS: r.ExpireTSSeconds}
	case kindCheckAndSet:
		var r idl.CheckAndSetRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		m.CheckAndSet = &storage.CheckAndSetRequest{
			HashKey: r.HashKey, CheckSortKey: r.CheckSortKey, CheckType: r.CheckType,
			CheckOperand: r.CheckOperand, SetDiffSortKey: r.SetDiffSortKey, SetSortKey: r.SetSortKey,
			SetValue: r.SetValue, SetExpireTS: r.SetExpireTSSeconds, ReturnCheckValue: r.ReturnCheckValue,
		}
	case kindCheckAndMutate:
		var r idl.CheckAndMutateRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		ms := make([]storage.Mutate, len(r.MutateList))
		for i, x := range r.MutateList {
			ms[i] = storage.Mutate{Op: x.Operation, SortKey: x.SortKey, Value: x.Value, ExpireTS: x.SetExpireTSSeconds}
		}
		m.CheckAndMutate = &storage.CheckAndMutateRequest{
			HashKey: r.HashKey, CheckSortKey: r.CheckSortKey, CheckType: r.CheckType,
			CheckOperand: r.CheckOperand, Mutates: ms, ReturnCheckValue: r.ReturnCheckValue,
		}
	case kindDuplicate:
		var r idl.DuplicateRequest
		if err := idl.Unmarshal(data, &r); err != nil {
			return m, err
		}
		d := &storage.DuplicateRequest{Writes: make([]storage.DuplicatedWrite, len(r.Entries))}
		for i, e := range r.Entries {
			k, ok := kindOfRPC(e.TaskCode.V)
			if !ok { // refused before it was proposed; kept harmless here
				d.Writes[i].Mutation.Incr = &storage.IncrRequest{}
				continue
			}
			inner, err := toMutation(k, e.RawMessage.V)
			if err != nil {
				return m, err
			}
			d.Writes[i] = storage.DuplicatedWrite{Mutation: inner, VerifyTimetag: e.VerifyTimetag,
				Timetag: dup.Timetag(e.Timestamp.V, uint8(e.ClusterID.V), k == kindRemove || k == kindMultiRemove)}
		}
		m.Duplicate = d
	default:
		return m, fmt.Errorf("%w: write kind %d", errBadEntry, kind)
	}
	return m, nil
}
