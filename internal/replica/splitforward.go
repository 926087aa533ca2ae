package replica

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// A request whose key a split moved to another partition (the child of the partition it was
// sent to, or a grandchild after two splits) is served at that partition for the client,
// which then sees no error: clients that cannot follow a split on their own (the official
// go-client hands ERR_SPLITTING and ERR_PARENT_PARTITION_MISUSED to its application, Java
// fails on ERR_SPLITTING, the 2018 go-client cannot decode either name) are spared both.
// The refusal is only acted on for requests with a key, which were refused before they had
// any effect here (at request time, after a read's barrier, or at apply time for a write
// accepted before the cut-over, by every replica alike), so sending one on cannot apply a
// write twice. Scans and batch_get, whose partition is the client's choice, still get the
// refusal.
//
// From the cut-over until the child is registered, a request waits for the child's
// replica on this server (children start on their parents' servers) and its leader, for at
// most the larger of leader_change_hold_ms and splitHold, and the request's timeout (0 for
// leader_change_hold_ms turns this forwarding off, as the forwarding of leader changes). A
// replica here that the meta no longer places here (moved since, kept until its garbage
// grace ends) is not asked. When the child's replica is not here (moved since), its primary
// is taken from the meta's configuration of the table, which the server caches for a short
// while.

// requestKey is how a client RPC's arguments name the key that routes it.
type requestKey func(args idl.Value) ([]byte, keyCheck)

// splitRefused reports whether code is a split's refusal of a request's key.
func splitRefused(code wire.Code) bool {
	return code == wire.ErrSplitting || code == wire.ErrParentPartitionMisused
}

// splitTarget returns the partition that now owns the key of req, which p refused with a
// split's refusal; ok is false when the refusal is not about a split (no key, a header
// partition_hash that disagrees with the key, a partition never split, or a key of a
// partition that does not descend from p: the client's routing is wrong, not old).
func (s *Server) splitTarget(p *partition, req *rpc.Request) (int32, bool) {
	hash, ok := s.requestHash(req)
	if !ok {
		return 0, false
	}
	own := p.ownCount.Load()
	if own <= 0 {
		return 0, false // never split: a client that sent the key here is wrong
	}
	count := int(max(p.table().partitionCount, own))
	target := int32(key.Partition(hash, count))
	if target == p.pid.PartitionIndex || !descends(target, p.pid.PartitionIndex) {
		return 0, false
	}
	return target, true
}

// requestHash returns the partition hash of the key of req; ok is false for a request
// without a key, or whose header partition_hash disagrees with its key.
func (s *Server) requestHash(req *rpc.Request) (hash uint64, ok bool) {
	keyOf, keyed := s.keys[req.Name]
	if !keyed {
		return 0, false
	}
	k, kc := keyOf(req.Args)
	switch kc {
	case encodedKey:
		h, err := key.HashEncoded(k)
		if err != nil {
			return 0, false
		}
		hash = h
	case rawHashKey:
		if len(k) == 0 {
			return 0, false
		}
		hash = key.Hash(k)
	default:
		return 0, false
	}
	if ph := req.Header.PartitionHash; ph != 0 && ph != hash {
		return 0, false
	}
	return hash, true
}

// A split child is listed to clients from before host_port with its parent's primary until
// it registers (meta's forClient): the 2018 go-client, which predates split, would otherwise
// build a routing table with an empty entry for it and panic on its keys. Such a client then
// sends the child's keys, addressed to the child, to the parent's primary, where the child
// has no replica yet. toAncestor serves them as requests to the partition that holds them
// until the cut-over: the nearest ancestor by splits that this server hosts; from the
// cut-over that partition refuses them and they are sent on to the child (forwardSplit).
// Only keyed requests whose key belongs to the partition they name are taken so; anything
// else, a request for a partition this server has never had, is answered as before.

// toAncestor wraps the handler of a keyed client RPC with that redirection.
func (s *Server) toAncestor(h rpc.HandlerFunc) rpc.HandlerFunc {
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		if a := s.ancestorFor(req); a != nil {
			r := *req
			r.Header.PartitionIndex = a.pid.PartitionIndex
			s.forwards.toAncestor.Add(1)
			return h(ctx, &r)
		}
		return h(ctx, req)
	}
}

// ancestorFor returns, for a keyed request addressed to a partition not hosted here, the
// hosted partition it descends from by splits, if the request's key belongs to the partition
// it names; nil otherwise.
func (s *Server) ancestorFor(req *rpc.Request) *partition {
	c := req.Header.PartitionIndex
	if c <= 0 || s.partition(idl.GPID{AppID: req.Header.AppID, PartitionIndex: c}) != nil {
		return nil
	}
	hash, ok := s.requestHash(req)
	if !ok {
		return nil
	}
	n := key.FirstCount(c)
	if int32(key.Partition(hash, int(n))) != c {
		return nil // the key is not c's: the client's routing is wrong, not old
	}
	for m := n >> 1; m >= 1; m >>= 1 {
		if p := s.partition(idl.GPID{AppID: req.Header.AppID, PartitionIndex: c % m}); p != nil {
			return p
		}
	}
	return nil
}

// descends reports whether partition d is p or one of p's descendants by splits: a client
// that routes by a count from before the splits sends d's keys to p. With power-of-two
// counts, d's ancestor at count c is d mod c, and p's smallest count is the least power of
// two above p.
func descends(d, p int32) bool {
	return d%key.FirstCount(p) == p
}

// forwardSplit serves req, which p refused with code (a split's refusal), at the partition
// that owns its key now; it answers code when it cannot (see the comment at the top). The
// partition sent to may refuse it in turn (a second split that p's replica has not heard of
// yet): it is sent on from there, at most splitHops times in all, each hop to a partition
// that owns its keys by a larger count.
func (s *Server) forwardSplit(ctx context.Context, p *partition, req *rpc.Request, code wire.Code) (idl.Value, wire.Code) {
	return s.forwardSplitHops(ctx, p, req, code, splitHops)
}

// splitHops bounds the hops of one request: a partition count doubles at each split, so a
// table of one partition reaches the largest count in 16.
const splitHops = 16

func (s *Server) forwardSplitHops(ctx context.Context, p *partition, req *rpc.Request, code wire.Code, hops int) (idl.Value, wire.Code) {
	if hops <= 0 {
		return nil, code
	}
	target, ok := s.splitTarget(p, req)
	local := s.local[req.Name]
	hold := time.Duration(s.settings.LeaderChangeHoldMS.Get()) * time.Millisecond
	if !ok || local == nil || hold <= 0 {
		return nil, code
	}
	hold = max(hold, splitHold)
	if t := time.Duration(req.Header.ClientTimeout) * time.Millisecond; t > 0 {
		hold = min(hold, t)
	}
	fwd := *req
	fwd.Header.PartitionIndex = target
	pid := idl.GPID{AppID: p.pid.AppID, PartitionIndex: target}
	s.forwards.split.Add(1)
	deadline := time.Now().Add(hold)
	fresh := false
	for {
		if c := s.partition(pid); c != nil && slices.Contains(c.table().members, s.addr) {
			v, rc := s.forward(ctx, c, &fwd, local)
			if splitRefused(rc) {
				return s.forwardSplitHops(ctx, c, &fwd, rc, hops-1)
			}
			// A child whose group has not elected yet: forward's hold is a leader
			// change's, the split's may be longer.
			if rc != wire.ErrInvalidState || time.Now().After(deadline) {
				return v, rc
			}
		} else if addr := s.splitRoutes.primary(ctx, s, p.table().appName, pid, fresh); addr != "" && addr != s.addr {
			reply, rc, again := s.forwardTo(ctx, addr, &fwd)
			if !again {
				return reply, rc
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			s.forwards.failed.Add(1)
			return nil, code
		}
		fresh = true
		select {
		case <-time.After(min(wait, splitForwardPoll)):
		case <-p.done:
			return nil, code
		case <-ctx.Done():
			return nil, wire.ErrTimeout
		}
	}
}

// splitHold is the least time a request waits for its split's child: the child's replicas
// start once their parents' have applied the cut-over and the meta has been told, then elect
// (about a second on an idle machine, more on a loaded one).
const splitHold = 5 * time.Second

// splitForwardPoll is how often a request held for a split's child looks for it again.
const splitForwardPoll = 20 * time.Millisecond

// splitRouteTTL is how long the meta's configuration of a table serves forwardSplit, and
// splitRouteIdle how long it is kept unused.
const (
	splitRouteTTL   = time.Second
	splitRouteRetry = 250 * time.Millisecond
	splitRouteIdle  = time.Minute
)

// splitRouteCache caches the primaries of the tables' partitions as the meta names them, for
// the requests forwardSplit sends to a partition that is not hosted here. It holds one entry
// per table a request was forwarded for lately (tables hosted here), each refreshed at most
// once a splitRouteTTL unless a forward failed.
type splitRouteCache struct {
	mu     sync.Mutex
	tables map[int32]*splitRoutes
}

// splitRoutes are one table's primaries; mu is held while they are fetched, so one request
// asks the meta and the others wait for its answer. used is when a request last looked
// (unix nanoseconds): entries unused for splitRouteIdle are dropped.
type splitRoutes struct {
	used      atomic.Int64
	mu        sync.Mutex
	fetched   time.Time
	primaries map[int32]string
}

// primary returns the address of the primary of pid (of table name), as the meta said it at
// most splitRouteTTL ago (splitRouteRetry when refresh is set: a forward failed); "" when there is none or the meta cannot say.
func (c *splitRouteCache) primary(ctx context.Context, s *Server, name string, pid idl.GPID, refresh bool) string {
	if s.meta == nil || name == "" {
		return ""
	}
	c.mu.Lock()
	if c.tables == nil {
		c.tables = make(map[int32]*splitRoutes)
	}
	now := time.Now().UnixNano()
	r := c.tables[pid.AppID]
	if r == nil {
		for id, old := range c.tables {
			if now-old.used.Load() > int64(splitRouteIdle) {
				delete(c.tables, id)
			}
		}
		r = &splitRoutes{}
		c.tables[pid.AppID] = r
	}
	r.used.Store(now)
	c.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	age := time.Since(r.fetched)
	if r.primaries == nil || age > splitRouteTTL || (refresh && age > splitRouteRetry) {
		qctx, cancel := context.WithTimeout(ctx, forwardCallTimeout)
		resp, err := s.meta.QueryConfig(qctx, name)
		cancel()
		r.fetched = time.Now()
		if err == nil && resp.AppID == pid.AppID {
			r.primaries = make(map[int32]string, len(resp.Partitions))
			for _, pc := range resp.Partitions {
				if pc.Ballot > 0 && !pc.Primary.IsZero() {
					r.primaries[pc.PID.PartitionIndex] = pc.Primary.String()
				}
			}
		}
	}
	return r.primaries[pid.PartitionIndex]
}

// SplitChildRequestsAtAncestor returns how many requests addressed to a split child this
// server has no replica of were served by their ancestor partition here (toAncestor).
func (s *Server) SplitChildRequestsAtAncestor() int64 { return s.forwards.toAncestor.Load() }
