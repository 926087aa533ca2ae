package pegasus

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
)

var _ TableConnector = (*table)(nil)

// epochBegin is the start of Pegasus's expiry clock, 2016-01-01 00:00:00 UTC.
const epochBegin = 1451606400

// expireTS converts a TTL to Pegasus's absolute expiry time (protocol.md §5.2); 0 stays 0.
// A fraction of a second rounds up, so a positive TTL never means "already expired".
func expireTS(ttl time.Duration) int32 {
	if ttl <= 0 {
		return 0
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	return int32(secs + time.Now().Unix() - epochBegin)
}

func checkHashKey(hashKey []byte) error {
	if len(hashKey) == 0 {
		return invalidArg("hash key must not be nil or empty")
	}
	if len(hashKey) >= key.MaxHashKeyLen {
		return invalidArg("hash key of %d bytes is too long (the limit is 65534)", len(hashKey))
	}
	return nil
}

func checkKey(hashKey, sortKey []byte) error {
	if err := checkHashKey(hashKey); err != nil {
		return err
	}
	if sortKey == nil {
		return invalidArg("sort key must not be nil")
	}
	return nil
}

func checkSortKeys(sortKeys [][]byte) error {
	for i, s := range sortKeys {
		if s == nil {
			return invalidArg("sort key %d must not be nil", i)
		}
	}
	return nil
}

// finish records the metrics of an operation and wraps its error.
func (t *table) finish(op OpType, start time.Time, err error) error {
	t.observe(op, start, err)
	if err != nil {
		return opError(op, err)
	}
	return nil
}

// keyReq is the pooled state of the single-key RPCs (get, remove, ttl), so their hot path
// allocates nothing but the reply.
type keyReq struct {
	blob idl.Blob
	get  idl.ReadResponse
	upd  idl.UpdateResponse
	ttl  idl.TTLResponse
}

var keyReqPool = sync.Pool{New: func() any { return new(keyReq) }}

func getKeyReq(hashKey, sortKey []byte) *keyReq {
	r := keyReqPool.Get().(*keyReq)
	r.blob = key.Append(r.blob[:0], hashKey, sortKey)
	return r
}

func putKeyReq(r *keyReq) {
	b := r.blob[:0]
	*r = keyReq{blob: b}
	if cap(b) <= 4<<10 {
		keyReqPool.Put(r)
	}
}

// Get implements [TableConnector].
func (t *table) Get(ctx context.Context, hashKey []byte, sortKey []byte) ([]byte, error) {
	if err := checkKey(hashKey, sortKey); err != nil {
		return nil, opError(OpGet, err)
	}
	v, err := t.get(ctx, hashKey, sortKey)
	return v, err
}

func (t *table) get(ctx context.Context, hashKey, sortKey []byte) ([]byte, error) {
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	r := getKeyReq(hashKey, sortKey)
	defer putKeyReq(r)
	err := t.call(ctx, kindRead, hashTarget(hashKey), idl.RPCGet, &r.blob, &r.get)
	if err == nil {
		switch r.get.Error {
		case 0:
			if r.get.Value == nil {
				return []byte{}, t.finish(OpGet, start, nil)
			}
			return r.get.Value, t.finish(OpGet, start, nil)
		case int32(StatusNotFound):
			return nil, t.finish(OpGet, start, nil)
		default:
			err = t.statusErr(hashKey, StatusError(r.get.Error))
		}
	}
	return nil, t.finish(OpGet, start, err)
}

// statusErr wraps a storage status with the table and partition of hashKey.
func (t *table) statusErr(hashKey []byte, s StatusError) error {
	r := t.route.Load()
	return &callError{table: t.name, pidx: r.locate(key.Hash(hashKey)), err: s}
}

// Set implements [TableConnector].
func (t *table) Set(ctx context.Context, hashKey []byte, sortKey []byte, value []byte) error {
	return t.SetTTL(ctx, hashKey, sortKey, value, 0)
}

// SetTTL implements [TableConnector].
func (t *table) SetTTL(ctx context.Context, hashKey []byte, sortKey []byte, value []byte, ttl time.Duration) error {
	if err := checkKey(hashKey, sortKey); err != nil {
		return opError(OpSet, err)
	}
	if value == nil {
		return opError(OpSet, invalidArg("value must not be nil"))
	}
	if ttl < 0 {
		return opError(OpSet, invalidArg("negative TTL %v", ttl))
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	r := getKeyReq(hashKey, sortKey)
	defer putKeyReq(r)
	req := updateReqPool.Get().(*idl.UpdateRequest)
	*req = idl.UpdateRequest{Key: r.blob, Value: value, ExpireTSSeconds: expireTS(ttl)}
	err := t.call(ctx, kindIdempotent, hashTarget(hashKey), idl.RPCPut, req, &r.upd)
	*req = idl.UpdateRequest{}
	updateReqPool.Put(req)
	if err == nil && r.upd.Error != 0 {
		err = t.statusErr(hashKey, StatusError(r.upd.Error))
	}
	return t.finish(OpSet, start, err)
}

var updateReqPool = sync.Pool{New: func() any { return new(idl.UpdateRequest) }}

// Del implements [TableConnector].
func (t *table) Del(ctx context.Context, hashKey []byte, sortKey []byte) error {
	if err := checkKey(hashKey, sortKey); err != nil {
		return opError(OpDel, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	r := getKeyReq(hashKey, sortKey)
	defer putKeyReq(r)
	err := t.call(ctx, kindIdempotent, hashTarget(hashKey), idl.RPCRemove, &r.blob, &r.upd)
	if err == nil && r.upd.Error != 0 {
		err = t.statusErr(hashKey, StatusError(r.upd.Error))
	}
	return t.finish(OpDel, start, err)
}

// MultiGet implements [TableConnector].
func (t *table) MultiGet(ctx context.Context, hashKey []byte, sortKeys [][]byte) ([]*KeyValue, bool, error) {
	return t.multiGet(ctx, OpMultiGet, hashKey, sortKeys, nil, nil, DefaultMultiGetOptions)
}

// MultiGetOpt implements [TableConnector].
func (t *table) MultiGetOpt(ctx context.Context, hashKey []byte, sortKeys [][]byte, options *MultiGetOptions) ([]*KeyValue, bool, error) {
	return t.multiGet(ctx, OpMultiGet, hashKey, sortKeys, nil, nil, options)
}

// MultiGetRange implements [TableConnector].
func (t *table) MultiGetRange(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte) ([]*KeyValue, bool, error) {
	return t.multiGet(ctx, OpMultiGetRange, hashKey, nil, startSortKey, stopSortKey, DefaultMultiGetOptions)
}

// MultiGetRangeOpt implements [TableConnector].
func (t *table) MultiGetRangeOpt(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *MultiGetOptions) ([]*KeyValue, bool, error) {
	return t.multiGet(ctx, OpMultiGetRange, hashKey, nil, startSortKey, stopSortKey, options)
}

var emptyBytes = []byte{}

// nonNil returns b, or an empty slice for nil (so a nil argument is sent as an empty blob).
func nonNil(b []byte) []byte {
	if b == nil {
		return emptyBytes
	}
	return b
}

func (t *table) multiGet(ctx context.Context, op OpType, hashKey []byte, sortKeys [][]byte, start, stop []byte, o *MultiGetOptions) ([]*KeyValue, bool, error) {
	if err := checkHashKey(hashKey); err != nil {
		return nil, false, opError(op, err)
	}
	if err := checkSortKeys(sortKeys); err != nil {
		return nil, false, opError(op, err)
	}
	if o == nil {
		o = DefaultMultiGetOptions
	}
	if !o.SortKeyFilter.valid() {
		return nil, false, opError(op, invalidArg("sort key filter type %d", o.SortKeyFilter.Type))
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	begin := time.Now()
	if sortKeys == nil {
		sortKeys = [][]byte{}
	}
	req := &idl.MultiGetRequest{
		HashKey:              hashKey,
		SortKeys:             sortKeys,
		MaxKVCount:           clampInt32(o.MaxFetchCount),
		MaxKVSize:            clampInt32(o.MaxFetchSize),
		NoValue:              o.NoValue,
		StartSortKey:         nonNil(start),
		StopSortKey:          nonNil(stop),
		StartInclusive:       o.StartInclusive,
		StopInclusive:        o.StopInclusive,
		SortKeyFilterType:    idl.FilterType(o.SortKeyFilter.Type),
		SortKeyFilterPattern: nonNil(o.SortKeyFilter.Pattern),
		Reverse:              o.Reverse,
	}
	var resp idl.MultiGetResponse
	err := t.call(ctx, kindRead, hashTarget(hashKey), idl.RPCMultiGet, req, &resp)
	if err != nil {
		return nil, false, t.finish(op, begin, err)
	}
	allFetched := true
	switch resp.Error {
	case 0:
	case int32(StatusIncomplete):
		allFetched = false
	default:
		return nil, false, t.finish(op, begin, t.statusErr(hashKey, StatusError(resp.Error)))
	}
	if len(resp.KVs) == 0 {
		return nil, allFetched, t.finish(op, begin, nil)
	}
	kvs := make([]KeyValue, len(resp.KVs))
	out := make([]*KeyValue, len(resp.KVs))
	for i, kv := range resp.KVs {
		kvs[i] = KeyValue{SortKey: kv.Key, Value: nonNil(kv.Value)}
		out[i] = &kvs[i]
	}
	if len(sortKeys) > 0 {
		// The server answers listed keys in request order; the contract is ascending order.
		slices.SortStableFunc(out, func(a, b *KeyValue) int { return bytes.Compare(a.SortKey, b.SortKey) })
	}
	return out, allFetched, t.finish(op, begin, nil)
}

func clampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(n, math.MaxInt32)))
}

// MultiSet implements [TableConnector].
func (t *table) MultiSet(ctx context.Context, hashKey []byte, sortKeys [][]byte, values [][]byte) error {
	return t.MultiSetOpt(ctx, hashKey, sortKeys, values, 0)
}

// MultiSetOpt implements [TableConnector].
func (t *table) MultiSetOpt(ctx context.Context, hashKey []byte, sortKeys [][]byte, values [][]byte, ttl time.Duration) error {
	if err := checkHashKey(hashKey); err != nil {
		return opError(OpMultiSet, err)
	}
	switch {
	case len(sortKeys) == 0:
		return opError(OpMultiSet, invalidArg("sort keys must not be empty"))
	case len(sortKeys) != len(values):
		return opError(OpMultiSet, invalidArg("%d sort keys but %d values", len(sortKeys), len(values)))
	case ttl < 0:
		return opError(OpMultiSet, invalidArg("negative TTL %v", ttl))
	}
	if err := checkSortKeys(sortKeys); err != nil {
		return opError(OpMultiSet, err)
	}
	for i, v := range values {
		if v == nil {
			return opError(OpMultiSet, invalidArg("value %d must not be nil", i))
		}
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	kvs := make([]idl.KeyValue, len(sortKeys))
	for i := range sortKeys {
		kvs[i] = idl.KeyValue{Key: sortKeys[i], Value: values[i]}
	}
	req := &idl.MultiPutRequest{HashKey: hashKey, KVs: kvs, ExpireTSSeconds: expireTS(ttl)}
	var resp idl.UpdateResponse
	err := t.call(ctx, kindIdempotent, hashTarget(hashKey), idl.RPCMultiPut, req, &resp)
	if err == nil && resp.Error != 0 {
		err = t.statusErr(hashKey, StatusError(resp.Error))
	}
	return t.finish(OpMultiSet, start, err)
}

// MultiDel implements [TableConnector].
func (t *table) MultiDel(ctx context.Context, hashKey []byte, sortKeys [][]byte) error {
	if err := checkHashKey(hashKey); err != nil {
		return opError(OpMultiDel, err)
	}
	if len(sortKeys) == 0 {
		return opError(OpMultiDel, invalidArg("sort keys must not be empty"))
	}
	if err := checkSortKeys(sortKeys); err != nil {
		return opError(OpMultiDel, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	return t.finish(OpMultiDel, start, t.multiDel(ctx, hashKey, sortKeys))
}

func (t *table) multiDel(ctx context.Context, hashKey []byte, sortKeys [][]byte) error {
	req := &idl.MultiRemoveRequest{HashKey: hashKey, SortKeys: sortKeys}
	var resp idl.MultiRemoveResponse
	err := t.call(ctx, kindIdempotent, hashTarget(hashKey), idl.RPCMultiRemove, req, &resp)
	if err == nil && resp.Error != 0 {
		err = t.statusErr(hashKey, StatusError(resp.Error))
	}
	return err
}

// delRangeBatch is how many sort keys DelRange deletes per multi_remove.
const delRangeBatch = 1000

// DelRange implements [TableConnector].
func (t *table) DelRange(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte) error {
	return t.delRange(ctx, hashKey, startSortKey, stopSortKey, &DelRangeOptions{
		StartInclusive: DefaultDelRangeOptions.StartInclusive,
		StopInclusive:  DefaultDelRangeOptions.StopInclusive,
		SortKeyFilter:  DefaultDelRangeOptions.SortKeyFilter,
	})
}

// DelRangeOpt implements [TableConnector].
func (t *table) DelRangeOpt(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *DelRangeOptions) error {
	if options == nil || options == DefaultDelRangeOptions {
		// The shared defaults are never written to (see TableConnector.DelRangeOpt).
		return t.DelRange(ctx, hashKey, startSortKey, stopSortKey)
	}
	return t.delRange(ctx, hashKey, startSortKey, stopSortKey, options)
}

// delRange deletes the range and records in o where a failure left off (o.nextSortKey), as
// the Pegasus go-client's DelRangeOpt does with its caller's options.
func (t *table) delRange(ctx context.Context, hashKey, startSortKey, stopSortKey []byte, o *DelRangeOptions) error {
	o.nextSortKey = nil
	if err := checkHashKey(hashKey); err != nil {
		return opError(OpDelRange, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	so := &ScannerOptions{
		BatchSize:      delRangeBatch,
		StartInclusive: o.StartInclusive,
		StopInclusive:  o.StopInclusive,
		HashKeyFilter:  Filter{Type: FilterTypeNoFilter},
		SortKeyFilter:  o.SortKeyFilter,
		NoValue:        true,
	}
	sc, err := t.newScanner(hashKey, startSortKey, stopSortKey, so)
	if err != nil {
		return t.finish(OpDelRange, start, err)
	}
	defer sc.Close()
	var pending [][]byte
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := t.multiDel(ctx, hashKey, pending); err != nil {
			o.nextSortKey = pending[0]
			return err
		}
		pending = pending[:0]
		return nil
	}
	for {
		done, _, sortKey, _, err := sc.next(ctx)
		if err != nil {
			if len(pending) > 0 {
				o.nextSortKey = pending[0]
			} else {
				o.nextSortKey = sc.resumeSortKey(startSortKey)
			}
			return t.finish(OpDelRange, start, err)
		}
		if done {
			break
		}
		pending = append(pending, sortKey)
		if len(pending) >= delRangeBatch {
			if err := flush(); err != nil {
				return t.finish(OpDelRange, start, err)
			}
		}
	}
	if err := flush(); err != nil {
		return t.finish(OpDelRange, start, err)
	}
	return t.finish(OpDelRange, start, nil)
}

// TTL implements [TableConnector].
func (t *table) TTL(ctx context.Context, hashKey []byte, sortKey []byte) (int, error) {
	ttl, err := t.ttl(ctx, OpTTL, hashKey, sortKey)
	return ttl, err
}

// Exist implements [TableConnector].
func (t *table) Exist(ctx context.Context, hashKey []byte, sortKey []byte) (bool, error) {
	ttl, err := t.ttl(ctx, OpExist, hashKey, sortKey)
	return err == nil && ttl != -2, err
}

func (t *table) ttl(ctx context.Context, op OpType, hashKey, sortKey []byte) (int, error) {
	if err := checkKey(hashKey, sortKey); err != nil {
		return 0, opError(op, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	r := getKeyReq(hashKey, sortKey)
	defer putKeyReq(r)
	err := t.call(ctx, kindRead, hashTarget(hashKey), idl.RPCTTL, &r.blob, &r.ttl)
	if err == nil {
		switch r.ttl.Error {
		case 0:
			return int(r.ttl.TTLSeconds), t.finish(op, start, nil)
		case int32(StatusNotFound):
			return -2, t.finish(op, start, nil)
		default:
			err = t.statusErr(hashKey, StatusError(r.ttl.Error))
		}
	}
	return 0, t.finish(op, start, err)
}

// CheckAndSet implements [TableConnector].
func (t *table) CheckAndSet(ctx context.Context, hashKey []byte, checkSortKey []byte, checkType CheckType,
	checkOperand []byte, setSortKey []byte, setValue []byte, options *CheckAndSetOptions) (*CheckAndSetResult, error) {
	if err := checkHashKey(hashKey); err != nil {
		return nil, opError(OpCheckAndSet, err)
	}
	switch {
	case checkSortKey == nil:
		return nil, opError(OpCheckAndSet, invalidArg("check sort key must not be nil"))
	case setSortKey == nil:
		return nil, opError(OpCheckAndSet, invalidArg("set sort key must not be nil"))
	case checkType < CheckTypeNoCheck || checkType > CheckTypeIntGreater:
		return nil, opError(OpCheckAndSet, invalidArg("unknown check type %d", checkType))
	}
	if options == nil {
		options = &CheckAndSetOptions{}
	}
	if options.SetValueTTLSeconds < 0 {
		return nil, opError(OpCheckAndSet, invalidArg("negative TTL %d s", options.SetValueTTLSeconds))
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	req := &idl.CheckAndSetRequest{
		HashKey:            hashKey,
		CheckSortKey:       checkSortKey,
		CheckType:          idl.CASCheckType(checkType),
		CheckOperand:       nonNil(checkOperand),
		SetDiffSortKey:     !bytes.Equal(checkSortKey, setSortKey),
		SetSortKey:         setSortKey,
		SetValue:           nonNil(setValue),
		SetExpireTSSeconds: expireTS(time.Duration(options.SetValueTTLSeconds) * time.Second),
		ReturnCheckValue:   options.ReturnCheckValue,
	}
	var resp idl.CheckAndSetResponse
	err := t.call(ctx, kindNonIdempotent, hashTarget(hashKey), idl.RPCCheckAndSet, req, &resp)
	if err != nil {
		return nil, t.finish(OpCheckAndSet, start, err)
	}
	res := &CheckAndSetResult{
		CheckValueReturned: resp.CheckValueReturned,
		CheckValueExist:    resp.CheckValueReturned && resp.CheckValueExist,
	}
	if res.CheckValueExist {
		res.CheckValue = nonNil(resp.CheckValue)
	}
	switch resp.Error {
	case 0:
		res.SetSucceed = true
	case int32(StatusTryAgain):
		res.SetSucceed = false
	default:
		return nil, t.finish(OpCheckAndSet, start, t.statusErr(hashKey, StatusError(resp.Error)))
	}
	return res, t.finish(OpCheckAndSet, start, nil)
}

// SortKeyCount implements [TableConnector].
func (t *table) SortKeyCount(ctx context.Context, hashKey []byte) (int64, error) {
	if err := checkHashKey(hashKey); err != nil {
		return 0, opError(OpSortKeyCount, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	args := idl.Blob(hashKey)
	var resp idl.CountResponse
	err := t.call(ctx, kindRead, hashTarget(hashKey), idl.RPCSortKeyCount, &args, &resp)
	if err == nil && resp.Error != 0 {
		err = t.statusErr(hashKey, StatusError(resp.Error))
	}
	if err != nil {
		return 0, t.finish(OpSortKeyCount, start, err)
	}
	return resp.Count, t.finish(OpSortKeyCount, start, nil)
}

// Incr implements [TableConnector].
func (t *table) Incr(ctx context.Context, hashKey []byte, sortKey []byte, increment int64) (int64, error) {
	if err := checkKey(hashKey, sortKey); err != nil {
		return 0, opError(OpIncr, err)
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	req := &idl.IncrRequest{Key: key.Encode(hashKey, sortKey), Increment: increment}
	var resp idl.IncrResponse
	err := t.call(ctx, kindNonIdempotent, hashTarget(hashKey), idl.RPCIncr, req, &resp)
	if err == nil && resp.Error != 0 {
		err = t.statusErr(hashKey, StatusError(resp.Error))
	}
	if err != nil {
		return 0, t.finish(OpIncr, start, err)
	}
	return resp.NewValue, t.finish(OpIncr, start, nil)
}

// batchGetParallelism bounds the concurrent Gets of one BatchGet.
const batchGetParallelism = 64

// BatchGet implements [TableConnector].
func (t *table) BatchGet(ctx context.Context, keys []CompositeKey) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, opError(OpBatchGet, invalidArg("keys must not be empty"))
	}
	for i, k := range keys {
		if err := checkKey(k.HashKey, k.SortKey); err != nil {
			return nil, opError(OpBatchGet, fmt.Errorf("key %d: %w", i, err))
		}
	}
	ctx, cancel := t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	values := make([][]byte, len(keys))
	errs := make([]error, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(keys), batchGetParallelism) {
		wg.Go(func() {
			for i := range next {
				values[i], errs[i] = t.get(ctx, keys[i].HashKey, keys[i].SortKey)
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return values, t.finish(OpBatchGet, start, fmt.Errorf("key %d: %w", i, err))
		}
	}
	return values, t.finish(OpBatchGet, start, nil)
}
