package storage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Scanner limits (protocol.md §5.4).
const (
	maxScanBatch       = 1000 // records per batch, and records get_scanner examines
	timeCheckEveryScan = 100
	// ContextComplete is the context id of a scan reply that ends the scan of the partition.
	ContextComplete int64 = -1
)

// GetScannerRequest mirrors the wire get_scanner_request. StartKey and StopKey are encoded
// keys. ValidatePartitionHash is true when the wire field is absent.
type GetScannerRequest struct {
	StartKey              []byte
	StopKey               []byte
	StartInclusive        bool
	StopInclusive         bool
	BatchSize             int32
	NoValue               bool
	HashKeyFilterType     idl.FilterType
	HashKeyFilter         []byte
	SortKeyFilterType     idl.FilterType
	SortKeyFilter         []byte
	ValidatePartitionHash bool
	ReturnExpireTS        bool
	FullScan              bool // no effect on results
	OnlyReturnCount       bool
}

// ScanResult mirrors the wire scan_response. KVs hold encoded keys; values are empty with
// NoValue; ExpireTS is set only with ReturnExpireTS. With OnlyReturnCount, KVs is empty and
// KVCount is the number of matching records of the batch. ContextID is [ContextComplete]
// when the scan is over, otherwise a positive id to pass to [DB.Scan]; it is 0 with errors.
type ScanResult struct {
	Error     wire.Status
	KVs       []KeyValue
	ContextID int64
	KVCount   int32
	// ReturnExpireTS and OnlyReturnCount echo the scan's options, so a server answering a
	// later batch (which names only the context) knows which optional wire fields to send.
	ReturnExpireTS, OnlyReturnCount bool
}

// scanContext is the state of an unfinished scan. Its iterator reads the data as of the
// get_scanner call.
type scanContext struct {
	it             *pebble.Iterator
	stop           []byte
	stopIncl       bool
	batchSize      int
	noValue        bool
	hkType, skType idl.FilterType
	hkFilter       []byte
	skFilter       []byte
	validateHash   bool
	returnExpire   bool
	onlyCount      bool
	lastUsed       time.Time
	// partIdx and partCount are where the partition sits: a validated record belongs here
	// when its hash modulo partCount is partIdx, the rule every client routes by.
	partIdx, partCount int
}

// scannerTable holds the scanner contexts of a partition.
type scannerTable struct {
	mu   sync.Mutex
	m    map[int64]*scanContext
	next int64
	idle time.Duration
	// max bounds the contexts; put evicts the least recently used past it.
	max     int
	evicted int64
}

func (t *scannerTable) init(idle time.Duration, max int) {
	t.m = make(map[int64]*scanContext)
	t.idle = idle
	t.max = max
	// A random start, so ids practically never repeat across restarts, nor between the
	// replicas of a partition: a scan a replica forwards to its partition's new leader must
	// find only that leader's own contexts, never one another replica handed out.
	t.next = 1 + rand.Int64N(1<<62)
}

// put stores c under a new positive id.
func (t *scannerTable) put(c *scanContext) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.next
	t.next++
	if t.next <= 0 { // wrapped: restart at 1, never 0 or negative
		t.next = 1
	}
	if t.max > 0 && len(t.m) >= t.max {
		// Evict the context idle the longest: its scan's next call gets the answer of an
		// expired context (error 1), on which clients restart from their last key.
		var oldID int64
		var old *scanContext
		for id, o := range t.m {
			if old == nil || o.lastUsed.Before(old.lastUsed) {
				oldID, old = id, o
			}
		}
		delete(t.m, oldID)
		t.evicted++
		_ = old.it.Close()
	}
	t.m[id] = c
	return id
}

// evictions returns how many contexts put evicted.
func (t *scannerTable) evictions() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.evicted
}

// take removes and returns the context id if it exists and is not idle past the timeout.
func (t *scannerTable) take(id int64, now time.Time) *scanContext {
	t.mu.Lock()
	c := t.m[id]
	delete(t.m, id)
	t.mu.Unlock()
	if c == nil {
		return nil
	}
	if now.Sub(c.lastUsed) >= t.idle {
		_ = c.it.Close()
		return nil
	}
	return c
}

// remove discards context id.
func (t *scannerTable) remove(id int64) {
	t.mu.Lock()
	c := t.m[id]
	delete(t.m, id)
	t.mu.Unlock()
	if c != nil {
		_ = c.it.Close()
	}
}

// expireIdle discards the contexts idle for the timeout or longer at now.
func (t *scannerTable) expireIdle(now time.Time) { t.discard(false, now) }

// clear discards every context.
func (t *scannerTable) clear() { t.discard(true, time.Time{}) }

func (t *scannerTable) discard(all bool, now time.Time) {
	var stale []*scanContext
	t.mu.Lock()
	for id, c := range t.m {
		if all || now.Sub(c.lastUsed) >= t.idle {
			stale = append(stale, c)
			delete(t.m, id)
		}
	}
	t.mu.Unlock()
	for _, c := range stale {
		_ = c.it.Close()
	}
}

func (t *scannerTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// GetScanner starts a scan of [StartKey, StopKey] and returns its first batch, examining at
// most 1000 records. Filter types outside 0..3 give StatusInvalidArgument. err is non-nil only
// when storage fails.
func (db *DB) GetScanner(req *GetScannerRequest) (*ScanResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	if req == nil || !validFilter(req.HashKeyFilterType) || !validFilter(req.SortKeyFilterType) {
		return &ScanResult{Error: wire.StatusInvalidArgument}, nil
	}
	start, startIncl := req.StartKey, req.StartInclusive
	if req.HashKeyFilterType == idl.FilterMatchPrefix && len(req.HashKeyFilter) > 0 &&
		len(req.HashKeyFilter) <= key.MaxHashKeyLen {
		if ps := key.Encode(req.HashKeyFilter, nil); bytes.Compare(ps, start) > 0 {
			start, startIncl = ps, true
		}
	}
	if bytes.Compare(start, userKeyMin) < 0 { // keep metadata keys out of every scan
		start, startIncl = userKeyMin, true
	}
	stop := req.StopKey
	if c := bytes.Compare(start, stop); c > 0 || (c == 0 && !(startIncl && req.StopInclusive)) {
		return &ScanResult{ContextID: ContextComplete}, nil
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: userKeyMin})
	if err != nil {
		return nil, fmt.Errorf("storage: get_scanner: %w", err)
	}
	if it.SeekGE(start) && !startIncl && bytes.Equal(it.Key(), start) {
		it.Next()
	}
	bs := int(req.BatchSize)
	if bs <= 0 || bs >= maxScanBatch {
		bs = maxScanBatch
	}
	c := &scanContext{
		it:           it,
		stop:         bytes.Clone(stop),
		stopIncl:     req.StopInclusive,
		batchSize:    bs,
		noValue:      req.NoValue,
		hkType:       req.HashKeyFilterType,
		hkFilter:     bytes.Clone(req.HashKeyFilter),
		skType:       req.SortKeyFilterType,
		skFilter:     bytes.Clone(req.SortKeyFilter),
		validateHash: req.ValidatePartitionHash && (db.env.Load().ValidatePartitionHash || db.owned.Load() > 0) && db.scanCount() > 0,
		returnExpire: req.ReturnExpireTS,
		onlyCount:    req.OnlyReturnCount,
	}
	if c.validateHash {
		c.partIdx, c.partCount = int(db.opts.PartitionIndex), int(db.scanCount())
	}
	return db.scanBatch(c, maxScanBatch)
}

// Scan continues the scan of a context returned by [DB.GetScanner] or a previous Scan,
// examining at most the context's batch size. The old id becomes invalid; more data comes
// under the returned new id. An unknown or idle-expired id gives StatusNotFound.
func (db *DB) Scan(contextID int64) (*ScanResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	c := db.scanners.take(contextID, db.opts.Now())
	if c == nil {
		return &ScanResult{Error: wire.StatusNotFound}, nil
	}
	return db.scanBatch(c, c.batchSize)
}

// ClearScanner discards a scanner context. Unknown ids, and every id once the database is
// closed, are ignored.
func (db *DB) ClearScanner(contextID int64) {
	if db.enter() != nil {
		return
	}
	defer db.exit()
	db.scanners.remove(contextID)
}

// scanBatch produces one batch from c and either stores c under a new id or closes it.
func (db *DB) scanBatch(c *scanContext, maxExamined int) (*ScanResult, error) {
	nowT := db.opts.Now()
	now := EpochNow(nowT)
	limit := db.iterationLimit()
	res := &ScanResult{ReturnExpireTS: c.returnExpire, OnlyReturnCount: c.onlyCount}
	it := c.it
	count, examined := 0, 0
	complete := false
	// A batch stops once its records reach MaxReplyBytes; the context carries on, so the
	// client fetches the rest with its next scan.
	var size int64
	for count < c.batchSize && examined < maxExamined && size < db.opts.Limits.MaxReplyBytes && it.Valid() {
		k := it.Key()
		cmp := bytes.Compare(k, c.stop)
		if cmp > 0 || (cmp == 0 && !c.stopIncl) {
			complete = true
			break
		}
		examined++
		ok, err := db.scanRecord(c, k, now, res)
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if !ok {
			_ = it.Close()
			return &ScanResult{Error: wire.StatusCorruption}, nil
		}
		if n := len(res.KVs); n > count-int(res.KVCount) && n > 0 {
			size += int64(len(res.KVs[n-1].Key) + len(res.KVs[n-1].Value))
		}
		count = len(res.KVs) + int(res.KVCount)
		if cmp == 0 {
			complete = true
			break
		}
		it.Next()
		if limit > 0 && examined%timeCheckEveryScan == 0 && db.opts.Now().Sub(nowT) > limit {
			_ = it.Close()
			res.Error = wire.StatusIncomplete
			return res, nil
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return nil, fmt.Errorf("storage: scan: %w", err)
	}
	if complete || !it.Valid() {
		_ = it.Close()
		res.ContextID = ContextComplete
		return res, nil
	}
	c.lastUsed = db.opts.Now()
	res.ContextID = db.scanners.put(c)
	return res, nil
}

// scanRecord adds the record at the iterator to res if it is live and passes the filters.
// ok is false when the record cannot be decoded.
func (db *DB) scanRecord(c *scanContext, k []byte, now uint32, res *ScanResult) (ok bool, err error) {
	raw, err := c.it.ValueAndErr()
	if err != nil {
		return false, fmt.Errorf("storage: scan: %w", err)
	}
	e, u, ok := splitValue(db.version, raw)
	if !ok {
		return false, nil
	}
	if expired(e, now) {
		return true, nil
	}
	if c.validateHash {
		h, err := key.HashEncoded(k)
		if err != nil || key.Partition(h, c.partCount) != c.partIdx {
			return true, nil
		}
	}
	if c.hkType != idl.FilterNone || c.skType != idl.FilterNone {
		hk, sk, err := key.Decode(k)
		if err != nil {
			return true, nil
		}
		if !matchFilter(c.hkType, c.hkFilter, hk) || !matchFilter(c.skType, c.skFilter, sk) {
			return true, nil
		}
	}
	if c.onlyCount {
		res.KVCount++
		return true, nil
	}
	kv := KeyValue{Key: append([]byte{}, k...), Value: []byte{}}
	if !c.noValue {
		kv.Value = append(kv.Value, u...)
	}
	if c.returnExpire {
		kv.ExpireTS = int32(e)
	}
	res.KVs = append(res.KVs, kv)
	return true, nil
}
