package testcluster

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
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// GoClient is a client that reacts to errors exactly as the official Apache Pegasus
// go-client does (protocol.md §3.3), so tests see what that client's users see. Unlike our
// own client (package pegasus), which retries what is safe to retry, it hands the
// application every error the official client hands it:
//
//   - A call goes once to the primary of its partition as the table's routing says; a
//     partition whose ballot is not positive (a split child not registered yet) sends its
//     keys to its parent, index - count/2 (protocol.md §4.3).
//   - ERR_INVALID_STATE and ERR_PARENT_PARTITION_MISUSED, and a server that cannot be
//     reached (ERR_SESSION_RESET): the routing is refreshed, the error returned.
//   - ERR_TIMEOUT and the context's errors: returned, nothing refreshed.
//   - ERR_BUSY, ERR_NOT_ENOUGH_MEMBER, ERR_CAPACITY_EXCEEDED, ERR_SPLITTING,
//     ERR_DISK_INSUFFICIENT: returned, nothing refreshed.
//   - Every other error (ERR_OBJECT_NOT_FOUND, ERR_FORWARD_TO_OTHERS, a broken connection, a
//     storage code the operation does not take for success): the routing is refreshed and
//     the same request sent again to the same server, after a backoff from 1 s doubling up
//     to 60 s, randomized by ±50 %, until the context ends.
//   - Refreshes are coalesced: one at a time, each a configuration query of at most 10 s,
//     then at least 1 s before the next; a reply the official client would refuse (a
//     partition count that is not a power of two, a partition with a ballot and no primary)
//     keeps the old routing.
//
// Its calls are the requests the official client sends for Set, Get, Incr and CheckAndSet.
// A GoClient is safe for concurrent use; close it with Close.
type GoClient struct {
	meta *metaclient.Client
	pool *rpc.Pool
}

// NewGoClient returns a GoClient of the cluster whose metas are metas.
func NewGoClient(metas []string) *GoClient {
	pool := rpc.NewPool(rpc.ConnConfig{})
	return &GoClient{pool: pool, meta: metaclient.New(metaclient.Config{Addrs: metas, Pool: pool, AttemptTimeout: time.Second})}
}

// Close closes the client's connections; close its tables first.
func (c *GoClient) Close() {
	_ = c.meta.Close()
	_ = c.pool.Close()
}

// GoTable is a table opened by a [GoClient]. Safe for concurrent use.
type GoTable struct {
	c     *GoClient
	name  string
	route atomic.Pointer[goRoute]
	// refresh asks the refresh goroutine for a configuration query (buffer 1: asks while
	// one is pending are dropped, as the official client's are).
	refresh chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
	// Refreshes counts the configuration queries the table made after it opened.
	Refreshes atomic.Int64
}

// goRoute is a table's routing: the primary and the ballot of each partition.
type goRoute struct {
	appID     int32
	primaries []string
	ballots   []int64
}

// OpenTable opens table name: its routing must be complete, as the official client requires.
func (c *GoClient) OpenTable(ctx context.Context, name string) (*GoTable, error) {
	t := &GoTable{c: c, name: name, refresh: make(chan struct{}, 1), done: make(chan struct{})}
	if err := t.update(ctx); err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	t.wg.Go(t.refreshLoop)
	return t, nil
}

// Close stops the table's refreshes.
func (t *GoTable) Close() {
	close(t.done)
	t.wg.Wait()
}

// refreshLoop serves the refresh requests one at a time, at least a second apart.
func (t *GoTable) refreshLoop() {
	for {
		select {
		case <-t.refresh:
		case <-t.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = t.update(ctx) // a failed refresh keeps the routing
		cancel()
		t.Refreshes.Add(1)
		select {
		case <-t.refresh: // asked again meanwhile: covered by this one
		default:
		}
		select {
		case <-time.After(time.Second):
		case <-t.done:
			return
		}
	}
}

// update queries the table's configuration and takes it if the official client would.
func (t *GoTable) update(ctx context.Context) error {
	resp, err := t.c.meta.QueryConfig(ctx, t.name)
	if err != nil {
		return err
	}
	n := int(resp.PartitionCount)
	if n < 2 || n&(n-1) != 0 || len(resp.Partitions) != n {
		return fmt.Errorf("table %s: %d partitions, %d configurations", t.name, n, len(resp.Partitions))
	}
	r := &goRoute{appID: resp.AppID, primaries: make([]string, n), ballots: make([]int64, n)}
	for _, p := range resp.Partitions {
		i := int(p.PID.PartitionIndex)
		if i < 0 || i >= n {
			return fmt.Errorf("table %s: configuration of partition %d", t.name, i)
		}
		if p.Ballot >= 0 && p.Primary.IsZero() {
			return fmt.Errorf("table %s: unable to resolve routing table (partition %d has no primary)", t.name, i)
		}
		r.primaries[i], r.ballots[i] = p.Primary.String(), p.Ballot
	}
	t.route.Store(r)
	return nil
}

func (t *GoTable) askRefresh() {
	select {
	case t.refresh <- struct{}{}:
	default:
	}
}

// GoError is an error a [GoTable] call returns, with the server it came from.
type GoError struct {
	Op     string
	Server string
	Err    error
}

func (e *GoError) Error() string { return fmt.Sprintf("%s at %s: %v", e.Op, e.Server, e.Err) }
func (e *GoError) Unwrap() error { return e.Err }

// storageError is a storage code the operation does not take for success.
type storageError struct{ code wire.Status }

func (e storageError) Error() string { return fmt.Sprintf("ROCKSDB_ERR(%s)", e.code) }

// call sends one request as the official client does and reacts to its error (see
// GoClient). check turns a reply's storage code into an error (nil: success).
func (t *GoTable) call(ctx context.Context, op string, hashKey []byte, name string, args, reply idl.Value, check func() error) error {
	r := t.route.Load()
	hash := key.Hash(hashKey)
	pidx := int32(key.Partition(hash, len(r.primaries)))
	if r.ballots[pidx] <= 0 && int(pidx) >= len(r.primaries)/2 {
		pidx -= int32(len(r.primaries) / 2)
	}
	addr := r.primaries[pidx]
	h := wire.Header{AppID: r.appID, PartitionIndex: pidx, ThreadHash: wire.ThreadHash(r.appID, pidx), PartitionHash: hash}
	backoff := time.Second
	for {
		var err error
		conn, perr := t.c.pool.Get(addr)
		if perr != nil {
			return &GoError{Op: op, Server: addr, Err: perr}
		}
		if err = conn.Call(ctx, h, name, args, reply); err == nil {
			err = check()
		}
		if err == nil {
			return nil
		}
		refresh, retry := goClassify(err)
		if refresh {
			t.askRefresh()
		}
		if !retry {
			return &GoError{Op: op, Server: addr, Err: err}
		}
		d := backoff/2 + rand.N(backoff)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return &GoError{Op: op, Server: addr, Err: err}
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// goClassify is the official client's reaction to a failed call: whether it refreshes the
// routing and whether it sends the request again (protocol.md §3.3).
func goClassify(err error) (refresh, retry bool) {
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return false, false
	case errors.As(err, &oe) && oe.Op == "dial":
		return true, false // ERR_SESSION_RESET
	}
	code, ok := wire.AsCode(err)
	if !ok {
		return true, true // a transport failure or a storage code
	}
	switch code {
	case wire.ErrTimeout, wire.ErrNotEnoughMember, wire.ErrCapacityExceeded, wire.ErrBusy,
		wire.ErrSplitting, wire.ErrDiskInsufficient:
		return false, false
	case wire.ErrSessionReset, wire.ErrInvalidState, wire.ErrParentPartitionMisused:
		return true, false
	}
	return true, true
}

func statusErr(code int32, ok ...wire.Status) error {
	for _, s := range ok {
		if wire.Status(code) == s {
			return nil
		}
	}
	return storageError{code: wire.Status(code)}
}

// Set writes value at (hashKey, sortKey), without TTL.
func (t *GoTable) Set(ctx context.Context, hashKey, sortKey, value []byte) error {
	var resp idl.UpdateResponse
	return t.call(ctx, "set", hashKey, idl.RPCPut, &idl.UpdateRequest{Key: key.Encode(hashKey, sortKey), Value: value}, &resp,
		func() error { return statusErr(resp.Error, wire.StatusOK) })
}

// Get reads the value at (hashKey, sortKey); nil when there is none.
func (t *GoTable) Get(ctx context.Context, hashKey, sortKey []byte) ([]byte, error) {
	var resp idl.ReadResponse
	k := idl.Blob(key.Encode(hashKey, sortKey))
	err := t.call(ctx, "get", hashKey, idl.RPCGet, &k, &resp, func() error {
		return statusErr(resp.Error, wire.StatusOK, wire.StatusNotFound)
	})
	if err != nil || wire.Status(resp.Error) == wire.StatusNotFound {
		return nil, err
	}
	return resp.Value, nil
}

// Incr adds delta to the integer at (hashKey, sortKey) and returns the new value.
func (t *GoTable) Incr(ctx context.Context, hashKey, sortKey []byte, delta int64) (int64, error) {
	var resp idl.IncrResponse
	err := t.call(ctx, "incr", hashKey, idl.RPCIncr, &idl.IncrRequest{Key: key.Encode(hashKey, sortKey), Increment: delta}, &resp,
		func() error { return statusErr(resp.Error, wire.StatusOK) })
	return resp.NewValue, err
}

// CheckAndSet sets (hashKey, sortKey) to value if its current value equals expect, and
// reports whether it did.
func (t *GoTable) CheckAndSet(ctx context.Context, hashKey, sortKey, expect, value []byte) (bool, error) {
	var resp idl.CheckAndSetResponse
	err := t.call(ctx, "check_and_set", hashKey, idl.RPCCheckAndSet, &idl.CheckAndSetRequest{HashKey: hashKey,
		CheckSortKey: sortKey, CheckType: idl.CheckValueBytesEqual, CheckOperand: expect, SetValue: value}, &resp,
		func() error { return statusErr(resp.Error, wire.StatusOK, wire.StatusTryAgain) })
	return err == nil && wire.Status(resp.Error) == wire.StatusOK, err
}
