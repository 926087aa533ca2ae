package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

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
	// kindIngest is a bulk load's ingestion (bulkload.go): always alone in its entry.
	kindIngest
)

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
	if len(data) < entryHeaderLen || data[0] != entryVersion {
		return 0, b, errBadEntry
	}
	id = binary.BigEndian.Uint64(data[1:])
	b.Time = time.Unix(0, int64(binary.BigEndian.Uint64(data[9:])))
	b.DefaultTTL = int32(binary.BigEndian.Uint32(data[17:]))
	n := int(binary.BigEndian.Uint32(data[21:]))
	rest := data[entryHeaderLen:]
	if n > len(rest)/5 {
		return 0, b, errBadEntry
	}
	b.Mutations = make([]storage.Mutation, n)
	for i := range n {
		if len(rest) < 5 {
			return 0, b, errBadEntry
		}
		kind := writeKind(rest[0])
		l := int(binary.BigEndian.Uint32(rest[1:]))
		if l > len(rest)-5 {
			return 0, b, errBadEntry
		}
		m, err := toMutation(kind, rest[5:5+l])
		if err != nil {
			return 0, b, err
		}
		b.Mutations[i] = m
		rest = rest[5+l:]
	}
	return id, b, nil
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
	default:
		return m, fmt.Errorf("%w: write kind %d", errBadEntry, kind)
	}
	return m, nil
}
