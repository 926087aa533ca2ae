package dup

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// StatusError is a follower's refusal of a batch: the storage status its duplicate_response
// carried, and its hint.
type StatusError struct {
	Status wire.Status
	Hint   string
}

func (e *StatusError) Error() string {
	if e.Hint == "" {
		return fmt.Sprintf("dup: follower refused the batch: %s", e.Status)
	}
	return fmt.Sprintf("dup: follower refused the batch: %s: %s", e.Status, e.Hint)
}

// ErrNoPrimary is wrapped by the error of a send to a follower partition that has no
// primary now (the follower table is being created, or its primary is changing).
var ErrNoPrimary = errors.New("dup: the follower partition has no primary")

// Remote sends duplicated writes to one table of a follower cluster: it keeps the table's
// routing (its primaries, from the follower's metas) and refreshes it when a send fails. It
// is safe for concurrent use; one Remote serves every partition of the table.
type Remote struct {
	meta  *metaclient.Client
	pool  *rpc.Pool
	app   string
	tls   bool
	route struct {
		sync.Mutex
		valid    bool
		appID    int32
		primary  []string // by partition index; "" when none
		fetching chan struct{}
	}
}

// NewRemote returns a Remote for table app of the cluster whose metas are listed; tlsCfg,
// if set, makes its connections to the follower's metas and replica servers TLS (see
// [ConnConfig]). Close releases its connections.
func NewRemote(metas []string, app string, tlsCfg *tls.Config) *Remote {
	cc := ConnConfig(tlsCfg)
	return &Remote{
		meta: metaclient.New(metaclient.Config{Addrs: metas, ConnConfig: cc}),
		pool: rpc.NewPool(cc),
		app:  app,
		tls:  tlsCfg != nil,
	}
}

// ConnConfig is the configuration of a server's connections to a follower cluster (its
// metas, and for a shipper its replica servers): TLS with tlsCfg when set (the [replication]
// dup_tls settings), else plaintext. They are client connections, not a peer's: the
// follower cluster has a secret of its own, and sees the client certificate's common name,
// if any, as the user (for its ACLs).
func ConnConfig(tlsCfg *tls.Config) rpc.ConnConfig { return rpc.ConnConfig{TLS: tlsCfg} }

// Explain adds to err, a failed call to a follower cluster over connections with TLS (tls
// set) or without, what an operator needs to hear: a plaintext call refused with
// ERR_UNAUTHENTICATED is what a follower with mandatory_tls answers.
func Explain(err error, tls bool) error {
	if err != nil && !tls && errors.Is(err, wire.ErrUnauthenticated) {
		return fmt.Errorf("%w (a follower cluster with mandatory_tls refuses plaintext: set [replication] dup_tls)", err)
	}
	return err
}

// Close closes the Remote's connections; sends in flight fail.
func (r *Remote) Close() error {
	_ = r.meta.Close()
	return r.pool.Close()
}

// routing returns the table's app id and primaries, asking the follower's metas when it has
// none valid. Concurrent callers share one query.
func (r *Remote) routing(ctx context.Context) (int32, []string, error) {
	for {
		r.route.Lock()
		if r.route.valid {
			id, p := r.route.appID, r.route.primary
			r.route.Unlock()
			return id, p, nil
		}
		if wait := r.route.fetching; wait != nil {
			r.route.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		r.route.fetching = done
		r.route.Unlock()
		resp, err := r.meta.QueryConfig(ctx, r.app)
		r.route.Lock()
		r.route.fetching = nil
		if err == nil {
			r.route.valid, r.route.appID = true, resp.AppID
			r.route.primary = make([]string, resp.PartitionCount)
			for _, pc := range resp.Partitions {
				if i := pc.PID.PartitionIndex; i >= 0 && int(i) < len(r.route.primary) && !pc.Primary.IsZero() {
					r.route.primary[i] = pc.Primary.String()
				}
			}
		}
		id, p := r.route.appID, r.route.primary
		r.route.Unlock()
		close(done)
		if err != nil {
			return 0, nil, Explain(fmt.Errorf("dup: routing of follower table %q: %w", r.app, err), r.tls)
		}
		return id, p, nil
	}
}

// invalidate drops the routing: the next send asks the follower's metas again.
func (r *Remote) invalidate() {
	r.route.Lock()
	r.route.valid = false
	r.route.Unlock()
}

// PartitionCount returns the follower table's partition count as its metas report it.
func (r *Remote) PartitionCount(ctx context.Context) (int, error) {
	_, p, err := r.routing(ctx)
	return len(p), err
}

// Send ships one batch to partition pidx of the follower table, whose partition count must
// be partitions (a table of another shape cannot take the master's partitions one to one).
// hash is the partition hash of the batch's last write. It returns nil once the follower's
// primary applied the batch, a *[StatusError] when it refused it, and otherwise why it could
// not be delivered (the batch may or may not have been applied: resending is harmless).
func (r *Remote) Send(ctx context.Context, pidx int32, partitions int, hash uint64, req *idl.DuplicateRequest) error {
	appID, primary, err := r.routing(ctx)
	if err != nil {
		return err
	}
	if len(primary) != partitions {
		r.invalidate()
		return fmt.Errorf("dup: follower table %q has %d partitions, the master's has %d", r.app, len(primary), partitions)
	}
	addr := primary[pidx]
	if addr == "" {
		r.invalidate()
		return fmt.Errorf("%w: %s.%d", ErrNoPrimary, r.app, pidx)
	}
	cn, err := r.pool.Get(addr)
	if err != nil {
		return err
	}
	h := wire.Header{AppID: appID, PartitionIndex: pidx, ThreadHash: wire.ThreadHash(appID, pidx), PartitionHash: hash}
	var resp idl.DuplicateResponse
	if err := cn.Call(ctx, h, idl.RPCDuplicate, req, &resp); err != nil {
		r.invalidate() // a new primary, a moved partition, a dead server: ask again
		return Explain(fmt.Errorf("dup: send to %s (%s.%d): %w", addr, r.app, pidx, err), r.tls)
	}
	if st := wire.Status(resp.Error.Or(0)); st != wire.StatusOK {
		return &StatusError{Status: st, Hint: resp.ErrorHint.Or("")}
	}
	return nil
}
