package pegasus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// clearScannerTimeout bounds sending RPC_RRDB_RRDB_CLEAR_SCANNER from Close (the server never
// answers it, so this only bounds queueing and, at worst, dialling).
const clearScannerTimeout = 100 * time.Millisecond

type scanState uint8

const (
	scanStart    scanState = iota // the next fetch is a get_scanner
	scanContinue                  // the server holds context ctxID: the next fetch is a scan
	scanDone                      // the current partition is exhausted
)

// scanner implements [Scanner] over one hash key's range (GetScanner) or over whole
// partitions (GetUnorderedScanners). Within a partition it sends get_scanner, then scan with
// each context id the server returns until it returns -1 (protocol.md §5.4). When the server
// no longer knows the context (status NotFound, e.g. after a primary change or an idle
// timeout), it starts again with get_scanner just after the last record it returned.
//
// An unordered scanner follows partition splits (see scanTask): each record is kept only if
// its hash maps to the part of the table the scanner is on, and after each get_scanner it
// makes sure, from a configuration queried after the reply, that the partition's count did
// not grow meanwhile; if it did, it scans the new partitions' shares of that part too.
type scanner struct {
	t         *table
	unordered bool

	req  idl.GetScannerRequest // template: range, flags and filters
	hash uint64                // ordered: partition hash of the hash key
	// tasks are the parts still to scan (unordered), visited from the end of the slice; cur
	// is the part being scanned.
	tasks []scanTask
	cur   scanTask

	state   scanState
	ctxID   int64
	batch   []idl.KeyValue
	pos     int
	lastKey []byte // encoded key of the last record returned from the current partition
	err     error  // permanent failure
	closed  bool
}

var _ Scanner = (*scanner)(nil)

// GetScanner implements [TableConnector].
func (t *table) GetScanner(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *ScannerOptions) (Scanner, error) {
	start := time.Now()
	s, err := t.newScanner(hashKey, startSortKey, stopSortKey, options)
	if err != nil {
		return nil, t.finish(OpGetScanner, start, err)
	}
	return s, t.finish(OpGetScanner, start, nil)
}

func checkScanOptions(o *ScannerOptions) error {
	if !o.HashKeyFilter.valid() {
		return invalidArg("hash key filter type %d", o.HashKeyFilter.Type)
	}
	if !o.SortKeyFilter.valid() {
		return invalidArg("sort key filter type %d", o.SortKeyFilter.Type)
	}
	return nil
}

func (t *table) scanRequest(o *ScannerOptions) idl.GetScannerRequest {
	return idl.GetScannerRequest{
		StartInclusive:       o.StartInclusive,
		StopInclusive:        o.StopInclusive,
		BatchSize:            clampInt32(o.BatchSize),
		NoValue:              o.NoValue,
		HashKeyFilterType:    idl.FilterType(o.HashKeyFilter.Type),
		HashKeyFilterPattern: nonNil(o.HashKeyFilter.Pattern),
		SortKeyFilterType:    idl.FilterType(o.SortKeyFilter.Type),
		SortKeyFilterPattern: nonNil(o.SortKeyFilter.Pattern),
	}
}

// newScanner builds the scanner of GetScanner without sending anything.
func (t *table) newScanner(hashKey, startSortKey, stopSortKey []byte, o *ScannerOptions) (*scanner, error) {
	if err := checkHashKey(hashKey); err != nil {
		return nil, err
	}
	if o == nil {
		o = NewScanOptions()
	}
	if err := checkScanOptions(o); err != nil {
		return nil, err
	}
	req := t.scanRequest(o)
	req.ValidatePartitionHash = idl.Some(false)
	req.StartKey = key.Encode(hashKey, startSortKey)
	if len(stopSortKey) == 0 {
		req.StopKey = key.Encode(hashKey, []byte{0xff, 0xff})
		req.StopInclusive = false
	} else {
		req.StopKey = key.Encode(hashKey, stopSortKey)
	}
	if f := o.SortKeyFilter; f.Type == FilterTypeMatchPrefix && len(f.Pattern) > 0 {
		// Only sort keys with the prefix can match: narrow the range to them.
		if ps := key.Encode(hashKey, f.Pattern); bytes.Compare(ps, req.StartKey) > 0 {
			req.StartKey, req.StartInclusive = ps, true
		}
		if pe := key.PrefixEnd(hashKey, f.Pattern); pe != nil && bytes.Compare(pe, req.StopKey) <= 0 {
			req.StopKey, req.StopInclusive = pe, false
		}
	}
	s := &scanner{t: t, req: req, hash: key.Hash(hashKey), cur: scanTask{pidx: -1}}
	c := bytes.Compare(req.StartKey, req.StopKey)
	if c > 0 || (c == 0 && !(req.StartInclusive && req.StopInclusive)) {
		s.state = scanDone // an empty range: nothing to ask the server
	}
	return s, nil
}

// GetUnorderedScanners implements [TableConnector].
func (t *table) GetUnorderedScanners(ctx context.Context, maxSplitCount int, options *ScannerOptions) ([]Scanner, error) {
	start := time.Now()
	scs, err := t.unorderedScanners(maxSplitCount, options)
	if err != nil {
		return nil, t.finish(OpGetUnorderedScanners, start, err)
	}
	return scs, t.finish(OpGetUnorderedScanners, start, nil)
}

func (t *table) unorderedScanners(maxSplitCount int, o *ScannerOptions) ([]Scanner, error) {
	if maxSplitCount <= 0 {
		return nil, invalidArg("maxSplitCount must be positive, got %d", maxSplitCount)
	}
	if o == nil {
		o = NewScanOptions()
	}
	if err := checkScanOptions(o); err != nil {
		return nil, err
	}
	req := t.scanRequest(o)
	req.StartKey, req.StopKey = []byte{0, 0}, []byte{0xff, 0xff}
	req.StartInclusive, req.StopInclusive = true, false
	req.ValidatePartitionHash = idl.Some(true)
	count := len(t.route.Load().partitions)
	shares := splitPartitions(count, maxSplitCount)
	scs := make([]Scanner, len(shares))
	for i, parts := range shares {
		s := &scanner{t: t, unordered: true, req: req, cur: scanTask{pidx: -1}, state: scanDone}
		for _, p := range parts {
			s.tasks = append(s.tasks, scanTask{pidx: p, count: count})
		}
		scs[i] = s
	}
	return scs, nil
}

// scanTask is a part of the table an unordered scanner goes through: the records whose hash
// modulo count is pidx, after the encoded key from (nil: from the start). A split doubles
// the count: the records of partition p of n are then those of p and p+n of 2n. A task is
// sent to partition pidx, or to the partition that serves it while a split child is not
// ready (its parent), with pidx as the header's partition_hash (as the official client sends
// the partition index): a parent that has cut its split over refuses it (the hash is not its
// own by the doubled count), and the scanner goes on at the child.
type scanTask struct {
	pidx, count int
	from        []byte
}

// splitPartitions divides partitions 0..count-1 into min(count, max) shares of consecutive
// partitions whose sizes differ by at most one, the larger shares last (for 8 partitions and
// 3 shares: {0,1}, {2,3,4}, {5,6,7}, as the Apache go-client splits them). Unlike that
// client's split, no share is ever empty and no count panics.
func splitPartitions(count, max int) [][]int {
	n := min(count, max)
	if n <= 0 {
		return nil
	}
	base, extra := count/n, count%n
	shares := make([][]int, n)
	next := 0
	for i := range n {
		size := base
		if i >= n-extra {
			size++
		}
		share := make([]int, size)
		for j := range share {
			share[j] = next
			next++
		}
		shares[i] = share
	}
	return shares
}

// Next implements [Scanner].
func (s *scanner) Next(ctx context.Context) (completed bool, hashKey []byte, sortKey []byte, value []byte, err error) {
	ctx, cancel := s.t.c.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	completed, hashKey, sortKey, value, err = s.next(ctx)
	if err != nil {
		return false, nil, nil, nil, s.t.finish(OpNext, start, err)
	}
	return completed, hashKey, sortKey, value, nil
}

func (s *scanner) next(ctx context.Context) (bool, []byte, []byte, []byte, error) {
	if s.closed {
		return false, nil, nil, nil, ErrScannerClosed
	}
	if s.err != nil {
		return false, nil, nil, nil, s.err
	}
	for {
		if s.pos < len(s.batch) {
			kv := s.batch[s.pos]
			s.pos++
			hk, sk, err := key.Decode(kv.Key)
			if err != nil {
				s.err = fmt.Errorf("table %q partition %d: server returned key %x: %w", s.t.name, s.pidx(), kv.Key, err)
				return false, nil, nil, nil, s.err
			}
			s.lastKey = kv.Key
			if s.unordered && !s.cur.holds(kv.Key) {
				continue // another partition's record, still on a split parent
			}
			return false, hk, sk, nonNil(kv.Value), nil
		}
		if s.state == scanDone {
			if !s.nextPartition() {
				return true, nil, nil, nil, nil
			}
		}
		if err := s.fetch(ctx); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.err = err
			}
			return false, nil, nil, nil, err
		}
	}
}

// holds reports whether the record with encoded key k is in the task's part.
func (c scanTask) holds(k []byte) bool {
	h, err := key.HashEncoded(k)
	return err == nil && key.Partition(h, c.count) == c.pidx
}

// nextPartition moves an unordered scanner to its next task.
func (s *scanner) nextPartition() bool {
	if !s.unordered || len(s.tasks) == 0 {
		return false
	}
	last := len(s.tasks) - 1
	s.cur, s.tasks = s.tasks[last], s.tasks[:last]
	s.state, s.ctxID, s.lastKey = scanStart, 0, s.cur.from
	return true
}

// pidx returns the partition being scanned (for messages).
func (s *scanner) pidx() int {
	if s.unordered {
		return s.cur.pidx
	}
	return s.t.route.Load().locate(s.hash)
}

// target is where the scanner's next call goes: an unordered scanner's task, or, for one
// hash key, wherever the key is served when the call is made (a split may move it between
// two calls; the context is then unknown there, and the scan restarts after the last
// record).
func (s *scanner) target() target {
	if s.unordered {
		return target{hash: uint64(s.cur.pidx), pidx: s.cur.pidx}
	}
	return target{hash: s.hash, pidx: -1}
}

// splitTasks checks, after a get_scanner of the current task, that the table's partition
// count is still the task's by a configuration queried after the reply, the query numbered
// above seen (the meta doubles the count before any partition cuts a split over). If it
// grew, the partition may have filtered that context by the larger count: the task keeps its
// own share of the new count, and the others start from where this context started, so
// every record is returned once.
func (s *scanner) splitTasks(ctx context.Context, seen uint64) error {
	r, err := s.t.routeAfter(ctx, seen)
	if err != nil {
		return err
	}
	n := len(r.partitions)
	if n <= s.cur.count || n%s.cur.count != 0 {
		return nil
	}
	start := s.cur.from
	for p := s.cur.pidx + s.cur.count; p < n; p += s.cur.count {
		s.tasks = append(s.tasks, scanTask{pidx: p, count: n, from: start})
	}
	s.cur.count = n
	return nil
}

// fetch gets the next batch of the current partition.
func (s *scanner) fetch(ctx context.Context) error {
	var resp idl.ScanResponse
	var err error
	starting := s.state == scanStart
	if starting {
		req := s.req
		if s.lastKey != nil {
			req.StartKey, req.StartInclusive = s.lastKey, false
		}
		s.cur.from = s.lastKey
		if err = s.t.call(ctx, kindRead, s.target(), idl.RPCGetScanner, &req, &resp); err == nil && s.unordered {
			// Every query started from now on was answered after the partition's reply.
			err = s.splitTasks(ctx, s.t.querySeq.Load())
		}
	} else {
		req := idl.ScanRequest{ContextID: s.ctxID}
		err = s.t.call(ctx, kindRead, s.target(), idl.RPCScan, &req, &resp)
	}
	if err != nil {
		return err
	}
	s.batch, s.pos = resp.KVs, 0
	switch {
	case resp.Error == int32(StatusNotFound) && !starting:
		// The server lost the context: start again after the last record returned.
		s.batch, s.state = nil, scanStart
		return nil
	case resp.Error != 0:
		return &callError{table: s.t.name, pidx: s.pidx(), err: StatusError(resp.Error)}
	}
	switch {
	case resp.ContextID == -1:
		s.state = scanDone
	case starting && resp.ContextID == 0 && len(resp.KVs) == 0:
		// What the Apache server answers for an empty range (protocol.md §5.4).
		s.state = scanDone
	case resp.ContextID < 0:
		s.state = scanStart // the server asks to start over
	default:
		s.state, s.ctxID = scanContinue, resp.ContextID
	}
	return nil
}

// resumeSortKey returns where a range deletion that stopped at this scanner's position can go
// on: just after the last sort key returned, or the original start.
func (s *scanner) resumeSortKey(start []byte) []byte {
	if s.lastKey == nil {
		return start
	}
	_, sk, err := key.Decode(s.lastKey)
	if err != nil {
		return start
	}
	return append(append([]byte(nil), sk...), 0)
}

// Close implements [Scanner].
func (s *scanner) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.state != scanContinue || s.ctxID < 0 || s.t.c.isClosed() {
		return nil
	}
	r := s.t.route.Load()
	pidx := r.serving(s.pidx())
	if r.partitions[pidx].conn == nil {
		return nil
	}
	tg := s.target()
	h := wire.Header{
		AppID:          r.appID,
		PartitionIndex: int32(pidx),
		ThreadHash:     wire.ThreadHash(r.appID, int32(pidx)),
		PartitionHash:  tg.hash,
	}
	// Close has no context in the Scanner contract; the request is only queued, so a short
	// timeout of our own bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), clearScannerTimeout)
	defer cancel()
	id := idl.ContextID(s.ctxID)
	// Releasing the server's context early is an optimisation: the server drops idle
	// contexts itself, so a failure to send is not reported.
	_ = r.partitions[pidx].conn.Send(ctx, h, idl.RPCClearScanner, &id)
	return nil
}
