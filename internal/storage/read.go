package storage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Limits of multi_get (protocol.md §5.4).
const (
	maxMultiGetCount    = 3000     // records returned, and records examined in range mode
	maxMultiGetSize     = 30 << 20 // bytes returned in range mode
	timeCheckEveryMulti = 300      // records between two time budget checks in multi_get
	timeCheckEveryCount = 100      // same for sortkey_count
)

// Get returns the value stored at the encoded key k: StatusOK and a newly allocated copy of the
// value, or StatusNotFound and nil when the record is missing or expired. A corrupted record
// gives StatusCorruption. err is non-nil only when storage fails.
func (db *DB) Get(k []byte) (value []byte, code wire.Status, err error) {
	if err := db.enter(); err != nil {
		return nil, 0, err
	}
	defer db.exit()
	if len(k) < 2 { // keys shorter than 2 bytes are metadata, never user data
		return nil, wire.StatusNotFound, nil
	}
	raw, closer, err := db.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, wire.StatusNotFound, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage: get: %w", err)
	}
	defer closer.Close()
	e, u, ok := splitValue(db.version, raw)
	if !ok {
		return nil, wire.StatusCorruption, nil
	}
	if expired(e, db.epochNow()) {
		return nil, wire.StatusNotFound, nil
	}
	out := make([]byte, len(u))
	copy(out, u)
	return out, wire.StatusOK, nil
}

// TTL returns the remaining time to live in seconds of the record at the encoded key k:
// StatusOK and -1 when it has no expiry, StatusOK and the seconds left, or StatusNotFound and 0 when
// it is missing or expired.
func (db *DB) TTL(k []byte) (ttlSeconds int32, code wire.Status, err error) {
	if err := db.enter(); err != nil {
		return 0, 0, err
	}
	defer db.exit()
	if len(k) < 2 {
		return 0, wire.StatusNotFound, nil
	}
	raw, closer, err := db.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, wire.StatusNotFound, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("storage: ttl: %w", err)
	}
	defer closer.Close()
	e, _, ok := splitValue(db.version, raw)
	if !ok {
		return 0, wire.StatusCorruption, nil
	}
	now := db.epochNow()
	switch {
	case expired(e, now):
		return 0, wire.StatusNotFound, nil
	case e == 0:
		return -1, wire.StatusOK, nil
	}
	return int32(e - now), wire.StatusOK, nil
}

// MultiGetRequest mirrors the wire multi_get_request. See protocol.md §5.4 for the meaning of
// every field.
type MultiGetRequest struct {
	HashKey           []byte
	SortKeys          [][]byte // non-empty: point mode
	MaxKVCount        int32
	MaxKVSize         int32
	NoValue           bool
	StartSortKey      []byte
	StopSortKey       []byte
	StartInclusive    bool
	StopInclusive     bool
	SortKeyFilterType idl.FilterType
	SortKeyFilter     []byte
	Reverse           bool
}

// MultiGetResult is the answer to a multi_get: Error is StatusOK, StatusIncomplete (a limit cut
// the result short), StatusInvalidArgument or StatusCorruption. KVs hold sort keys and values
// (empty with NoValue), in request order (point mode) or ascending order (range mode);
// ExpireTS is not set. All slices are newly allocated.
type MultiGetResult struct {
	Error wire.Status
	KVs   []KeyValue
}

// MultiGet serves a multi_get. err is non-nil only when storage fails.
func (db *DB) MultiGet(req *MultiGetRequest) (*MultiGetResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	if req == nil || !validFilter(req.SortKeyFilterType) || !validHashKey(req.HashKey) {
		return &MultiGetResult{Error: wire.StatusInvalidArgument}, nil
	}
	maxCount := int(req.MaxKVCount)
	if maxCount <= 0 || maxCount >= maxMultiGetCount {
		maxCount = maxMultiGetCount
	}
	// max_kv_size <= 0 means no limit in Pegasus; the server's reply bound still holds.
	maxSize := db.opts.Limits.MaxReplyBytes
	if req.MaxKVSize > 0 {
		maxSize = min(maxSize, int64(req.MaxKVSize))
	}
	if len(req.SortKeys) > 0 {
		return db.multiGetPoints(req, maxCount, maxSize)
	}
	maxSize = min(maxSize, maxMultiGetSize)
	return db.multiGetRange(req, maxCount, maxSize)
}

func (db *DB) multiGetPoints(req *MultiGetRequest, maxCount int, maxSize int64) (*MultiGetResult, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: key.Encode(req.HashKey, nil),
		UpperBound: key.HashKeyEnd(req.HashKey),
	})
	if err != nil {
		return nil, fmt.Errorf("storage: multi_get: %w", err)
	}
	defer it.Close()
	now := db.epochNow()
	res := &MultiGetResult{}
	var size int64
	var kb []byte
	for _, sk := range req.SortKeys {
		kb = key.Append(kb[:0], req.HashKey, sk)
		if !it.SeekGE(kb) || !bytes.Equal(it.Key(), kb) {
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("storage: multi_get: %w", err)
		}
		e, u, ok := splitValue(db.version, raw)
		if !ok {
			return &MultiGetResult{Error: wire.StatusCorruption}, nil
		}
		if expired(e, now) {
			continue
		}
		if len(res.KVs) >= maxCount || size >= maxSize {
			res.Error = wire.StatusIncomplete
			break
		}
		kv := KeyValue{Key: bytes.Clone(sk)}
		if kv.Key == nil {
			kv.Key = []byte{}
		}
		if req.NoValue {
			kv.Value = []byte{}
		} else {
			kv.Value = append([]byte{}, u...)
		}
		size += int64(len(sk) + len(kv.Value))
		res.KVs = append(res.KVs, kv)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("storage: multi_get: %w", err)
	}
	return res, nil
}

// validFilter reports whether t is a filter type of the wire enum.
func validFilter(t idl.FilterType) bool { return t >= idl.FilterNone && t <= idl.FilterMatchPostfix }

// matchFilter applies a hash-key or sort-key filter (protocol.md §5.4).
func matchFilter(t idl.FilterType, pattern, b []byte) bool {
	if len(pattern) == 0 {
		return true
	}
	switch t {
	case idl.FilterMatchAnywhere:
		return bytes.Contains(b, pattern)
	case idl.FilterMatchPrefix:
		return bytes.HasPrefix(b, pattern)
	case idl.FilterMatchPostfix:
		return bytes.HasSuffix(b, pattern)
	}
	return true
}

// multiGetRange serves range mode. Like Apache Pegasus, its iterator is not bounded by the
// range: the incomplete flag reports whether any user key at all follows the last examined
// record in iteration order.
func (db *DB) multiGetRange(req *MultiGetRequest, maxCount int, maxSize int64) (*MultiGetResult, error) {
	start := key.Encode(req.HashKey, req.StartSortKey)
	startIncl := req.StartInclusive
	var stop []byte
	stopIncl := false
	if len(req.StopSortKey) == 0 {
		stop = key.HashKeyEnd(req.HashKey)
	} else {
		stop, stopIncl = key.Encode(req.HashKey, req.StopSortKey), req.StopInclusive
	}
	if req.SortKeyFilterType == idl.FilterMatchPrefix && len(req.SortKeyFilter) > 0 {
		if ps := key.Encode(req.HashKey, req.SortKeyFilter); bytes.Compare(ps, start) > 0 {
			start, startIncl = ps, true
		}
		pe := key.PrefixEnd(req.HashKey, req.SortKeyFilter)
		if c := bytes.Compare(pe, stop); c < 0 || (c == 0 && stopIncl) {
			stop, stopIncl = pe, false
		}
	}
	res := &MultiGetResult{}
	if c := bytes.Compare(start, stop); c > 0 || (c == 0 && !(startIncl && stopIncl)) {
		return res, nil
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: userKeyMin})
	if err != nil {
		return nil, fmt.Errorf("storage: multi_get: %w", err)
	}
	defer it.Close()

	nowT := db.opts.Now()
	now := EpochNow(nowT)
	limit := db.iterationLimit()
	hkLen := 2 + len(req.HashKey)
	var size int64
	examined := 0
	limited := false

	// Iteration order: forward from start, or backward from stop. "first" is the bound the
	// iteration starts at, "last" the bound it ends at.
	first, firstIncl, last, lastIncl := start, startIncl, stop, stopIncl
	if req.Reverse {
		first, firstIncl, last, lastIncl = stop, stopIncl, start, startIncl
	}
	advance := it.Next
	if req.Reverse {
		advance = it.Prev
		it.SeekLT(append(bytes.Clone(first), 0)) // last key <= first
	} else {
		it.SeekGE(first)
	}
	if it.Valid() && !firstIncl && bytes.Equal(it.Key(), first) {
		advance()
	}
	for it.Valid() {
		k := it.Key()
		c := bytes.Compare(k, last)
		if req.Reverse {
			c = -c
		}
		if c > 0 || (c == 0 && !lastIncl) {
			break // past the range
		}
		examined++
		sk := k[min(hkLen, len(k)):]
		if matchFilter(req.SortKeyFilterType, req.SortKeyFilter, sk) {
			raw, err := it.ValueAndErr()
			if err != nil {
				return nil, fmt.Errorf("storage: multi_get: %w", err)
			}
			e, u, ok := splitValue(db.version, raw)
			if !ok {
				return &MultiGetResult{Error: wire.StatusCorruption}, nil
			}
			if !expired(e, now) {
				kv := KeyValue{Key: append([]byte{}, sk...), Value: []byte{}}
				if !req.NoValue {
					kv.Value = append(kv.Value, u...)
				}
				size += int64(len(sk) + len(kv.Value))
				res.KVs = append(res.KVs, kv)
			}
		}
		if c == 0 {
			break // the inclusive end bound was the last record of the range
		}
		if len(res.KVs) >= maxCount || size >= maxSize || examined >= maxMultiGetCount ||
			(limit > 0 && examined%timeCheckEveryMulti == 0 && db.opts.Now().Sub(nowT) > limit) {
			limited = true
			advance()
			break
		}
		advance()
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("storage: multi_get: %w", err)
	}
	if limited && it.Valid() {
		res.Error = wire.StatusIncomplete
	}
	if req.Reverse {
		for i, j := 0, len(res.KVs)-1; i < j; i, j = i+1, j-1 {
			res.KVs[i], res.KVs[j] = res.KVs[j], res.KVs[i]
		}
	}
	return res, nil
}

// FullKey addresses one record of a batch_get (wire full_key).
type FullKey struct {
	HashKey []byte
	SortKey []byte
}

// FullData is one record found by a batch_get (wire full_data).
type FullData struct {
	HashKey []byte
	SortKey []byte
	Value   []byte
}

// BatchGet returns the live records among keys, in request order (duplicates repeated,
// missing keys omitted). Code is StatusInvalidArgument for an empty list or a hash key of
// 65535 bytes or more, StatusCorruption for an undecodable record. err is non-nil when
// storage fails, and [ErrReadTooLarge] for more than Limits.MaxBatchGetKeys keys or a reply
// past Limits.MaxReplyBytes. A key asked several times is read once and its repeats share
// their slices.
func (db *DB) BatchGet(keys []FullKey) (data []FullData, code wire.Status, err error) {
	if err := db.enter(); err != nil {
		return nil, 0, err
	}
	defer db.exit()
	if len(keys) == 0 {
		return nil, wire.StatusInvalidArgument, nil
	}
	if len(keys) > db.opts.Limits.MaxBatchGetKeys {
		return nil, 0, fmt.Errorf("%w: batch_get of %d keys (max %d)", ErrReadTooLarge, len(keys), db.opts.Limits.MaxBatchGetKeys)
	}
	for i := range keys {
		if !validHashKey(keys[i].HashKey) {
			return nil, wire.StatusInvalidArgument, nil
		}
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: userKeyMin})
	if err != nil {
		return nil, 0, fmt.Errorf("storage: batch_get: %w", err)
	}
	defer it.Close()
	now := db.epochNow()
	var kb []byte
	// seen maps a key already read to its record's index in data (-1: not found).
	seen := make(map[string]int, len(keys))
	var size int64
	for i := range keys {
		kb = key.Append(kb[:0], keys[i].HashKey, keys[i].SortKey)
		if j, ok := seen[string(kb)]; ok {
			if j >= 0 {
				size += int64(len(data[j].HashKey) + len(data[j].SortKey) + len(data[j].Value))
				if size > db.opts.Limits.MaxReplyBytes {
					return nil, 0, fmt.Errorf("%w: batch_get reply past %d bytes", ErrReadTooLarge, db.opts.Limits.MaxReplyBytes)
				}
				data = append(data, data[j])
			}
			continue
		}
		seen[string(kb)] = -1
		if !it.SeekGE(kb) || !bytes.Equal(it.Key(), kb) {
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, 0, fmt.Errorf("storage: batch_get: %w", err)
		}
		e, u, ok := splitValue(db.version, raw)
		if !ok {
			return nil, wire.StatusCorruption, nil
		}
		if expired(e, now) {
			continue
		}
		size += int64(len(keys[i].HashKey) + len(keys[i].SortKey) + len(u))
		if size > db.opts.Limits.MaxReplyBytes {
			return nil, 0, fmt.Errorf("%w: batch_get reply past %d bytes", ErrReadTooLarge, db.opts.Limits.MaxReplyBytes)
		}
		seen[string(kb)] = len(data)
		data = append(data, FullData{
			HashKey: append([]byte{}, keys[i].HashKey...),
			SortKey: append([]byte{}, keys[i].SortKey...),
			Value:   append([]byte{}, u...),
		})
	}
	if err := it.Error(); err != nil {
		return nil, 0, fmt.Errorf("storage: batch_get: %w", err)
	}
	return data, wire.StatusOK, nil
}

// SortKeyCount counts the live sort keys under a raw hash key. When the iteration time budget
// runs out it returns StatusOK and count -1, like Apache Pegasus. A hash key of 65535 bytes or
// more gives StatusInvalidArgument.
func (db *DB) SortKeyCount(hashKey []byte) (count int64, code wire.Status, err error) {
	if err := db.enter(); err != nil {
		return 0, 0, err
	}
	defer db.exit()
	if !validHashKey(hashKey) {
		return 0, wire.StatusInvalidArgument, nil
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: key.Encode(hashKey, nil),
		UpperBound: key.HashKeyEnd(hashKey),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("storage: sortkey_count: %w", err)
	}
	defer it.Close()
	nowT := db.opts.Now()
	now := EpochNow(nowT)
	limit := db.iterationLimit()
	var examined int64
	for it.First(); it.Valid(); it.Next() {
		examined++
		raw, err := it.ValueAndErr()
		if err != nil {
			return 0, 0, fmt.Errorf("storage: sortkey_count: %w", err)
		}
		e, _, ok := splitValue(db.version, raw)
		if !ok {
			return 0, wire.StatusCorruption, nil
		}
		if !expired(e, now) {
			count++
		}
		if limit > 0 && examined%timeCheckEveryCount == 0 && db.opts.Now().Sub(nowT) > limit {
			return -1, wire.StatusOK, nil
		}
	}
	if err := it.Error(); err != nil {
		return 0, 0, fmt.Errorf("storage: sortkey_count: %w", err)
	}
	return count, wire.StatusOK, nil
}
