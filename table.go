package pegasus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Retry backoff of calls to replicas: it starts short because the usual cause, a primary
// change, is over as soon as the refreshed configuration names the new primary.
const (
	retryBackoffMin = 10 * time.Millisecond
	retryBackoffMax = 500 * time.Millisecond
)

// table is the connector of one open table. Its routing table is replaced, never modified, on
// each configuration refresh.
type table struct {
	c       *client
	name    string
	metrics *tableMetrics // nil without a Registerer

	route atomic.Pointer[route]

	refreshMu struct {
		sync.Mutex
		inFlight *refreshRun // the running refresh; nil if none
	}
	refreshes atomic.Int64 // configuration queries sent, for tests and logs
	// querySeq numbers the configuration queries as they are sent (see routeAfter).
	querySeq atomic.Uint64
}

// route is one configuration of a table.
type route struct {
	gen        uint64 // increases with every refresh
	seq        uint64 // the number of the query that gave it
	appID      int32
	partitions []partition
}

type partition struct {
	ballot  int64
	primary string    // "" when there is none
	conn    *rpc.Conn // nil when there is no primary
}

func newTable(c *client, name string) *table {
	t := &table{c: c, name: name}
	if c.metrics != nil {
		t.metrics = c.metrics.forTable(name)
	}
	return t
}

func (t *table) observe(op OpType, start time.Time, err error) {
	if t.metrics != nil {
		t.metrics.observe(op, start, err)
	}
}

// loadConfig queries the table's configuration and installs it.
func (t *table) loadConfig(ctx context.Context) (*route, error) {
	t.refreshes.Add(1)
	seq := t.querySeq.Add(1)
	resp, err := t.c.meta.QueryConfig(ctx, t.name)
	if resp != nil {
		err = wire.CodeError(string(resp.Err)) // the leader's answer, told without its address
	}
	if err != nil {
		return nil, fmt.Errorf("query configuration of table %q: %w", t.name, mapClosed(err))
	}
	n := int(resp.PartitionCount)
	if n <= 0 || len(resp.Partitions) != n {
		return nil, fmt.Errorf("query configuration of table %q: %d partitions listed for a partition count of %d",
			t.name, len(resp.Partitions), n)
	}
	r := &route{appID: resp.AppID, seq: seq, partitions: make([]partition, n)}
	seen := make([]bool, n)
	for _, pc := range resp.Partitions {
		i := int(pc.PID.PartitionIndex)
		if i < 0 || i >= n || seen[i] {
			return nil, fmt.Errorf("query configuration of table %q: bad partition index %d", t.name, i)
		}
		seen[i] = true
		p := partition{ballot: pc.Ballot}
		if !pc.Primary.IsZero() {
			p.primary = pc.Primary.String()
			if p.conn, err = t.c.conn(p.primary); err != nil {
				return nil, err
			}
		}
		r.partitions[i] = p
	}
	if old := t.route.Load(); old != nil {
		if old.seq > seq {
			return old, nil // a later query's answer is in place already
		}
		r.gen = old.gen + 1
	}
	t.route.Store(r)
	return r, nil
}

// refresh reloads the configuration after a call that used generation gen failed. Concurrent
// failures share one query: a caller whose generation is already outdated returns at once, and
// one that finds a refresh running waits for it.
// It returns the error of the refresh it ran or waited for, if any.
func (t *table) refresh(ctx context.Context, gen uint64) error {
	for {
		if r := t.route.Load(); r.gen > gen {
			return nil
		}
		t.refreshMu.Lock()
		if fl := t.refreshMu.inFlight; fl != nil {
			t.refreshMu.Unlock()
			select {
			case <-fl.done:
				if fl.err != nil {
					return fl.err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if r := t.route.Load(); r.gen > gen {
			t.refreshMu.Unlock()
			return nil
		}
		fl := &refreshRun{done: make(chan struct{})}
		t.refreshMu.inFlight = fl
		t.refreshMu.Unlock()

		_, fl.err = t.loadConfig(ctx)
		if fl.err != nil {
			t.c.lg.Warn("table configuration refresh failed", "table", t.name, "err", fl.err)
		}
		t.refreshMu.Lock()
		t.refreshMu.inFlight = nil
		t.refreshMu.Unlock()
		close(fl.done)
		return fl.err
	}
}

// refreshRun is one configuration query in flight; err is set before done is closed.
type refreshRun struct {
	done chan struct{}
	err  error
}

// routeAfter returns a configuration given by a query numbered above seen (t.querySeq),
// sending one if none is in place or in flight: one its caller knows was answered after
// some event. Concurrent callers share queries.
func (t *table) routeAfter(ctx context.Context, seen uint64) (*route, error) {
	for {
		r := t.route.Load()
		if r.seq > seen {
			return r, nil
		}
		if err := t.refresh(ctx, r.gen); err != nil {
			return nil, fmt.Errorf("query configuration of table %q: %w", t.name, err)
		}
	}
}

// opKind says how safe an operation is to send again.
type opKind uint8

const (
	kindRead          opKind = iota // no effect: always safe to retry
	kindIdempotent                  // set, del, multi_set, multi_del: the same outcome if repeated
	kindNonIdempotent               // incr, check_and_set: retry only if it never got anywhere
)

// target says where a call goes.
type target struct {
	hash uint64 // partition hash for the header
	// pidx, when >= 0, fixes the partition (scanners); otherwise it is hash mod count with
	// the split redirect of protocol.md §4.3.
	pidx int
}

func hashTarget(hashKey []byte) target { return target{hash: key.Hash(hashKey), pidx: -1} }

// callError carries the partition and server of a failed call into the error chain.
type callError struct {
	table string
	pidx  int
	addr  string
	err   error
}

func (e *callError) Error() string {
	if e.addr == "" {
		return fmt.Sprintf("table %q partition %d: %v", e.table, e.pidx, e.err)
	}
	return fmt.Sprintf("table %q partition %d at %s: %v", e.table, e.pidx, e.addr, e.err)
}

func (e *callError) Unwrap() error { return e.err }

// call sends one RPC to the primary of the target partition, refreshing the configuration
// and retrying as protocol.md §3.3 and the operation's kind allow, until ctx ends. The reply
// is decoded into reply.
func (t *table) call(ctx context.Context, kind opKind, tg target, name string, args, reply idl.Value) error {
	backoff := retryBackoffMin
	maybeApplied := false
	for {
		if t.c.isClosed() {
			if maybeApplied {
				return fmt.Errorf("%w: %w", ErrOutcomeUnknown, ErrClientClosed)
			}
			return ErrClientClosed
		}
		r := t.route.Load()
		pidx := tg.pidx
		if pidx < 0 {
			pidx = r.locate(tg.hash)
		} else {
			pidx = r.serving(pidx)
		}
		if pidx >= len(r.partitions) {
			return &callError{table: t.name, pidx: pidx, err: fmt.Errorf("table now has %d partitions", len(r.partitions))}
		}
		p := r.partitions[pidx]
		var err error
		if p.conn == nil {
			err = ErrNoPrimary
		} else {
			h := wire.Header{
				AppID:          r.appID,
				PartitionIndex: int32(pidx),
				ThreadHash:     wire.ThreadHash(r.appID, int32(pidx)),
				PartitionHash:  tg.hash,
			}
			if err = p.conn.Call(ctx, h, name, args, reply); err == nil {
				return nil
			}
			err = mapClosed(err)
		}
		refresh, retry := classify(err, kind)
		if ctx.Err() != nil || errors.Is(err, ErrClientClosed) {
			retry = false
		}
		if refresh {
			if rerr := t.refresh(ctx, r.gen); errors.Is(rerr, wire.ErrObjectNotFound) {
				// The table itself is gone (dropped): retrying cannot help.
				return &callError{table: t.name, pidx: pidx, addr: p.primary, err: rerr}
			}
		}
		maybeApplied = maybeApplied || outcomeUnknown(err, kind)
		if maybeApplied {
			// Whichever attempt fails last, an earlier one may have been applied.
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		if !retry {
			return &callError{table: t.name, pidx: pidx, addr: p.primary, err: err}
		}
		t.c.lg.Warn("retrying", "table", t.name, "pidx", pidx, "addr", p.primary, "rpc", name, "err", err)
		d := backoff/2 + rand.N(backoff)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return &callError{table: t.name, pidx: pidx, addr: p.primary, err: err}
		}
		if serr := t.c.sleep(ctx, d); serr != nil {
			return &callError{table: t.name, pidx: pidx, addr: p.primary, err: err}
		}
		backoff = min(backoff*2, retryBackoffMax)
	}
}

// locate maps a hash to the partition that serves it: hash mod count, or, while that
// partition is a split child that is not ready (ballot <= 0), its parent (protocol.md §4.3).
// Unlike the Apache go-client, a not-ready partition in the lower half (which has no parent)
// is used as is, and the call fails over to a refresh instead of panicking.
func (r *route) locate(hash uint64) int {
	return r.serving(key.Partition(hash, len(r.partitions)))
}

// serving returns the partition that serves partition pidx's keys: itself, or its parent
// while it is a split child that is not ready; an index past the partition count (the
// table's split was cancelled) is served by the partition its keys map to.
func (r *route) serving(pidx int) int {
	n := len(r.partitions)
	i := pidx % n
	if r.partitions[i].ballot <= 0 && i >= n/2 && n >= 2 {
		i -= n / 2
	}
	return i
}

// classify decides, for a failed call, whether the table's configuration should be refreshed
// and whether the request may be sent again (protocol.md §3.3, restricted to what is safe).
func classify(err error, kind opKind) (refresh, retry bool) {
	if errors.Is(err, ErrNoPrimary) || isDialError(err) {
		return true, true // nothing left the process
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false, false
	}
	code, ok := wire.AsCode(err)
	if !ok {
		// A transport failure after the request may have been sent (connection broken): a
		// write may have been applied, and sending it again could apply it twice around
		// other clients' writes (not linearizable). Only reads are sent again.
		return true, kind == kindRead
	}
	switch code {
	case wire.ErrObjectNotFound:
		// The server does not host this partition at all: nothing was executed.
		return true, true
	case wire.ErrParentPartitionMisused:
		// The partition does not hold the key (a split moved it to the child): refused
		// before anything was done, or at apply by every replica, so any request may go
		// again, to where a fresh configuration says.
		return true, true
	case wire.ErrSplitting:
		// The partition's split is cutting over: nothing was done; the child serves soon.
		return false, true
	case wire.ErrInvalidState, wire.ErrForwardToOthers:
		// Not (or no longer) the primary. A non-idempotent write is not repeated: the
		// replica may have lost its primary role while the write was in flight.
		return true, kind != kindNonIdempotent
	case wire.ErrBusy, wire.ErrNotEnoughMember, wire.ErrCapacityExceeded,
		wire.ErrDiskInsufficient, wire.ErrServiceNotActive:
		return false, kind != kindNonIdempotent
	case wire.ErrTimeout:
		// The server (or the replica that forwarded the request to its partition's leader,
		// answering for it) timed out. The configuration is refreshed as well: a client
		// whose configuration still names a replica that forwards to a leader it cannot
		// reach in time would otherwise send every retry the same way.
		return true, kind == kindRead
	}
	return false, false
}

// outcomeUnknown reports whether a write that failed with err, and is not sent again, may
// have been applied: the request left the process and no answer says it was refused.
func outcomeUnknown(err error, kind opKind) bool {
	if kind == kindRead || errors.Is(err, ErrNoPrimary) || isDialError(err) ||
		errors.Is(err, ErrClientClosed) {
		return false
	}
	code, ok := wire.AsCode(err)
	if !ok {
		// A transport failure, or the caller's context ending while the answer was awaited.
		return true
	}
	switch code {
	case wire.ErrTimeout, wire.ErrInvalidState, wire.ErrForwardToOthers:
		return true
	}
	return false
}

// isDialError reports whether err is a failure to connect, so the request was never sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
